/**
 * `secryn master-key rotate` with 100 000 stored values, with and without `--reencrypt`.
 * Baseline, same run and same rows: a plain full-table read (SELECT of every id and sealed
 * value). Each rotation is timed twice: as the real command in a child process (what an
 * operator waits for: start-up, key checks, rotation, exit) and in process (the rotation work
 * alone). Bounded: one instance, ~10-20 s on a 2-core machine. Run: `bun bench/rotate.ts`.
 */
import { rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.ts';
import { createInstance, openInstance } from '../src/instance.ts';
import { reencryptValues } from '../src/keyring/reencrypt.ts';
import { rotateDataKey, rotateMasterKey, type KeyringContext } from '../src/keyring/rotate.ts';
import {
  createTestTables,
  putTestValues,
  testNoteColumn,
  testValueColumn,
  type TestValue,
} from '../test/fixtures/keyring-tables.ts';
import { createLogger } from '../src/log/logger.ts';
import { KEYRING_FIXTURE, pinnedEnv, sourceCli, writeConfig } from '../test/harness.ts';

const VALUES = 100_000;
const dir = mkdtempSync(join(tmpdir(), 'secryn-bench-rotate-'));
const logger = createLogger({ level: 'warn', format: 'pretty' });
const columns = [testNoteColumn, testValueColumn];

try {
  const configPath = writeConfig(dir);
  const { config } = loadConfig({ path: configPath, env: {} });
  const setup = createInstance(config, logger, undefined, { env: {} });
  createTestTables(setup.sqlite);
  const values: TestValue[] = [];
  for (let i = 0; i < VALUES; i++) {
    values.push({
      id: `res_${String(i).padStart(8, '0')}`,
      version: 1,
      plaintext: `value ${i} `.padEnd(200, 'x'),
    });
  }
  const fillStart = performance.now();
  putTestValues(setup.sqlite, setup.keyring, values);
  const fillMs = performance.now() - fillStart;
  await setup.close();

  const open = () => openInstance(config, logger, { env: {} });
  const contextOf = (instance: ReturnType<typeof open>): KeyringContext => ({
    sqlite: instance.sqlite,
    config,
    env: {},
    clock: instance.clock,
    logger,
    keyring: instance.keyring,
  });

  // Baseline: a plain full-table read of the same rows (best of 3).
  const reader = open();
  let baselineMs = Infinity;
  let decryptMs = Infinity;
  for (let round = 0; round < 3; round++) {
    let start = performance.now();
    const rows = reader.sqlite
      .query<
        { id: string; version: number; value: Uint8Array },
        []
      >('SELECT id, version, value FROM keyring_test_values')
      .all();
    baselineMs = Math.min(baselineMs, performance.now() - start);
    if (rows.length !== VALUES) throw new Error(`expected ${VALUES} rows, got ${rows.length}`);
    start = performance.now();
    for (const row of rows)
      reader.keyring.decrypt(row.value, testValueColumn.at(row.id, row.version));
    decryptMs = Math.min(decryptMs, performance.now() - start);
  }
  await reader.close();

  const cli = async (args: string[]) => {
    const start = performance.now();
    const proc = Bun.spawn(
      [...sourceCli([KEYRING_FIXTURE]), 'master-key', 'rotate', ...args, '--config', configPath],
      {
        cwd: dir,
        env: pinnedEnv(),
        stdout: 'pipe',
        stderr: 'pipe',
      },
    );
    const code = await proc.exited;
    const ms = performance.now() - start;
    if (code !== 0)
      throw new Error(`rotate ${args.join(' ')} failed: ${await new Response(proc.stderr).text()}`);
    return ms;
  };

  const cliRotateMs = await cli([]);
  const cliReencryptMs = await cli(['--reencrypt']);

  const admin = open();
  let start = performance.now();
  rotateMasterKey(contextOf(admin), { actor: 'bench' });
  const inProcessRotateMs = performance.now() - start;
  start = performance.now();
  const rotation = rotateDataKey(contextOf(admin), { actor: 'bench', columns });
  // Grace 0: no server runs here, so there is nothing to wait for (the CLI waits at most 1.5 s
  // after the commit; with 100 000 values the first pass takes longer than that anyway).
  const result = await reencryptValues(contextOf(admin), rotation.id, { columns, sweepGraceMs: 0 });
  const inProcessReencryptMs = performance.now() - start;
  await admin.close();
  if (result.reencrypted !== VALUES) throw new Error(`re-encrypted ${result.reencrypted}`);

  const rows: [string, number][] = [
    ['baseline: full-table read (SELECT all rows)', baselineMs],
    ['full-table read + decrypt (reference)', baselineMs + decryptMs],
    ['master-key rotate (CLI process)', cliRotateMs],
    ['master-key rotate (in process)', inProcessRotateMs],
    ['master-key rotate --reencrypt (CLI process)', cliReencryptMs],
    ['master-key rotate --reencrypt (in process)', inProcessReencryptMs],
  ];
  console.log(
    `${VALUES} values of 200 B (filled in ${(fillMs / 1000).toFixed(1)} s), bun ${Bun.version}`,
  );
  console.log(`${'operation'.padEnd(46)} ${'time'.padStart(10)} ${'× baseline'.padStart(11)}`);
  for (const [name, ms] of rows) {
    console.log(
      `${name.padEnd(46)} ${`${ms.toFixed(1)} ms`.padStart(10)} ${(ms / baselineMs).toFixed(1).padStart(11)}`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
