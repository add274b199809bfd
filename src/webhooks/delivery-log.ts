/**
 * The delivery log as the API reads it (`/v1/webhooks/:id/deliveries`): delivery and attempt
 * objects, lists, and the manual re-queue. The worker owns the rest of the state machine
 * (./deliveries.ts).
 */
import { and, asc, desc, eq, sql } from 'drizzle-orm';
import type { Clock } from '../clock.ts';
import type { Db } from '../db/client.ts';
import { toRfc3339 } from '../db/columns.ts';
import { events as eventsTable } from '../db/schema/events.ts';
import {
  webhookDeliveries,
  webhookDeliveryAttempts,
  type DeliveryRow,
  type DeliveryStatus,
} from '../db/schema/webhooks.ts';

/** A delivery as the API shows it. */
export type DeliveryObject = {
  id: string;
  webhook_id: string;
  event_id: string;
  event_type: string;
  status: DeliveryStatus;
  attempt: number;
  response_status: number | null;
  duration_ms: number | null;
  error: string | null;
  last_attempt_at: string | null;
  next_attempt_at: string | null;
  created_at: string;
  updated_at: string;
  completed_at: string | null;
};

type DeliveryWithType = DeliveryRow & { eventType: string };

/** The API shape of a stored delivery. */
export function toDeliveryObject(row: DeliveryWithType): DeliveryObject {
  const pending = row.status === 'pending' || row.status === 'in_flight';
  return {
    id: row.id,
    webhook_id: row.webhookId,
    event_id: row.eventId,
    event_type: row.eventType,
    status: row.status,
    attempt: row.attempts,
    response_status: row.lastResponseStatus,
    duration_ms: row.lastDurationMs,
    error: row.lastError,
    last_attempt_at: toRfc3339(row.lastAttemptAt),
    next_attempt_at: pending ? toRfc3339(row.nextAttemptAt) : null,
    created_at: toRfc3339(row.createdAt),
    updated_at: toRfc3339(row.updatedAt),
    completed_at: toRfc3339(row.completedAt),
  };
}

function deliveryQuery(db: Db) {
  return db
    .select({
      id: webhookDeliveries.id,
      webhookId: webhookDeliveries.webhookId,
      eventId: webhookDeliveries.eventId,
      status: webhookDeliveries.status,
      attempts: webhookDeliveries.attempts,
      attemptBase: webhookDeliveries.attemptBase,
      nextAttemptAt: webhookDeliveries.nextAttemptAt,
      leaseOwner: webhookDeliveries.leaseOwner,
      leaseExpiresAt: webhookDeliveries.leaseExpiresAt,
      lastAttemptAt: webhookDeliveries.lastAttemptAt,
      lastResponseStatus: webhookDeliveries.lastResponseStatus,
      lastDurationMs: webhookDeliveries.lastDurationMs,
      lastError: webhookDeliveries.lastError,
      createdAt: webhookDeliveries.createdAt,
      updatedAt: webhookDeliveries.updatedAt,
      completedAt: webhookDeliveries.completedAt,
      eventType: eventsTable.type,
    })
    .from(webhookDeliveries)
    .innerJoin(eventsTable, eq(eventsTable.id, webhookDeliveries.eventId));
}

/** One page of a webhook's deliveries (optionally of one status), newest first, and the total. */
export function listDeliveries(
  db: Db,
  webhookId: string,
  status: DeliveryStatus | undefined,
  offset: number,
  limit: number,
): { rows: DeliveryWithType[]; total: number } {
  const where = and(
    eq(webhookDeliveries.webhookId, webhookId),
    status === undefined ? undefined : eq(webhookDeliveries.status, status),
  );
  const rows = deliveryQuery(db)
    .where(where)
    .orderBy(desc(webhookDeliveries.createdAt), desc(webhookDeliveries.id))
    .limit(limit)
    .offset(offset)
    .all();
  const total =
    db
      .select({ n: sql<number>`count(*)` })
      .from(webhookDeliveries)
      .where(where)
      .get()?.n ?? 0;
  return { rows, total };
}

/** The delivery of that webhook, or undefined. */
export function findDelivery(
  db: Db,
  webhookId: string,
  deliveryId: string,
): DeliveryWithType | undefined {
  return deliveryQuery(db)
    .where(and(eq(webhookDeliveries.id, deliveryId), eq(webhookDeliveries.webhookId, webhookId)))
    .get();
}

/** The delivery of event `eventId` to webhook `webhookId` (a test ping has exactly one). */
export function findDeliveryOfEvent(
  db: Db,
  webhookId: string,
  eventId: string,
): DeliveryWithType | undefined {
  return deliveryQuery(db)
    .where(and(eq(webhookDeliveries.eventId, eventId), eq(webhookDeliveries.webhookId, webhookId)))
    .get();
}

/** One attempt as the API shows it. */
export type AttemptObject = {
  attempt: number;
  started_at: string;
  ok: boolean;
  response_status: number | null;
  duration_ms: number;
  error: string | null;
};

/** Every attempt of a delivery, oldest first. */
export function listAttempts(db: Db, deliveryId: string): AttemptObject[] {
  return db
    .select()
    .from(webhookDeliveryAttempts)
    .where(eq(webhookDeliveryAttempts.deliveryId, deliveryId))
    .orderBy(asc(webhookDeliveryAttempts.seq))
    .all()
    .map((row) => ({
      attempt: row.attempt,
      started_at: toRfc3339(row.startedAt),
      ok: row.ok,
      response_status: row.responseStatus,
      duration_ms: row.durationMs,
      error: row.error,
    }));
}

/**
 * Re-queues a delivery for an attempt now. A finished one (succeeded or failed) gets a fresh
 * budget of `webhooks.max_attempts` attempts; a pending one is simply moved forward. Returns
 * false when it is in flight (the caller answers 409).
 */
export function requeueDelivery(db: Db, clock: Clock, deliveryId: string): boolean {
  const now = clock.now();
  const changed = db
    .update(webhookDeliveries)
    .set({
      status: 'pending',
      nextAttemptAt: now,
      completedAt: null,
      updatedAt: now,
      attemptBase: sql`CASE WHEN ${webhookDeliveries.status} = 'pending' THEN ${webhookDeliveries.attemptBase} ELSE ${webhookDeliveries.attempts} END`,
    })
    .where(
      and(eq(webhookDeliveries.id, deliveryId), sql`${webhookDeliveries.status} <> 'in_flight'`),
    )
    .returning({ id: webhookDeliveries.id })
    .all();
  return changed.length > 0;
}

/** The id of the delivery an event queued (the test ping queues exactly one). */
export function deliveryIdOfEvent(db: Db, eventId: string): string | undefined {
  return db
    .select({ id: webhookDeliveries.id })
    .from(webhookDeliveries)
    .where(eq(webhookDeliveries.eventId, eventId))
    .get()?.id;
}
