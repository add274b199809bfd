/** Table definition of vaults. */
import { index, integer, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';
import { epochMs } from '../columns.ts';
import { projects } from './projects.ts';

/**
 * Vaults (docs/api.md §3): named containers of resources inside a project, unique by name within it.
 * A `restricted` vault is reached only by admins, managers of its project and keys granted it
 * explicitly (src/access/visibility.ts). `project_id` never changes after creation.
 */
export const vaults = sqliteTable(
  'vaults',
  {
    id: text('id').primaryKey(),
    projectId: text('project_id')
      .notNull()
      .references(() => projects.id),
    name: text('name').notNull(),
    description: text('description'),
    restricted: integer('restricted', { mode: 'boolean' }).notNull(),
    createdAt: epochMs('created_at').notNull(),
    updatedAt: epochMs('updated_at').notNull(),
    /** Who created it: `api_key:key_…`. */
    createdBy: text('created_by').notNull(),
  },
  (table) => [
    uniqueIndex('vaults_project_name_unique').on(table.projectId, table.name),
    index('vaults_project_created_idx').on(table.projectId, table.createdAt, table.id),
    index('vaults_created_idx').on(table.createdAt, table.id),
  ],
);

/** A stored vault row. */
export type VaultRow = typeof vaults.$inferSelect;
