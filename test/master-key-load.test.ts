/**
 * Rotation under load: an in-process instance (what `secryn serve` runs) keeps reading and
 * writing encrypted values while `secryn master-key rotate --reencrypt` runs in another process.
 * Every read must return the right plaintext, health must stay 200, and in the end every value
 * — including those the server wrote meanwhile — is under the new data key.
 */
import { describe, expect, test } from 'bun:test';
import { buildApp } from '../src/server.ts';
import { getTestValue, putTestValues } from './fixtures/keyring-tables.ts';
import { call, KEYRING_FIXTURE, pinnedEnv, sourceCli, tempDir } from './harness.ts';
import {
  expectEveryValueDecrypts,
  fileFingerprint,
  makeInstance,
  open,
  statusJson,
} from './master-key-helpers.ts';

describe('rotation under load', () => {
  test('reads and writes stay correct through master-key rotate --reencrypt', async () => {
    using dir = tempDir();
    const setup = await makeInstance(dir.path, { values: 3000, notes: 0 });
    const ids = [...setup.expected.keys()].filter((id) => id.startsWith('res_'));
    const server = open(setup); // default 1 s keyring refresh, as in `serve`
    const app = buildApp(server);
    const before = fileFingerprint(setup.keyPath);
    let reads = 0;
    let writes = 0;
    let healthChecks = 0;
    const failures: string[] = [];
    try {
      const child = Bun.spawn(
        [
          ...sourceCli([KEYRING_FIXTURE]),
          'master-key',
          'rotate',
          '--reencrypt',
          '--batch-size',
          '100',
          '--config',
          setup.configPath,
        ],
        {
          cwd: setup.dir,
          env: pinnedEnv(),
          stdout: 'pipe',
          stderr: 'pipe',
        },
      );
      let exited = false;
      const exit = child.exited.then((code) => {
        exited = true;
        return code;
      });
      let i = 0;
      while (!exited) {
        const id = ids[(i * 7919) % ids.length]!;
        try {
          const value = getTestValue(server.sqlite, server.keyring, id);
          if (value !== setup.expected.get(id)) failures.push(`${id}: wrong value`);
        } catch (error) {
          failures.push(`${id}: ${String(error)}`);
        }
        reads++;
        if (i % 25 === 0) {
          const target = ids[(i * 31) % ids.length]!;
          const plaintext = `rewritten ${i}`;
          await server.writes.run(() =>
            putTestValues(server.sqlite, server.keyring, [
              { id: target, version: target.endsWith('0') ? 2 : 1, plaintext },
            ]),
          );
          setup.expected.set(target, plaintext);
          writes++;
        }
        if (i % 200 === 0) {
          const health = await call(app, 'GET', '/v1/health');
          if (health.status !== 200) failures.push(`health ${health.status}`);
          healthChecks++;
        }
        if (i % 10 === 0) await Bun.sleep(0);
        i++;
      }
      const code = await exit;
      const stderr = await new Response(child.stderr).text();
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
      expect(failures).toEqual([]);
      expect(reads).toBeGreaterThan(1000);
      expect(writes).toBeGreaterThan(20);
      expect(healthChecks).toBeGreaterThan(3);
      // The server follows the new data key and master key without a restart.
      server.keyring.refresh();
      expect(server.keyring.currentVersion).toBe(2);
      expect(fileFingerprint(setup.keyPath)).not.toBe(before);
    } finally {
      await server.close();
    }
    const status = await statusJson(setup);
    expect(status.data_keys.map((k) => [k.version, k.values])).toEqual([
      [1, 0],
      [2, 3000],
    ]);
    await expectEveryValueDecrypts(setup);
  }, 60_000);
});
