/** Table definition of stored `Idempotency-Key` responses. */
import { blob, index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { epochMs } from '../columns.ts';
import { encryptedColumn } from './encrypted.ts';

/**
 * The first successful response to each `Idempotency-Key` (docs/api.md §1), kept for 24 hours.
 * `id` is the SHA-256 (hex) of the API key id and the header value, so keys are per API key and
 * the header itself is not stored. `request_hash` fingerprints the method, path and canonical
 * JSON body of the first request. `response_body` is sealed by the keyring: it can hold a
 * freshly issued token or secret.
 */
export const idempotencyKeys = sqliteTable(
  'idempotency_keys',
  {
    id: text('id').primaryKey(),
    apiKeyId: text('api_key_id').notNull(),
    requestHash: text('request_hash').notNull(),
    status: integer('status').notNull(),
    location: text('location'),
    targetType: text('target_type'),
    targetId: text('target_id'),
    responseBody: blob('response_body', { mode: 'buffer' }).notNull(),
    createdAt: epochMs('created_at').notNull(),
    expiresAt: epochMs('expires_at').notNull(),
  },
  (table) => [index('idempotency_keys_expires_idx').on(table.expiresAt)],
);

/** The sealed stored responses; AAD binds the row id. */
export const idempotencyResponseColumn = encryptedColumn({
  table: idempotencyKeys,
  idColumn: idempotencyKeys.id,
  column: idempotencyKeys.responseBody,
});

/** A stored idempotency record. */
export type IdempotencyRow = typeof idempotencyKeys.$inferSelect;
