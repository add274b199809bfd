/** Table definitions of the event log (webhook outbox) and sent expiry notices. */
import {
  index,
  integer,
  primaryKey,
  sqliteTable,
  text,
  uniqueIndex,
} from 'drizzle-orm/sqlite-core';
import { epochMs } from '../columns.ts';

/**
 * The event log and webhook outbox. Each row is written in the same transaction as the change it
 * describes (see `emitEvent`). `payload` is the exact JSON body every webhook receives
 * (`{id, type, created_at, data: {object}}`), stored once so that retries send identical bytes.
 * `seq` (the rowid) gives a stable newest-first order even when clocks tie.
 */
export const events = sqliteTable(
  'events',
  {
    seq: integer('seq').primaryKey(),
    id: text('id').notNull(),
    type: text('type').notNull(),
    projectId: text('project_id'),
    payload: text('payload').notNull(),
    createdAt: epochMs('created_at').notNull(),
  },
  (t) => [
    uniqueIndex('events_id_unique').on(t.id),
    index('events_created_idx').on(t.createdAt),
    index('events_type_idx').on(t.type, t.seq),
  ],
);

/**
 * Expiry notices already emitted, so each is sent once: keyed by resource, the expiry date it
 * was about (a renewed resource gets a fresh set) and the threshold (`30d`, `7d`, …, `expired`).
 */
export const expiryNotices = sqliteTable(
  'expiry_notices',
  {
    resourceId: text('resource_id').notNull(),
    expiresAt: epochMs('expires_at').notNull(),
    threshold: text('threshold').notNull(),
    eventId: text('event_id').notNull(),
    emittedAt: epochMs('emitted_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.resourceId, t.expiresAt, t.threshold] })],
);

export type EventRow = typeof events.$inferSelect;
