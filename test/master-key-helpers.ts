/**
 * Helpers shared by the master-key and encryption-at-rest tests: an instance made from a real
 * TOML config (so the CLI child and the test process see the same files), filled with values in
 * the keyring's test tables, and ways to check files and values afterwards.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { expect } from 'bun:test';
import { loadConfig } from '../src/config/load.ts';
import type { Config } from '../src/config/schema.ts';
import { masterKeyFingerprint } from '../src/crypto/keyring.ts';
import { decodeMasterKey } from '../src/crypto/master-key.ts';
import { createInstance, openInstance, type Instance } from '../src/instance.ts';
import {
  createTestTables,
  getAllTestPlaintexts,
  putTestNotes,
  putTestValues,
  type TestValue,
} from './fixtures/keyring-tables.ts';
import {
  KEYRING_FIXTURE,
  memoryLogger,
  runCli,
  sourceCli,
  writeConfig,
  type CliResult,
} from './harness.ts';

/** Paths of an instance created in a test directory by {@link makeInstance}. */
export type Setup = {
  dir: string;
  configPath: string;
  config: Config;
  dbPath: string;
  keyPath: string;
  /** id → plaintext of every stored value (`note:<n>` for notes). */
  expected: Map<string, string>;
};

/** A value that must never appear in any file. */
export const MARKER = 'MARKER-2b9e51c4-plaintext-must-not-hit-disk';

/** The environment in-process instances get (no host SECRYN_* variables). */
export const NO_ENV: Record<string, string | undefined> = {};

/**
 * Creates an instance under `dir` from a TOML config, with `values` test values (two versions
 * each for every tenth id) and `notes` notes, all containing {@link MARKER}; closes it.
 */
export async function makeInstance(
  dir: string,
  options: { values?: number; notes?: number; env?: Record<string, string | undefined> } = {},
): Promise<Setup> {
  const configPath = writeConfig(dir);
  const { config } = loadConfig({ path: configPath, env: {} });
  const instance = createInstance(config, memoryLogger(), undefined, {
    env: options.env ?? NO_ENV,
  });
  const expected = new Map<string, string>();
  try {
    createTestTables(instance.sqlite);
    const values: TestValue[] = [];
    for (let i = 0; i < (options.values ?? 50); i++) {
      const id = `res_${String(i).padStart(6, '0')}`;
      const plaintext = `${MARKER} value ${i} ✓`;
      values.push({ id, version: 1 + (i % 10 === 0 ? 1 : 0), plaintext });
      expected.set(id, plaintext);
    }
    putTestValues(instance.sqlite, instance.keyring, values);
    const notes = Array.from({ length: options.notes ?? 5 }, (_, i) => ({
      id: i + 1,
      plaintext: `${MARKER} note ${i}`,
    }));
    putTestNotes(instance.sqlite, instance.keyring, notes);
    for (const n of notes) expected.set(`note:${n.id}`, n.plaintext);
  } finally {
    await instance.close();
  }
  return {
    dir,
    configPath,
    config,
    dbPath: config.storage.path,
    keyPath: config.encryption.master_key_file,
    expected,
  };
}

/** Opens the instance in process (as `serve` would). */
export function open(setup: Setup, options: Parameters<typeof openInstance>[2] = {}): Instance {
  return openInstance(setup.config, memoryLogger(), { env: NO_ENV, ...options });
}

/** Opens the instance and checks that every stored value decrypts to what was stored. */
export async function expectEveryValueDecrypts(
  setup: Setup,
  options: Parameters<typeof openInstance>[2] = {},
): Promise<void> {
  const instance = open(setup, options);
  try {
    const actual = getAllTestPlaintexts(instance.sqlite, instance.keyring);
    expect(actual.size).toBe(setup.expected.size);
    for (const [id, plaintext] of setup.expected) expect(actual.get(id)).toBe(plaintext);
  } finally {
    await instance.close();
  }
}

/** The fingerprint of the key in a key file. */
export function fileFingerprint(path: string): string {
  return masterKeyFingerprint(decodeMasterKey(readFileSync(path, 'utf8'), path));
}

/** SHA-256 of a file's bytes, or null if absent. */
export function fileHash(path: string): string | null {
  return existsSync(path) ? createHash('sha256').update(readFileSync(path)).digest('hex') : null;
}

/** Hashes of the database file and its -wal/-shm companions (null: absent). */
export function databaseHashes(dbPath: string): Record<string, string | null> {
  return {
    db: fileHash(dbPath),
    wal: fileHash(`${dbPath}-wal`),
    shm: fileHash(`${dbPath}-shm`),
  };
}

/** Runs `secryn <args> --config <setup>` with the keyring test tables registered. */
export function cli(
  setup: Setup,
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<CliResult> {
  return runCli([...args, '--config', setup.configPath], {
    cwd: setup.dir,
    env,
    command: sourceCli([KEYRING_FIXTURE]),
  });
}

/** The parsed `master-key status --json`, failing the test if the command fails. */
export async function statusJson(
  setup: Setup,
  env: Record<string, string | undefined> = {},
): Promise<{
  fingerprint: string;
  source: string;
  key_file: string | null;
  created_at: string;
  last_rotated_at: string | null;
  rotations: number;
  current_data_key_version: number;
  data_keys: { version: number; created_at: string; current: boolean; values: number }[];
  unreadable_values: number;
  reencryption: { rotation_id: number; data_key_version: number; remaining: number } | null;
  backup_files: string[];
}> {
  const result = await cli(setup, ['master-key', 'status', '--json'], env);
  if (result.exitCode !== 0)
    throw new Error(`status failed (${result.exitCode}): ${result.stderr}`);
  return JSON.parse(result.stdout);
}

/** The files in the key's directory whose names start with the key file's name. */
export function keyFiles(setup: Setup): string[] {
  const dir = join(setup.keyPath, '..');
  const base = setup.keyPath.slice(dir.length + 1);
  return [...new Bun.Glob(`${base}*`).scanSync({ cwd: dir, dot: true })].sort();
}
