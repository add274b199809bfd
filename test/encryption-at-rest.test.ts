/**
 * Encryption at rest, end to end on real SQLite files: no plaintext reaches the database, its
 * WAL or shared-memory file (also after a checkpoint and a re-encryption), values round-trip
 * through the instance keyring, a ciphertext moved elsewhere does not open, and health reports
 * 503 while the keyring is not loaded.
 */
import { describe, expect, test } from 'bun:test';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DecryptionError } from '../src/crypto/errors.ts';
import { ServiceUnavailableError } from '../src/errors.ts';
import { reencryptValues } from '../src/keyring/reencrypt.ts';
import { rotateDataKey } from '../src/keyring/rotate.ts';
import {
  getTestValue,
  putTestNotes,
  putTestValues,
  testNoteColumn,
  testValueColumn,
} from './fixtures/keyring-tables.ts';
import { buildApp } from '../src/server.ts';
import { call, tempDir } from './harness.ts';
import { makeInstance, MARKER, open } from './master-key-helpers.ts';

const NON_ASCII_MARKER = 'Geheimnis-Ünïcødé-秘密-🔑-3f9a';

/** Every file in `dir` (recursively) whose raw bytes contain any of `needles`. */
function filesContaining(dir: string, needles: string[]): string[] {
  const hits: string[] = [];
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const bytes = readFileSync(path);
    if (needles.some((needle) => bytes.includes(Buffer.from(needle, 'utf8')))) hits.push(path);
  }
  return hits;
}

describe('encryption at rest', () => {
  test('no plaintext in the database, -wal or -shm, before and after checkpoint and re-encryption', async () => {
    using dir = tempDir();
    const setup = await makeInstance(dir.path, { values: 200, notes: 5 });
    const instance = open(setup);
    const needles = [MARKER, NON_ASCII_MARKER];
    try {
      // Writes through the group-commit queue leave their pages in the WAL until a checkpoint.
      await instance.writes.run(() =>
        putTestValues(instance.sqlite, instance.keyring, [
          { id: 'res_big', version: 1, plaintext: `${MARKER} `.repeat(1500) },
          { id: 'res_utf8', version: 1, plaintext: NON_ASCII_MARKER },
        ]),
      );
      await instance.writes.run(() =>
        putTestNotes(instance.sqlite, instance.keyring, [{ id: 99, plaintext: NON_ASCII_MARKER }]),
      );
      const wal = readFileSync(`${setup.dbPath}-wal`);
      expect(wal.byteLength).toBeGreaterThan(0);
      expect(filesContaining(dir.path, needles)).toEqual([]);

      instance.sqlite.run('PRAGMA wal_checkpoint(TRUNCATE)');
      expect(filesContaining(dir.path, needles)).toEqual([]);

      // The plaintext is really in there, behind the keyring.
      expect(getTestValue(instance.sqlite, instance.keyring, 'res_utf8')).toBe(NON_ASCII_MARKER);

      // Re-encryption decrypts and rewrites every value: still nothing on disk.
      const ctx = {
        sqlite: instance.sqlite,
        config: instance.config,
        env: {},
        clock: instance.clock,
        logger: instance.logger,
        keyring: instance.keyring,
      };
      const columns = [testNoteColumn, testValueColumn];
      const rotation = rotateDataKey(ctx, { actor: 't', columns });
      const result = await reencryptValues(ctx, rotation.id, { columns, sweepGraceMs: 0 });
      expect(result.reencrypted).toBe(208);
      expect(filesContaining(dir.path, needles)).toEqual([]);
      instance.sqlite.run('PRAGMA wal_checkpoint(TRUNCATE)');
      expect(filesContaining(dir.path, needles)).toEqual([]);
    } finally {
      await instance.close();
    }
    expect(filesContaining(dir.path, needles)).toEqual([]);
  });

  test('the search above does find a marker stored in the clear', async () => {
    using dir = tempDir();
    const setup = await makeInstance(dir.path, { values: 1, notes: 0 });
    const instance = open(setup);
    try {
      instance.sqlite
        .query(`INSERT INTO keyring_test_notes (id, note) VALUES (1, ?)`)
        .run(Buffer.from(NON_ASCII_MARKER));
      instance.sqlite.run('PRAGMA wal_checkpoint(TRUNCATE)');
      expect(filesContaining(dir.path, [NON_ASCII_MARKER])).toEqual([setup.dbPath]);
    } finally {
      await instance.close();
    }
  });

  test('empty, 1-byte, 64 KiB and non-ASCII values round-trip through the database', async () => {
    using dir = tempDir();
    const setup = await makeInstance(dir.path, { values: 0, notes: 0 });
    const values = [
      { id: 'res_empty', version: 1, plaintext: '' },
      { id: 'res_one', version: 1, plaintext: 'x' },
      { id: 'res_64k', version: 3, plaintext: 'ab'.repeat(32 * 1024) },
      { id: 'res_utf8', version: 1, plaintext: NON_ASCII_MARKER },
    ];
    const writer = open(setup);
    try {
      putTestValues(writer.sqlite, writer.keyring, values);
    } finally {
      await writer.close();
    }
    const reader = open(setup);
    try {
      for (const v of values)
        expect(getTestValue(reader.sqlite, reader.keyring, v.id)).toBe(v.plaintext);
    } finally {
      await reader.close();
    }
  });

  test('a ciphertext copied to another row, version or column does not decrypt', async () => {
    using dir = tempDir();
    const setup = await makeInstance(dir.path, { values: 2, notes: 1 });
    const instance = open(setup);
    try {
      const { sqlite, keyring } = instance;
      const a = sqlite
        .query<
          { value: Uint8Array },
          []
        >(`SELECT value FROM keyring_test_values WHERE id = 'res_000000'`)
        .get()!.value;
      const attempts = [
        testValueColumn.at('res_000001', 1), // another row
        testValueColumn.at('res_000000', 1), // another version (res_000000 is stored as version 2)
        testNoteColumn.at('res_000000'), // another column
      ];
      for (const where of attempts)
        expect(() => keyring.decrypt(a, where)).toThrow(DecryptionError);
      sqlite.query(`UPDATE keyring_test_values SET value = ? WHERE id = 'res_000001'`).run(a);
      expect(() => getTestValue(sqlite, keyring, 'res_000001')).toThrow(DecryptionError);
      expect(getTestValue(sqlite, keyring, 'res_000000')).toBe(setup.expected.get('res_000000')!);
    } finally {
      await instance.close();
    }
  });

  test('health is 503 and sealing refused while the keyring is not loaded', async () => {
    using dir = tempDir();
    const setup = await makeInstance(dir.path, { values: 1, notes: 0 });
    const instance = open(setup);
    const app = buildApp(instance);
    try {
      expect((await call(app, 'GET', '/v1/health')).status).toBe(200);
      instance.keyring.close();
      const response = await call(app, 'GET', '/v1/health');
      expect(response.status).toBe(503);
      expect(await response.json()).toEqual({
        status: 'unavailable',
        version: expect.any(String),
        failing: ['keyring'],
      });
      expect(() => instance.keyring.encrypt('x', testNoteColumn.at(1))).toThrow(
        ServiceUnavailableError,
      );
    } finally {
      await instance.close();
    }
  });
});
