/**
 * Stored first responses of `Idempotency-Key` requests (docs/api.md §1): lookup, save (inside a
 * write job) and expiry. The response body is sealed by the instance keyring, bound to its row.
 */
import type { Database } from 'bun:sqlite';
import { createHash } from 'node:crypto';
import type { AuditTarget } from '../http/request-meta.ts';
import type { InstanceKeyring } from '../keyring/live-keyring.ts';
import { idempotencyResponseColumn } from '../db/schema/idempotency.ts';

/** How long a stored response is replayed (docs/api.md §1: 24 h). */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

/** What is replayed for a key: the first response, as the client received it. */
export type StoredResponse = {
  status: number;
  /** The JSON body, exactly as sent. */
  body: string;
  location: string | null;
  /** The audit target of the first request, so that a replay is recorded against it. */
  target: AuditTarget | null;
};

/** A stored record: the fingerprint of the first request and its response. */
export type IdempotencyRecord = { requestHash: string; response: StoredResponse };

type Row = {
  request_hash: string;
  status: number;
  location: string | null;
  target_type: string | null;
  target_id: string | null;
  response_body: Uint8Array;
};

/**
 * The record id of an `Idempotency-Key` for an API key: SHA-256 (hex) of both, so that keys are
 * scoped per API key and the header value itself is never stored.
 */
export function idempotencyRecordId(apiKeyId: string, idempotencyKey: string): string {
  return createHash('sha256').update(`${apiKeyId}\n${idempotencyKey}`).digest('hex');
}

/**
 * JSON with object keys sorted at every depth, so that `{"a":1,"b":2}` and `{"b":2,"a":1}` are
 * the same body. `undefined` (no body) is the empty string.
 */
export function canonicalJson(value: unknown): string {
  if (value === undefined) return '';
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      out[key] = sortKeys((value as Record<string, unknown>)[key]);
    }
    return out;
  }
  return value;
}

/** SHA-256 (hex) of a request's method, path (with query) and canonical JSON body. */
export function requestFingerprint(method: string, pathAndQuery: string, body: unknown): string {
  return createHash('sha256')
    .update(`${method.toUpperCase()} ${pathAndQuery}\n${canonicalJson(body)}`)
    .digest('hex');
}

/** The unexpired record `id`, opened; undefined when there is none. */
export function findIdempotencyRecord(
  sqlite: Database,
  keyring: InstanceKeyring,
  id: string,
  now: number,
): IdempotencyRecord | undefined {
  const row = sqlite
    .query<Row, [string, number]>(
      `SELECT request_hash, status, location, target_type, target_id, response_body
       FROM idempotency_keys WHERE id = ? AND expires_at > ?`,
    )
    .get(id, now);
  if (!row) return undefined;
  return {
    requestHash: row.request_hash,
    response: {
      status: row.status,
      body: keyring.decryptString(row.response_body, idempotencyResponseColumn.at(id)),
      location: row.location,
      target: row.target_type === null ? null : { type: row.target_type, id: row.target_id },
    },
  };
}

/**
 * Saves (or replaces an expired) record. Synchronous: call inside a write job, ideally the one
 * that made the change, so that the change and its replayable response commit together.
 */
export function saveIdempotencyRecord(
  sqlite: Database,
  keyring: InstanceKeyring,
  record: { id: string; apiKeyId: string; requestHash: string; response: StoredResponse },
  now: number,
  ttlMs = IDEMPOTENCY_TTL_MS,
): void {
  const { id, response } = record;
  sqlite
    .query(
      `INSERT INTO idempotency_keys (id, api_key_id, request_hash, status, location, target_type,
         target_id, response_body, created_at, expires_at)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
       ON CONFLICT (id) DO UPDATE SET api_key_id = ?2, request_hash = ?3, status = ?4,
         location = ?5, target_type = ?6, target_id = ?7, response_body = ?8, created_at = ?9,
         expires_at = ?10`,
    )
    .run(
      id,
      record.apiKeyId,
      record.requestHash,
      response.status,
      response.location,
      response.target?.type ?? null,
      response.target?.id ?? null,
      keyring.encrypt(response.body, idempotencyResponseColumn.at(id)),
      now,
      now + ttlMs,
    );
}

/**
 * Deletes up to `limit` expired records and returns how many it deleted. Synchronous: call
 * inside a write job.
 */
export function deleteExpiredIdempotencyRecords(
  sqlite: Database,
  now: number,
  limit = 1000,
): number {
  return sqlite
    .query(
      `DELETE FROM idempotency_keys WHERE id IN
         (SELECT id FROM idempotency_keys WHERE expires_at <= ? LIMIT ?)`,
    )
    .run(now, limit).changes;
}
