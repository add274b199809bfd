/** Table definition of projects. */
import { index, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';
import { epochMs } from '../columns.ts';

/**
 * Projects (docs/api.md §3): the top of the hierarchy project → vault → resource. Names are unique
 * across the instance (exact, case-sensitive match). A project is deleted outright, and only
 * once it has no vaults left (the vaults' foreign key refuses otherwise).
 */
export const projects = sqliteTable(
  'projects',
  {
    id: text('id').primaryKey(),
    name: text('name').notNull(),
    description: text('description'),
    createdAt: epochMs('created_at').notNull(),
    updatedAt: epochMs('updated_at').notNull(),
    /** Who created it: `api_key:key_…`. */
    createdBy: text('created_by').notNull(),
  },
  (table) => [
    uniqueIndex('projects_name_unique').on(table.name),
    // Newest-first lists: ORDER BY created_at DESC, id DESC walks this index backwards.
    index('projects_created_idx').on(table.createdAt, table.id),
  ],
);

/** A stored project row. */
export type ProjectRow = typeof projects.$inferSelect;
