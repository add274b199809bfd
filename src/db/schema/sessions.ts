/** The `console_sessions` table: browser sign-ins to the web console, each bound to one API key. */
import { blob, index, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';
import { epochMs } from '../columns.ts';

/**
 * One row per console session. Only the SHA-256 of the session token (the cookie value) is
 * stored, as for API keys, so a copy of the database file signs nobody in. A session acts as its
 * `key_id` exactly; it ends when `last_seen_at` is older than `[console] session_idle_minutes`,
 * at `expires_at` (`session_max_hours` after sign-in), when the key is revoked or expires, or on
 * sign-out (the row is deleted). Ended rows are deleted lazily at the next sign-in.
 */
export const consoleSessions = sqliteTable(
  'console_sessions',
  {
    id: text('id').primaryKey(),
    tokenHash: blob('token_hash', { mode: 'buffer' }).notNull(),
    keyId: text('key_id').notNull(),
    createdAt: epochMs('created_at').notNull(),
    lastSeenAt: epochMs('last_seen_at').notNull(),
    expiresAt: epochMs('expires_at').notNull(),
  },
  (table) => [
    uniqueIndex('console_sessions_token_hash_unique').on(table.tokenHash),
    index('console_sessions_key_id_idx').on(table.keyId),
  ],
);

export type ConsoleSessionRow = typeof consoleSessions.$inferSelect;
