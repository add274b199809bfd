/**
 * The MAC of an API key row: HMAC-SHA256, under the API-key subkey of the integrity root key, of
 * a canonical encoding of every column that decides what the key may do (and every other column
 * but `last_used_at`, which the server bumps without the key). Written with every change of a
 * row, checked whenever authentication loads one: a row planted or edited in the database file
 * (without the master key) does not verify and is refused.
 */
import type { Database } from 'bun:sqlite';
import { hmacHex, hmacHexMatches } from '../crypto/integrity.ts';
import { connectionOf, type Db } from '../db/client.ts';
import { integrityOf } from './integrity.ts';

/** Format tag of the encoding; a future encoding gets a new one. */
export const API_KEY_MAC_FORMAT = 'secryn.api-key.v1';

/** The columns the MAC covers, as stored (JSON columns as their stored text). */
export type ApiKeyMacFields = {
  id: string;
  name: string;
  role: string;
  lookup_id: string;
  token_hash: Uint8Array;
  project_ids: string;
  vault_ids: string;
  scopes: string | null;
  rate_limit_per_minute: number | null;
  rate_limit_burst: number | null;
  expires_at: number | null;
  created_at: number;
  created_by: string;
  revoked_at: number | null;
};

/** The SELECT list of {@link ApiKeyMacFields}. */
export const API_KEY_MAC_COLUMNS = `id, name, role, lookup_id, token_hash, project_ids, vault_ids,
  scopes, rate_limit_per_minute, rate_limit_burst, expires_at, created_at, created_by, revoked_at`;

/**
 * A JSON array of the format tag and each column in a fixed order (the token hash as lowercase
 * hex): strings, integers and null only, so the encoding is unambiguous and easy to reproduce.
 */
export function apiKeyMacInput(row: ApiKeyMacFields): string {
  return JSON.stringify([
    API_KEY_MAC_FORMAT,
    row.id,
    row.name,
    row.role,
    row.lookup_id,
    Buffer.from(row.token_hash).toString('hex'),
    row.project_ids,
    row.vault_ids,
    row.scopes,
    row.rate_limit_per_minute,
    row.rate_limit_burst,
    row.expires_at,
    row.created_at,
    row.created_by,
    row.revoked_at,
  ]);
}

/** Whether `mac` is the MAC of `row` under `key`. */
export function apiKeyMacMatches(
  key: Uint8Array,
  row: ApiKeyMacFields,
  mac: string | null,
): boolean {
  return hmacHexMatches(key, apiKeyMacInput(row), mac);
}

type StoredRow = ApiKeyMacFields & { mac: string | null };

/**
 * Recomputes and stores the MAC of key `id` from the row as stored. Call inside the transaction
 * of every write to `api_keys` (except `last_used_at`).
 */
export function stampApiKeyMac(sqlite: Database, key: Uint8Array, id: string): void {
  const row = sqlite
    .query<StoredRow, [string]>(`SELECT ${API_KEY_MAC_COLUMNS} FROM api_keys WHERE id = ?`)
    .get(id);
  if (!row) return;
  sqlite
    .query('UPDATE api_keys SET mac = ? WHERE id = ?')
    .run(hmacHex(key, apiKeyMacInput(row)), id);
}

/**
 * {@link stampApiKeyMac} with the instance's key: what every writer of `api_keys` calls after its
 * write, in the same transaction. Throws when the keyring is not open (no row without a MAC).
 */
export function sealApiKeyRow(db: Db, id: string): void {
  const sqlite = connectionOf(db);
  stampApiKeyMac(sqlite, integrityOf(sqlite).apiKeyMac, id);
}

/** Stamps every key (the migration that introduces MACs); returns how many. */
export function stampAllApiKeyMacs(sqlite: Database, key: Uint8Array): number {
  const ids = sqlite.query<{ id: string }, []>('SELECT id FROM api_keys').all();
  for (const { id } of ids) stampApiKeyMac(sqlite, key, id);
  return ids.length;
}

/** Whether any key carries a MAC (the integrity key existed once). */
export function anyApiKeyMac(sqlite: Database): boolean {
  return (
    sqlite
      .query<{ n: number }, []>('SELECT 1 AS n FROM api_keys WHERE mac IS NOT NULL LIMIT 1')
      .get() !== null
  );
}

/** The ids of keys whose MAC does not verify (planted or edited rows), in id order. */
export function tamperedApiKeys(sqlite: Database, key: Uint8Array): string[] {
  const tampered: string[] = [];
  const rows = sqlite
    .query<StoredRow, []>(`SELECT ${API_KEY_MAC_COLUMNS}, mac FROM api_keys ORDER BY id`)
    .iterate();
  for (const row of rows) if (!apiKeyMacMatches(key, row, row.mac)) tampered.push(row.id);
  return tampered;
}
