/** Table definitions of resources and their sealed versions. */
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
import { epochMs } from '../columns.ts';
import { encryptedColumn } from './encrypted.ts';
import { projects } from './projects.ts';
import { vaults } from './vaults.ts';

/** The three kinds of resource a vault holds (docs/api.md §4). */
export const RESOURCE_TYPES = ['secret', 'key', 'certificate'] as const;

/** One of {@link RESOURCE_TYPES}. */
export type ResourceType = (typeof RESOURCE_TYPES)[number];

/**
 * Resources: secrets, keys and certificates. This row holds metadata only; every value lives,
 * sealed, in {@link resourceVersions}. `current_version` names the version whose value the
 * resource has now (always 1 for keys and certificates, which are immutable).
 *
 * `project_id` repeats the vault's project so that project filters need no join. Names are
 * unique per vault and type among live rows (a partial unique index), so a soft-deleted
 * resource keeps its name until it is purged or restored. `tags` is a JSON array of strings.
 * Key columns (`algorithm`, `public_key`) and certificate columns (`subject` … `has_private_key`)
 * are null on the other types.
 */
export const resources = sqliteTable(
  'resources',
  {
    id: text('id').primaryKey(),
    vaultId: text('vault_id')
      .notNull()
      .references(() => vaults.id),
    projectId: text('project_id')
      .notNull()
      .references(() => projects.id),
    type: text('type').$type<ResourceType>().notNull(),
    name: text('name').notNull(),
    description: text('description'),
    tags: text('tags', { mode: 'json' }).$type<string[]>().notNull(),
    enabled: integer('enabled', { mode: 'boolean' }).notNull(),
    activatesAt: epochMs('activates_at'),
    expiresAt: epochMs('expires_at'),
    contentType: text('content_type'),
    currentVersion: integer('current_version').notNull(),
    algorithm: text('algorithm'),
    publicKey: text('public_key'),
    subject: text('subject'),
    issuer: text('issuer'),
    serialNumber: text('serial_number'),
    notBefore: epochMs('not_before'),
    notAfter: epochMs('not_after'),
    fingerprintSha256: text('fingerprint_sha256'),
    hasPrivateKey: integer('has_private_key', { mode: 'boolean' }),
    createdAt: epochMs('created_at').notNull(),
    updatedAt: epochMs('updated_at').notNull(),
    /** The API key that created it (`key_…`). */
    createdBy: text('created_by').notNull(),
    /** Set by a soft delete; the purge loop removes the row once the retention period ends. */
    deletedAt: epochMs('deleted_at'),
    deletedBy: text('deleted_by'),
  },
  (table) => [
    uniqueIndex('resources_live_name_unique')
      .on(table.vaultId, table.type, table.name)
      .where(sql`${table.deletedAt} IS NULL`),
    // Newest-first lists, filtered by nothing, a vault or a project (deleted_at IS NULL first).
    // The trailing vault_id lets a key's visibility condition (vault_id IN …) be checked on
    // the index alone while walking it in order.
    index('resources_created_idx').on(table.deletedAt, table.createdAt, table.id, table.vaultId),
    index('resources_vault_created_idx').on(
      table.vaultId,
      table.deletedAt,
      table.createdAt,
      table.id,
    ),
    index('resources_project_created_idx').on(
      table.projectId,
      table.deletedAt,
      table.createdAt,
      table.id,
      table.vaultId,
    ),
    // The expiry scheduler's scan (src/events/expiry.ts): live resources with an expiry, soonest first.
    index('resources_expiry_idx').on(table.deletedAt, table.expiresAt),
    check('resources_type_check', sql`${table.type} IN ('secret', 'key', 'certificate')`),
    check('resources_version_check', sql`${table.currentVersion} >= 1`),
  ],
);

/**
 * Every value a resource ever had, immutable. `id` is `<resource id>:<version>`, so the sealed
 * value is bound (through its AAD) to its resource and version: a value copied to another row
 * does not open. Deleted only with the resource (purge, or a vault deletion).
 */
export const resourceVersions = sqliteTable(
  'resource_versions',
  {
    id: text('id').primaryKey(),
    resourceId: text('resource_id')
      .notNull()
      .references(() => resources.id, { onDelete: 'cascade' }),
    version: integer('version').notNull(),
    value: blob('value', { mode: 'buffer' }).notNull(),
    createdAt: epochMs('created_at').notNull(),
    /** The API key that made this version (`key_…`). */
    createdBy: text('created_by').notNull(),
  },
  (table) => [
    uniqueIndex('resource_versions_resource_version').on(table.resourceId, table.version),
  ],
);

/**
 * The sealed values of every resource (secret values, key material, certificates and their
 * private keys). AAD binds `<resource id>:<version>`, the version, and the resource with its
 * vault and project: a resource row moved to another vault or project does not open there.
 */
export const resourceValueColumn = encryptedColumn({
  table: resourceVersions,
  idColumn: resourceVersions.id,
  column: resourceVersions.value,
  versionColumn: resourceVersions.version,
  owner: {
    parent: { foreignKey: resourceVersions.resourceId, key: resources.id },
    vaultId: resources.vaultId,
    projectId: resources.projectId,
  },
});

/** The id of version `version` of resource `resourceId` in {@link resourceVersions}. */
export function versionRowId(resourceId: string, version: number): string {
  return `${resourceId}:${version}`;
}

/** A stored resource row. */
export type ResourceRow = typeof resources.$inferSelect;
/** A stored version row. */
export type ResourceVersionRow = typeof resourceVersions.$inferSelect;
