/** Keyring tables: state, wrapped data keys, integrity key, rotations, re-encryption progress. */
import { sql } from 'drizzle-orm';
import { blob, check, integer, primaryKey, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { epochMs } from '../columns.ts';

/**
 * The keyring's one row (id = 1). `master_key_fingerprint` identifies the master key that wraps
 * every data key (never the key itself), so a wrong key is refused at start. `generation` grows
 * whenever a data key is added or the current one changes: a running server compares it (at
 * most once a second) to pick up a data key created by another process.
 */
export const keyringState = sqliteTable(
  'keyring_state',
  {
    id: integer('id').primaryKey(),
    masterKeyFingerprint: text('master_key_fingerprint').notNull(),
    currentDataKeyVersion: integer('current_data_key_version').notNull(),
    generation: integer('generation').notNull(),
    createdAt: epochMs('created_at').notNull(),
    lastRotatedAt: epochMs('last_rotated_at'),
    /**
     * The oldest envelope format stored values may still have: 1 until every value sealed before
     * owners were bound has been re-sealed (src/keyring/bind-locations.ts), then 2 for good, and
     * from then on a format-1 value is refused wherever it appears.
     */
    valueFormat: integer('value_format').notNull().default(1),
  },
  (t) => [check('keyring_state_singleton', sql`${t.id} = 1`)],
);

/** Data keys, each wrapped (AES-256-GCM) under the master key; never deleted. */
export const keyringDataKeys = sqliteTable('keyring_data_keys', {
  version: integer('version').primaryKey(),
  wrappedKey: blob('wrapped_key', { mode: 'buffer' }).notNull(),
  createdAt: epochMs('created_at').notNull(),
});

/**
 * The integrity root key (one row, id = 1), wrapped under the master key like the data keys and
 * re-wrapped with them by a rotation; the MAC keys of API keys and of the audit chain are derived
 * from it (src/crypto/integrity.ts). `audit_keyed_from` is the first audit entry hashed with a
 * key (entries before it were written unkeyed by an older version); `mac` authenticates that
 * number and `created_at` under the derived state key, so neither can be moved to pass edited
 * entries off as unkeyed ones.
 */
export const keyringIntegrity = sqliteTable(
  'keyring_integrity',
  {
    id: integer('id').primaryKey(),
    wrappedKey: blob('wrapped_key', { mode: 'buffer' }).notNull(),
    auditKeyedFrom: integer('audit_keyed_from').notNull(),
    createdAt: epochMs('created_at').notNull(),
    mac: text('mac').notNull(),
  },
  (t) => [check('keyring_integrity_singleton', sql`${t.id} = 1`)],
);

/**
 * One row per master-key rotation, written in the transaction that re-wraps the keyring.
 * `completed_at` is null while the key file swap is pending (file source only); `backup_file`
 * is fixed before the swap so that a recovery creates the same one. `new_key_file` is where the
 * new key went when the key comes from the environment or a systemd credential.
 * `new_data_key_version` is set by `--reencrypt`; `reencrypt_completed_at` once every value
 * is sealed under it.
 */
export const keyringRotations = sqliteTable('keyring_rotations', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  rotatedAt: epochMs('rotated_at').notNull(),
  completedAt: epochMs('completed_at'),
  actor: text('actor').notNull(),
  oldFingerprint: text('old_fingerprint').notNull(),
  newFingerprint: text('new_fingerprint').notNull(),
  keySource: text('key_source', { enum: ['file', 'env', 'credential'] }).notNull(),
  keyFile: text('key_file'),
  backupFile: text('backup_file'),
  newKeyFile: text('new_key_file'),
  newDataKeyVersion: integer('new_data_key_version'),
  reencryptCompletedAt: epochMs('reencrypt_completed_at'),
  reencryptedValues: integer('reencrypted_values').notNull().default(0),
});

/**
 * Where a `--reencrypt` run has got to, per registered column, so that rerunning continues.
 * `last_row_id` is the JSON of the last id handled (ids may be text or integers).
 */
export const keyringReencryptProgress = sqliteTable(
  'keyring_reencrypt_progress',
  {
    rotationId: integer('rotation_id')
      .notNull()
      .references(() => keyringRotations.id),
    tableName: text('table_name').notNull(),
    columnName: text('column_name').notNull(),
    lastRowId: text('last_row_id'),
    done: integer('done', { mode: 'boolean' }).notNull().default(false),
    reencrypted: integer('reencrypted').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.rotationId, t.tableName, t.columnName] })],
);
