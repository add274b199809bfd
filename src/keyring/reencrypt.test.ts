import { describe, expect, test } from 'bun:test';
import { readDataKeyVersion } from '../crypto/envelope.ts';
import type { Instance } from '../instance.ts';
import { tempDir } from '../../test/harness.ts';
import { expectEveryValueDecrypts, makeInstance, open } from '../../test/master-key-helpers.ts';
import { reencryptValues } from './reencrypt.ts';
import { rotateDataKey, type KeyringContext } from './rotate.ts';
import { keyringStatus } from './status.ts';
import { readRotation, readUnfinishedReencryption } from './store.ts';
import {
  putTestValues,
  testNoteColumn,
  testValueColumn,
} from '../../test/fixtures/keyring-tables.ts';

const columns = [testNoteColumn, testValueColumn];

function contextOf(instance: Instance): KeyringContext {
  return {
    sqlite: instance.sqlite,
    config: instance.config,
    env: {},
    clock: instance.clock,
    logger: instance.logger,
    keyring: instance.keyring,
  };
}

function versionsIn(instance: Instance): Map<number, number> {
  const counts = new Map<number, number>();
  const rows = instance.sqlite
    .query<
      { v: Uint8Array },
      []
    >('SELECT value AS v FROM keyring_test_values UNION ALL SELECT note FROM keyring_test_notes')
    .all();
  for (const { v } of rows) {
    const version = readDataKeyVersion(v);
    counts.set(version, (counts.get(version) ?? 0) + 1);
  }
  return counts;
}

describe('re-encryption', () => {
  test('re-seals every registered value (text and integer ids) under the new data key', async () => {
    using dir = tempDir();
    const setup = await makeInstance(dir.path, { values: 1234, notes: 7 });
    const instance = open(setup);
    try {
      const ctx = contextOf(instance);
      const before = keyringStatus(instance.sqlite, instance.keyring, null, columns);
      expect(before.data_keys).toEqual([
        { version: 1, created_at: expect.any(String), current: true, values: 1241 },
      ]);
      const rotation = rotateDataKey(ctx, { actor: 't', columns });
      const progress: number[] = [];
      const result = await reencryptValues(ctx, rotation.id, {
        columns,
        batchSize: 100,
        sweepGraceMs: 0,
        onProgress: (p) => progress.push(p.done),
      });
      expect(result).toMatchObject({
        dataKeyVersion: 2,
        reencrypted: 1241,
        remaining: 0,
        undecryptable: 0,
        completed: true,
      });
      expect(progress.at(-1)).toBe(1241);
      expect(versionsIn(instance)).toEqual(new Map([[2, 1241]]));
      expect(readRotation(instance.sqlite, rotation.id)).toMatchObject({
        reencryptCompletedAt: expect.any(Number),
        reencryptedValues: 1241,
      });
      expect(readUnfinishedReencryption(instance.sqlite)).toBeUndefined();
      const after = keyringStatus(instance.sqlite, instance.keyring, null, columns);
      expect(after.data_keys.map((k) => [k.version, k.current, k.values])).toEqual([
        [1, false, 0],
        [2, true, 1241],
      ]);
    } finally {
      await instance.close();
    }
    await expectEveryValueDecrypts(setup);
  });

  test('an interrupted run resumes where it stopped', async () => {
    using dir = tempDir();
    const setup = await makeInstance(dir.path, { values: 1000, notes: 0 });
    const instance = open(setup);
    try {
      const ctx = contextOf(instance);
      const rotation = rotateDataKey(ctx, { actor: 't', columns });
      let batches = 0;
      await expect(
        reencryptValues(ctx, rotation.id, {
          columns,
          batchSize: 100,
          sweepGraceMs: 0,
          onProgress: () => {
            if (++batches === 3) throw new Error('interrupted');
          },
        }),
      ).rejects.toThrow('interrupted');
      expect(versionsIn(instance)).toEqual(
        new Map([
          [1, 700],
          [2, 300],
        ]),
      );
      const status = keyringStatus(instance.sqlite, instance.keyring, null, columns);
      expect(status.reencryption).toMatchObject({ rotation_id: rotation.id, remaining: 700 });
      const selected: number[] = [];
      const result = await reencryptValues(ctx, rotation.id, {
        columns,
        batchSize: 100,
        sweepGraceMs: 0,
        onProgress: (p) => selected.push(p.done),
      });
      // Only the 700 left were visited; the total counts both runs.
      expect(selected.at(-1)).toBe(700);
      expect(result).toMatchObject({ reencrypted: 700, completed: true });
      expect(readRotation(instance.sqlite, rotation.id)!.reencryptedValues).toBe(1000);
      expect(versionsIn(instance)).toEqual(new Map([[2, 1000]]));
    } finally {
      await instance.close();
    }
    await expectEveryValueDecrypts(setup);
  });

  test('values a server writes meanwhile: new-key ones are skipped, old-key ones swept', async () => {
    using dir = tempDir();
    const setup = await makeInstance(dir.path, { values: 600, notes: 0 });
    const admin = open(setup);
    // A server that has not noticed the new data key yet (long refresh interval).
    const server = open(setup, { keyringRefreshMs: 60_000 });
    try {
      const ctx = contextOf(admin);
      const rotation = rotateDataKey(ctx, { actor: 't', columns });
      let batch = 0;
      const result = await reencryptValues(ctx, rotation.id, {
        columns,
        batchSize: 100,
        sweepGraceMs: 0,
        onProgress: () => {
          batch++;
          if (batch === 2) {
            // Behind the cursor, sealed with the old key: only a sweep can catch it.
            putTestValues(server.sqlite, server.keyring, [
              { id: 'res_000003', version: 1, plaintext: 'rewritten by the server' },
            ]);
            setup.expected.set('res_000003', 'rewritten by the server');
          }
          if (batch === 3) {
            // Ahead of the cursor, sealed with the new key: skipped.
            server.keyring.refresh();
            putTestValues(server.sqlite, server.keyring, [
              { id: 'res_000590', version: 1, plaintext: 'new key already' },
            ]);
            setup.expected.set('res_000590', 'new key already');
          }
        },
      });
      expect(result.completed).toBe(true);
      expect(result.reencrypted).toBe(600); // 599 in the first pass (one skipped) + 1 swept
      expect(versionsIn(admin)).toEqual(new Map([[2, 600]]));
    } finally {
      await admin.close();
      await server.close();
    }
    await expectEveryValueDecrypts(setup);
  });

  test('a corrupt value is reported and left alone; the run still completes', async () => {
    using dir = tempDir();
    const setup = await makeInstance(dir.path, { values: 10, notes: 0 });
    const instance = open(setup);
    try {
      const ctx = contextOf(instance);
      const row = instance.sqlite
        .query<
          { value: Uint8Array },
          []
        >(`SELECT value FROM keyring_test_values WHERE id = 'res_000004'`)
        .get()!;
      const corrupt = new Uint8Array(row.value);
      corrupt[corrupt.length - 1]! ^= 1;
      instance.sqlite
        .query(`UPDATE keyring_test_values SET value = ? WHERE id = 'res_000004'`)
        .run(corrupt);
      const rotation = rotateDataKey(ctx, { actor: 't', columns });
      const result = await reencryptValues(ctx, rotation.id, { columns, sweepGraceMs: 0 });
      expect(result).toMatchObject({
        reencrypted: 9,
        undecryptable: 1,
        remaining: 0,
        completed: true,
      });
    } finally {
      await instance.close();
    }
  });
});
