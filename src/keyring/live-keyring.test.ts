import { describe, expect, test } from 'bun:test';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { encodeMasterKey, generateMasterKey } from '../crypto/master-key.ts';
import { ServiceUnavailableError } from '../errors.ts';
import type { Instance } from '../instance.ts';
import { buildApp } from '../server.ts';
import { tempDir } from '../../test/harness.ts';
import { makeInstance, open } from '../../test/master-key-helpers.ts';
import { reencryptValues } from './reencrypt.ts';
import { rotateDataKey, rotateMasterKey } from './rotate.ts';
import {
  getAllTestPlaintexts,
  getTestValue,
  putTestValues,
  testNoteColumn,
  testValueColumn,
} from '../../test/fixtures/keyring-tables.ts';

const columns = [testValueColumn, testNoteColumn];

function contextOf(instance: Instance, env: Record<string, string | undefined> = {}) {
  return {
    sqlite: instance.sqlite,
    config: instance.config,
    env,
    clock: instance.clock,
    logger: instance.logger,
    keyring: instance.keyring,
  };
}

function rotateWithNewDataKey(instance: Instance) {
  return rotateDataKey(contextOf(instance), { actor: 't', columns: [] });
}

const versionOf = (sealed: Uint8Array) => new DataView(sealed.buffer).getUint32(1);

describe('LiveKeyring', () => {
  // The systemd sandbox: the server got the master key as a credential (here: its
  // environment) and can read no key file a rotation writes (here: the file is gone).
  test('rotate --reencrypt with a new key the server cannot read: reads, writes and health keep working, no restart', async () => {
    using dir = tempDir();
    const oldEnv = { SECRYN_MASTER_KEY: encodeMasterKey(generateMasterKey()) };
    const setup = await makeInstance(dir.path, { values: 12, notes: 2, env: oldEnv });
    const server = open(setup, { env: oldEnv, keyringRefreshMs: 60_000 });
    const admin = open(setup, { env: oldEnv });
    const ctx = contextOf(admin, oldEnv);
    const lines = (server.logger as unknown as { lines: string[] }).lines;
    const newKeyFile = join(dir.path, 'new.key');
    try {
      // Step 1, data key: wrapped under the master key the server holds; it loads it live.
      const dataKeyRotation = rotateDataKey(ctx, { actor: 't', columns });
      expect(server.keyring.refresh()).toBe(true);
      expect(server.keyring.currentVersion).toBe(2);
      const result = await reencryptValues(ctx, dataKeyRotation.id, { columns, sweepGraceMs: 0 });
      expect(result).toMatchObject({ completed: true, reencrypted: 14, remaining: 0 });
      // Step 2, master key: re-wrapping only; the server never reads the new key.
      const rotation = rotateMasterKey(ctx, { actor: 't', newKeyFile });
      rmSync(newKeyFile);
      server.keyring.refresh();
      expect(server.keyring.fingerprint).toBe(rotation.newFingerprint);
      expect(server.keyring.isReady()).toBe(true);
      const actual = getAllTestPlaintexts(server.sqlite, server.keyring);
      for (const [id, plaintext] of setup.expected) expect(actual.get(id)).toBe(plaintext);
      // Writes are sealed under the new data key.
      const where = testValueColumn.at('res_new', 1);
      expect(versionOf(server.keyring.encrypt('fresh', where))).toBe(2);
      expect(lines.join('\n')).not.toContain('keyring');
    } finally {
      await server.close();
      await admin.close();
    }
  });

  test('file source: after a master-key rotation the server takes the new key from its file for the next data key', async () => {
    using dir = tempDir();
    const setup = await makeInstance(dir.path, { values: 3, notes: 0 });
    const server = open(setup, { keyringRefreshMs: 60_000 });
    try {
      const first = open(setup);
      rotateMasterKey(contextOf(first), { actor: 't' });
      await first.close();
      server.keyring.refresh();
      expect(server.keyring.isReady()).toBe(true);
      // The key file now holds the new key; the server loads the next data key with it.
      const second = open(setup);
      rotateDataKey(contextOf(second), { actor: 't', columns });
      putTestValues(second.sqlite, second.keyring, [{ id: 'res_v2', version: 1, plaintext: 'v2' }]);
      await second.close();
      expect(getTestValue(server.sqlite, server.keyring, 'res_v2')).toBe('v2');
      expect(server.keyring.currentVersion).toBe(2);
    } finally {
      await server.close();
    }
  });

  test('a data key the server cannot unwrap: unready naming why (logged once), 503 not 500, never sealed under an older key', async () => {
    using dir = tempDir();
    const oldEnv = { SECRYN_MASTER_KEY: encodeMasterKey(generateMasterKey()) };
    const setup = await makeInstance(dir.path, { values: 3, notes: 0, env: oldEnv });
    const server = open(setup, { env: oldEnv, keyringRefreshMs: 0 });
    const lines = (server.logger as unknown as { lines: string[] }).lines;
    const newKeyFile = join(dir.path, 'new.key');
    try {
      const admin = open(setup, { env: oldEnv });
      rotateMasterKey(contextOf(admin, oldEnv), { actor: 't', newKeyFile });
      await admin.close();
      const newEnv = { SECRYN_MASTER_KEY: readFileSync(newKeyFile, 'utf8').trim() };
      rmSync(newKeyFile); // unreadable to the server from now on
      const later = open(setup, { env: newEnv });
      rotateDataKey(contextOf(later, newEnv), { actor: 't', columns });
      putTestValues(later.sqlite, later.keyring, [{ id: 'res_v2', version: 1, plaintext: 'v2' }]);
      await later.close();

      expect(() => getTestValue(server.sqlite, server.keyring, 'res_v2')).toThrow(
        ServiceUnavailableError,
      );
      expect(server.keyring.isReady()).toBe(false);
      expect(server.keyring.unavailableReason).toContain('data key v2');
      const where = testValueColumn.at('res_x', 1);
      expect(() => server.keyring.encrypt('x', where)).toThrow(ServiceUnavailableError);
      server.keyring.refresh();
      // Values under the keys it holds still open.
      expect(getTestValue(server.sqlite, server.keyring, 'res_000001')).toBe(
        setup.expected.get('res_000001')!,
      );
      expect(lines.filter((l) => l.includes('keyring unavailable'))).toHaveLength(1);
      // Health names the failing check.
      const app = buildApp(server);
      const health = await app.handle(new Request('http://localhost/v1/health'));
      expect(health.status).toBe(503);
      expect(await health.json()).toMatchObject({ status: 'unavailable', failing: ['keyring'] });
    } finally {
      await server.close();
    }
  });

  test('encrypt checks for a new data key at most once per refresh interval', async () => {
    using dir = tempDir();
    const setup = await makeInstance(dir.path, { values: 1, notes: 0 });
    const server = open(setup, { keyringRefreshMs: 1000 });
    const admin = open(setup);
    try {
      rotateWithNewDataKey(admin);
      const where = testValueColumn.at('res_x', 1);
      expect(versionOf(server.keyring.encrypt('a', where))).toBe(1);
      await Bun.sleep(1050);
      expect(versionOf(server.keyring.encrypt('b', where))).toBe(2);
    } finally {
      await server.close();
      await admin.close();
    }
  });
});
