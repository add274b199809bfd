/** Table definition of API keys (token hashes only). */
import { sql } from 'drizzle-orm';
import {
  blob,
  check,
  index,
  integer,
  sqliteTable,
  text,
  uniqueIndex,
} from 'drizzle-orm/sqlite-core';
import type { Permission, Role } from '../../roles.ts';
import { epochMs } from '../columns.ts';

/**
 * API keys. Only the SHA-256 of a token is stored; `lookup_id` (the public part of the token
 * after `scr_`) is unique and indexed so that authentication is one point read. Revoked keys
 * are kept (with `revoked_at`) for the audit trail and are still listed.
 *
 * `project_ids`, `vault_ids` and `scopes` are JSON arrays; empty project/vault lists mean "not
 * limited", a null `scopes` means "the role's full permissions". `rate_limit_*` override the
 * configured per-key bucket when set.
 */
export const apiKeys = sqliteTable(
  'api_keys',
  {
    id: text('id').primaryKey(),
    name: text('name').notNull(),
    role: text('role').$type<Role>().notNull(),
    lookupId: text('lookup_id').notNull(),
    tokenHash: blob('token_hash', { mode: 'buffer' }).notNull(),
    projectIds: text('project_ids', { mode: 'json' }).$type<string[]>().notNull(),
    vaultIds: text('vault_ids', { mode: 'json' }).$type<string[]>().notNull(),
    scopes: text('scopes', { mode: 'json' }).$type<Permission[] | null>(),
    rateLimitPerMinute: integer('rate_limit_per_minute'),
    rateLimitBurst: integer('rate_limit_burst'),
    expiresAt: epochMs('expires_at'),
    lastUsedAt: epochMs('last_used_at'),
    createdAt: epochMs('created_at').notNull(),
    /** Who created it: `api_key:key_…` or `local_user:<name>`. */
    createdBy: text('created_by').notNull(),
    revokedAt: epochMs('revoked_at'),
    /**
     * HMAC-SHA256 (hex) of every column but `last_used_at` under a key derived from the master
     * key's keyring (src/keyring/api-key-mac.ts): a row planted or edited in the file does not verify.
     */
    mac: text('mac'),
  },
  (table) => [
    uniqueIndex('api_keys_lookup_id_unique').on(table.lookupId),
    index('api_keys_created_at_idx').on(table.createdAt),
    check(
      'api_keys_role_check',
      sql`${table.role} IN ('admin', 'manager', 'contributor', 'reader', 'access')`,
    ),
    check(
      'api_keys_rate_limit_check',
      sql`(${table.rateLimitPerMinute} IS NULL OR ${table.rateLimitPerMinute} > 0) AND (${table.rateLimitBurst} IS NULL OR ${table.rateLimitBurst} > 0)`,
    ),
  ],
);

/** A stored API key row. */
export type ApiKeyRow = typeof apiKeys.$inferSelect;
