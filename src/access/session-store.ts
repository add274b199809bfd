/** SQL of console sessions: the `console_sessions` rows and the key row a session acts as. */
import type { Database, Statement } from 'bun:sqlite';
import { API_KEY_MAC_COLUMNS, type ApiKeyMacFields } from '../keyring/api-key-mac.ts';

/** A session row as the authenticator reads it. */
export type SessionRecord = {
  id: string;
  key_id: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
};

/** A key row with its MAC, as the authenticator needs it to rebuild the principal. */
export type SessionKeyRecord = ApiKeyMacFields & { mac: string | null };

/** Prepared statements over `console_sessions` (prepared once per instance). */
export class SessionStore {
  private readonly byHash: Statement<SessionRecord, [Uint8Array]>;
  private readonly keyById: Statement<SessionKeyRecord, [string]>;
  private readonly insertRow: Statement<
    unknown,
    [string, Uint8Array, string, number, number, number]
  >;
  private readonly touchRow: Statement<unknown, [number, string]>;
  private readonly deleteRow: Statement<unknown, [string]>;
  private readonly deleteEndedRows: Statement<unknown, [number, number]>;

  constructor(sqlite: Database) {
    this.byHash = sqlite.prepare(
      `SELECT id, key_id, created_at, last_seen_at, expires_at
         FROM console_sessions WHERE token_hash = ?1`,
    );
    this.keyById = sqlite.prepare(`SELECT ${API_KEY_MAC_COLUMNS}, mac FROM api_keys WHERE id = ?1`);
    this.insertRow = sqlite.prepare(
      `INSERT INTO console_sessions (id, token_hash, key_id, created_at, last_seen_at, expires_at)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6)`,
    );
    // A time never moves backwards (two requests may race).
    this.touchRow = sqlite.prepare(
      `UPDATE console_sessions SET last_seen_at = ?1 WHERE id = ?2 AND last_seen_at < ?1`,
    );
    this.deleteRow = sqlite.prepare(`DELETE FROM console_sessions WHERE id = ?1`);
    this.deleteEndedRows = sqlite.prepare(
      `DELETE FROM console_sessions WHERE expires_at <= ?1 OR last_seen_at <= ?2`,
    );
  }

  /** The session whose token hashes to `tokenHash`, or null. */
  findByTokenHash(tokenHash: Uint8Array): SessionRecord | null {
    return this.byHash.get(tokenHash);
  }

  /** The API key row a session acts as (MAC columns included), or null when it is gone. */
  findKey(keyId: string): SessionKeyRecord | null {
    return this.keyById.get(keyId);
  }

  /** Stores a new session; call inside a write job. */
  insert(row: {
    id: string;
    tokenHash: Uint8Array;
    keyId: string;
    createdAt: number;
    expiresAt: number;
  }): void {
    this.insertRow.run(
      row.id,
      row.tokenHash,
      row.keyId,
      row.createdAt,
      row.createdAt,
      row.expiresAt,
    );
  }

  /** Records activity (for the idle timeout); call inside a write job. */
  touch(id: string, at: number): void {
    this.touchRow.run(at, id);
  }

  /** Ends one session (sign-out); call inside a write job. */
  delete(id: string): void {
    this.deleteRow.run(id);
  }

  /** Deletes sessions past their lifetime or idle since `idleBefore`; call inside a write job. */
  deleteEnded(now: number, idleBefore: number): void {
    this.deleteEndedRows.run(now, idleBefore);
  }
}
