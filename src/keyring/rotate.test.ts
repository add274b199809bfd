import { Database } from 'bun:sqlite';
import { describe, expect, test } from 'bun:test';
import { copyFileSync, existsSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { masterKeyFingerprint } from '../crypto/keyring.ts';
import { encodeMasterKey, generateMasterKey } from '../crypto/master-key.ts';
import type { Instance } from '../instance.ts';
import {
  expectEveryValueDecrypts,
  fileFingerprint,
  keyFiles,
  makeInstance,
  open,
  type Setup,
} from '../../test/master-key-helpers.ts';
import { tempDir } from '../../test/harness.ts';
import { KeyringError, MasterKeyMismatchError } from './errors.ts';
import { onMasterKeyRotated } from './hooks.ts';
import { nextKeyPath } from './key-files.ts';
import { rotateDataKey, rotateMasterKey, type KeyringContext } from './rotate.ts';
import { readKeyringState, readRotations } from './store.ts';
import { getTestValue, putTestValues } from '../../test/fixtures/keyring-tables.ts';

function contextOf(
  instance: Instance,
  env: Record<string, string | undefined> = {},
): KeyringContext {
  return {
    sqlite: instance.sqlite,
    config: instance.config,
    env,
    clock: instance.clock,
    logger: instance.logger,
    keyring: instance.keyring,
  };
}

async function rotateOnce(setup: Setup, options: { reencrypt?: boolean } = {}) {
  const instance = open(setup);
  try {
    if (options.reencrypt) return rotateDataKey(contextOf(instance), { actor: 'test' });
    return rotateMasterKey(contextOf(instance), { actor: 'test' });
  } finally {
    await instance.close();
  }
}

describe('master-key rotation (file source)', () => {
  test('replaces the key file, keeps the old key as a dated 0600 backup, records the rotation', async () => {
    using dir = tempDir();
    const setup = await makeInstance(dir.path, { values: 30 });
    const oldFingerprint = fileFingerprint(setup.keyPath);
    const rotation = await rotateOnce(setup);
    const newFingerprint = fileFingerprint(setup.keyPath);
    expect(newFingerprint).not.toBe(oldFingerprint);
    expect(rotation).toMatchObject({
      oldFingerprint,
      newFingerprint,
      keySource: 'file',
      keyFile: setup.keyPath,
      newDataKeyVersion: null,
      completedAt: expect.any(Number),
    });
    expect(rotation.backupFile).toMatch(/master\.key\.\d{4}-\d\d-\d\dT\d{6}Z\.bak$/);
    expect(fileFingerprint(rotation.backupFile!)).toBe(oldFingerprint);
    expect(statSync(rotation.backupFile!).mode & 0o777).toBe(0o600);
    expect(statSync(setup.keyPath).mode & 0o777).toBe(0o600);
    expect(existsSync(nextKeyPath(setup.keyPath))).toBe(false);
    await expectEveryValueDecrypts(setup);

    const instance = open(setup);
    try {
      expect(readKeyringState(instance.sqlite)!.fingerprint).toBe(newFingerprint);
      expect(readRotations(instance.sqlite)).toHaveLength(1);
      // Master-key-only rotation leaves the data keys alone; the generation moves so that
      // running servers learn the new fingerprint.
      expect(instance.keyring.currentVersion).toBe(1);
      expect(instance.keyring.generation).toBe(2);
    } finally {
      await instance.close();
    }
  });

  test('a running keyring keeps serving after another instance rotated (no reload needed)', async () => {
    using dir = tempDir();
    const setup = await makeInstance(dir.path, { values: 5 });
    const server = open(setup, { keyringRefreshMs: 0 });
    try {
      await rotateOnce(setup);
      await rotateOnce(setup);
      expect(getTestValue(server.sqlite, server.keyring, 'res_000001')).toBe(
        setup.expected.get('res_000001')!,
      );
      // A new value sealed by the server still opens after a restart with the new key.
      putTestValues(server.sqlite, server.keyring, [
        { id: 'res_new', version: 1, plaintext: 'fresh' },
      ]);
      setup.expected.set('res_new', 'fresh');
    } finally {
      await server.close();
    }
    await expectEveryValueDecrypts(setup);
  });

  test('--reencrypt rotation: a running keyring picks up the new data key', async () => {
    using dir = tempDir();
    const setup = await makeInstance(dir.path, { values: 5 });
    const lazy = open(setup, { keyringRefreshMs: 60_000 });
    const eager = open(setup, { keyringRefreshMs: 0 });
    try {
      const rotation = await rotateOnce(setup, { reencrypt: true });
      expect(rotation.newDataKeyVersion).toBe(2);
      // Within its refresh interval the lazy one still seals under v1 …
      putTestValues(lazy.sqlite, lazy.keyring, [{ id: 'res_lazy', version: 1, plaintext: 'a' }]);
      expect(lazy.keyring.currentVersion).toBe(1);
      // … the eager one switches at once, and the lazy one reloads on the first v2 value it reads.
      putTestValues(eager.sqlite, eager.keyring, [{ id: 'res_eager', version: 1, plaintext: 'b' }]);
      expect(eager.keyring.currentVersion).toBe(2);
      expect(getTestValue(lazy.sqlite, lazy.keyring, 'res_eager')).toBe('b');
      expect(lazy.keyring.currentVersion).toBe(2);
      expect(getTestValue(eager.sqlite, eager.keyring, 'res_lazy')).toBe('a');
    } finally {
      await lazy.close();
      await eager.close();
    }
  });

  test('the rotated hook runs inside the transaction; a throwing hook aborts the rotation', async () => {
    using dir = tempDir();
    const setup = await makeInstance(dir.path, { values: 3 });
    const seen: { inTransaction: boolean; newFingerprint: string }[] = [];
    const stop = onMasterKeyRotated(({ rotation, sqlite }) => {
      seen.push({ inTransaction: sqlite.inTransaction, newFingerprint: rotation.newFingerprint });
    });
    try {
      const rotation = await rotateOnce(setup);
      expect(seen).toEqual([{ inTransaction: true, newFingerprint: rotation.newFingerprint }]);
    } finally {
      stop();
    }
    const before = fileFingerprint(setup.keyPath);
    const filesBefore = keyFiles(setup);
    const stopFailing = onMasterKeyRotated(() => {
      throw new Error('audit log unavailable');
    });
    try {
      await expect(rotateOnce(setup)).rejects.toThrow('audit log unavailable');
    } finally {
      stopFailing();
    }
    expect(fileFingerprint(setup.keyPath)).toBe(before);
    expect(keyFiles(setup)).toEqual(filesBefore); // no .next left behind
    await expectEveryValueDecrypts(setup);
  });

  test('--new-key-file is refused for a key file source', async () => {
    using dir = tempDir();
    const setup = await makeInstance(dir.path, { values: 1 });
    const instance = open(setup);
    try {
      expect(() =>
        rotateMasterKey(contextOf(instance), { actor: 't', newKeyFile: join(dir.path, 'x.key') }),
      ).toThrow(KeyringError);
      expect(existsSync(join(dir.path, 'x.key'))).toBe(false);
    } finally {
      await instance.close();
    }
  });
});

describe('recovery of an interrupted rotation at open', () => {
  test('a stale master.key.next from a rotation that never committed is removed', async () => {
    using dir = tempDir();
    const setup = await makeInstance(dir.path, { values: 3 });
    const before = fileFingerprint(setup.keyPath);
    writeFileSync(nextKeyPath(setup.keyPath), encodeMasterKey(generateMasterKey()) + '\n', {
      mode: 0o600,
    });
    await expectEveryValueDecrypts(setup);
    expect(existsSync(nextKeyPath(setup.keyPath))).toBe(false);
    expect(fileFingerprint(setup.keyPath)).toBe(before);
  });

  test('committed but not swapped: the swap is finished with the recorded backup name', async () => {
    using dir = tempDir();
    const setup = await makeInstance(dir.path, { values: 3 });
    const rotation = await rotateOnce(setup);
    // Put the files back as they were right after the commit: old key in place, new in .next.
    renameSync(setup.keyPath, nextKeyPath(setup.keyPath));
    copyFileSync(rotation.backupFile!, setup.keyPath);
    const raw = new Database(setup.dbPath);
    raw.run('UPDATE keyring_rotations SET completed_at = NULL');
    raw.close();
    renameSync(rotation.backupFile!, `${rotation.backupFile}.moved`);

    await expectEveryValueDecrypts(setup);
    expect(fileFingerprint(setup.keyPath)).toBe(rotation.newFingerprint);
    expect(fileFingerprint(rotation.backupFile!)).toBe(rotation.oldFingerprint);
    expect(existsSync(nextKeyPath(setup.keyPath))).toBe(false);
    const after = open(setup);
    try {
      expect(readRotations(after.sqlite)[0]!.completedAt).not.toBeNull();
    } finally {
      await after.close();
    }
  });

  test('a wrong key with a .next that does not match either is refused and nothing changes', async () => {
    using dir = tempDir();
    const setup = await makeInstance(dir.path, { values: 3 });
    const other = encodeMasterKey(generateMasterKey()) + '\n';
    writeFileSync(setup.keyPath, other);
    writeFileSync(nextKeyPath(setup.keyPath), encodeMasterKey(generateMasterKey()) + '\n', {
      mode: 0o600,
    });
    expect(() => open(setup)).toThrow(MasterKeyMismatchError);
    expect(existsSync(nextKeyPath(setup.keyPath))).toBe(true);
  });
});

describe('master-key rotation (environment source)', () => {
  test('needs --new-key-file; the running keyring reloads from it; a restart needs the new key', async () => {
    using dir = tempDir();
    const key = generateMasterKey();
    const oldEnv = { SECRYN_MASTER_KEY: encodeMasterKey(key) };
    const setup = await makeInstance(dir.path, { values: 4, env: oldEnv });
    expect(existsSync(setup.keyPath)).toBe(false);
    const server = open(setup, { env: oldEnv, keyringRefreshMs: 0 });
    const admin = open(setup, { env: oldEnv });
    const newKeyFile = join(dir.path, 'new.key');
    try {
      expect(() => rotateMasterKey(contextOf(admin, oldEnv), { actor: 't' })).toThrow(
        /--new-key-file/,
      );
      rotateDataKey(contextOf(admin, oldEnv), { actor: 't', columns: [] });
      const rotation = rotateMasterKey(contextOf(admin, oldEnv), { actor: 't', newKeyFile });
      expect(rotation).toMatchObject({
        keySource: 'env',
        newKeyFile,
        completedAt: expect.any(Number),
      });
      expect(statSync(newKeyFile).mode & 0o777).toBe(0o600);
      expect(fileFingerprint(newKeyFile)).toBe(rotation.newFingerprint);
      expect(rotation.newFingerprint).not.toBe(masterKeyFingerprint(key));
      // The server still has the old key in its environment, yet follows the new data key.
      putTestValues(server.sqlite, server.keyring, [{ id: 'res_x', version: 1, plaintext: 'x' }]);
      expect(server.keyring.currentVersion).toBe(2);
      setup.expected.set('res_x', 'x');
    } finally {
      await server.close();
      await admin.close();
    }
    expect(() => open(setup, { env: oldEnv })).toThrow(
      new RegExp(`wrote the new key to ${newKeyFile}`),
    );
    const newEnv = { SECRYN_MASTER_KEY: (await Bun.file(newKeyFile).text()).trim() };
    await expectEveryValueDecrypts(setup, { env: newEnv });
  });
});
