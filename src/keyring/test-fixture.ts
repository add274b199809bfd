/**
 * Test-only encrypted tables (not part of the schema: tests create them). They let the keyring
 * tests and bench/rotate.ts prove the registry, re-encryption and status before any feature
 * stores encrypted values. `secryn master-key` loads this module only when the environment sets
 * `SECRYN_TEST_FIXTURES=keyring`, so that a child process in a test walks these tables too.
 *
 * - keyring_test_values: text ids, a version column bound into the AAD (like secret versions).
 * - keyring_test_notes: integer ids, no version (like a webhook's signing secret).
 */
import type { Database } from 'bun:sqlite';
import { blob, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { registerEncryptedColumn } from '../db/schema/encrypted-columns.ts';
import type { InstanceKeyring } from './live-keyring.ts';

/** Test table with text ids and a version column bound into the AAD. */
export const keyringTestValues = sqliteTable('keyring_test_values', {
  id: text('id').primaryKey(),
  version: integer('version').notNull(),
  value: blob('value', { mode: 'buffer' }),
});

/** Test table with integer ids and no version. */
export const keyringTestNotes = sqliteTable('keyring_test_notes', {
  id: integer('id').primaryKey(),
  note: blob('note', { mode: 'buffer' }),
});

/** Registered handle of keyring_test_values.value. */
export const testValueColumn = registerEncryptedColumn({
  table: keyringTestValues,
  idColumn: keyringTestValues.id,
  column: keyringTestValues.value,
  versionColumn: keyringTestValues.version,
});

/** Registered handle of keyring_test_notes.note. */
export const testNoteColumn = registerEncryptedColumn({
  table: keyringTestNotes,
  idColumn: keyringTestNotes.id,
  column: keyringTestNotes.note,
});

/** Creates both test tables if absent. */
export function createTestTables(sqlite: Database): void {
  sqlite.run(
    'CREATE TABLE IF NOT EXISTS keyring_test_values (id TEXT PRIMARY KEY, version INTEGER NOT NULL, value BLOB)',
  );
  sqlite.run('CREATE TABLE IF NOT EXISTS keyring_test_notes (id INTEGER PRIMARY KEY, note BLOB)');
}

/** A stored test value. */
export type TestValue = { id: string; version: number; plaintext: string };

/** Encrypts and inserts (or replaces) values, 1000 per transaction. */
export function putTestValues(
  sqlite: Database,
  keyring: InstanceKeyring,
  values: readonly TestValue[],
): void {
  const insert = sqlite.query(
    'INSERT OR REPLACE INTO keyring_test_values (id, version, value) VALUES (?, ?, ?)',
  );
  for (let i = 0; i < values.length; i += 1000) {
    sqlite.transaction(() => {
      for (const v of values.slice(i, i + 1000)) {
        insert.run(
          v.id,
          v.version,
          keyring.encrypt(v.plaintext, testValueColumn.at(v.id, v.version)),
        );
      }
    })();
  }
}

/** Encrypts and inserts (or replaces) notes. */
export function putTestNotes(
  sqlite: Database,
  keyring: InstanceKeyring,
  notes: readonly { id: number; plaintext: string }[],
): void {
  const insert = sqlite.query('INSERT OR REPLACE INTO keyring_test_notes (id, note) VALUES (?, ?)');
  sqlite.transaction(() => {
    for (const n of notes) insert.run(n.id, keyring.encrypt(n.plaintext, testNoteColumn.at(n.id)));
  })();
}

/** Reads and decrypts one test value (undefined if absent). */
export function getTestValue(
  sqlite: Database,
  keyring: InstanceKeyring,
  id: string,
): string | undefined {
  const row = sqlite
    .query<
      { version: number; value: Uint8Array },
      [string]
    >('SELECT version, value FROM keyring_test_values WHERE id = ?')
    .get(id);
  return row ? keyring.decryptString(row.value, testValueColumn.at(id, row.version)) : undefined;
}

/** Reads and decrypts every test value and note, keyed by id. */
export function getAllTestPlaintexts(
  sqlite: Database,
  keyring: InstanceKeyring,
): Map<string, string> {
  const out = new Map<string, string>();
  for (const row of sqlite
    .query<
      { id: string; version: number; value: Uint8Array },
      []
    >('SELECT id, version, value FROM keyring_test_values')
    .all()) {
    out.set(row.id, keyring.decryptString(row.value, testValueColumn.at(row.id, row.version)));
  }
  for (const row of sqlite
    .query<{ id: number; note: Uint8Array }, []>('SELECT id, note FROM keyring_test_notes')
    .all()) {
    out.set(`note:${row.id}`, keyring.decryptString(row.note, testNoteColumn.at(row.id)));
  }
  return out;
}
