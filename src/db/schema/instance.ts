/** Table definition of the instance row (health probe, creation). */
import { sqliteTable, integer, text } from 'drizzle-orm/sqlite-core';
import { epochMs } from '../columns.ts';

/**
 * One row (id = 1) describing this instance. `health_probe_at` is what the health check
 * writes to prove the database still accepts writes.
 */
export const instance = sqliteTable('instance', {
  id: integer('id').primaryKey(),
  createdAt: epochMs('created_at').notNull(),
  createdBy: text('created_by').notNull(),
  healthProbeAt: epochMs('health_probe_at'),
});
