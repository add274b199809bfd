/** Table of the audit shipping cursors: one row per sink, the last entry it confirmed. */
import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { epochMs } from '../columns.ts';

/**
 * How far each audit shipping sink (`[audit.ship]`: `syslog`, `file`) has been confirmed: the
 * receiver took every entry up to `through_seq` (whose hash was `through_hash`). Advanced only
 * after a batch was flushed, so a restart resends from here (at least once, never a gap).
 */
export const auditShipCursor = sqliteTable('audit_ship_cursor', {
  sink: text('sink').primaryKey(),
  throughSeq: integer('through_seq').notNull(),
  throughHash: text('through_hash').notNull(),
  updatedAt: epochMs('updated_at').notNull(),
});
