/**
 * Reading the event log (`GET /v1/events`). Rows hold the exact payload sent to webhooks, so the
 * list shows precisely what receivers got.
 */
import { and, desc, eq, gte, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import type { EventPayload } from '../ledger/emit.ts';
import { events } from '../db/schema/events.ts';

/** Filters of the event list; `type` is exact, or `<object>.*` for every action of an object. */
export type EventFilter = {
  type?: string;
  sinceMs?: number;
  projectId?: string;
  /** The caller's visibility condition (src/access/visibility.ts), undefined for admins. */
  visible?: SQL;
};

/** The WHERE condition of a filter. */
function condition(filter: EventFilter): SQL | undefined {
  let typeCondition: SQL | undefined;
  if (filter.type !== undefined) {
    typeCondition = filter.type.endsWith('.*')
      ? sql`substr(${events.type}, 1, ${filter.type.length - 1}) = ${filter.type.slice(0, -1)}`
      : eq(events.type, filter.type);
  }
  return and(
    filter.visible,
    typeCondition,
    filter.sinceMs === undefined ? undefined : gte(events.createdAt, filter.sinceMs),
    filter.projectId === undefined ? undefined : eq(events.projectId, filter.projectId),
  );
}

/** One page of events, newest first (by insertion order), and the total. */
export function listEvents(
  db: Db,
  filter: EventFilter,
  offset: number,
  limit: number,
): { data: EventPayload[]; total: number } {
  const where = condition(filter);
  const rows = db
    .select({ payload: events.payload })
    .from(events)
    .where(where)
    .orderBy(desc(events.seq))
    .limit(limit)
    .offset(offset)
    .all();
  const total =
    db
      .select({ n: sql<number>`count(*)` })
      .from(events)
      .where(where)
      .get()?.n ?? 0;
  return { data: rows.map((row) => JSON.parse(row.payload) as EventPayload), total };
}

/** One event and its project, or undefined. */
export function findEvent(
  db: Db,
  id: string,
): { payload: EventPayload; projectId: string | null } | undefined {
  const row = db
    .select({ payload: events.payload, projectId: events.projectId })
    .from(events)
    .where(eq(events.id, id))
    .get();
  return row && { payload: JSON.parse(row.payload) as EventPayload, projectId: row.projectId };
}
