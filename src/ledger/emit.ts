/**
 * The outbox: one call records an event and queues its webhook deliveries, inside the caller's
 * write transaction.
 */
import type { Statement } from 'bun:sqlite';
import type { Clock } from '../clock.ts';
import { connectionOf, type Db } from '../db/client.ts';
import { toRfc3339 } from '../db/columns.ts';
import { signalOutboxWrite } from './outbox-signal.ts';
import { noteEventWritten } from './commit-signal.ts';
import { newTypeId } from '../ids.ts';
import { perConnection } from '../db/per-connection.ts';
import type { KeyGrant } from '../roles.ts';

/** What a feature hands to {@link emitEvent}. `object` is metadata only, never a value. */
export type EventInput = {
  /** `<object>.<action>`, e.g. `resource.created` (see ./event-types.ts). */
  type: string;
  /** The project the object belongs to; null for instance-wide events (master key, …). */
  projectId: string | null;
  object: Record<string, unknown>;
  /**
   * Who may see the object, when more than its project decides (an admin key's metadata is for
   * admins only): webhooks whose audience (`webhookAudience`) fails it get no delivery. The event
   * list applies the same rule through `src/events/visibility.ts`.
   */
  visibleTo?: (viewer: KeyGrant) => boolean;
};

/** Options for internal callers; features normally pass none. */
export type EmitOptions = {
  /** Deliver to this webhook only, whatever its subscription (the `ping` of `/test`). */
  onlyWebhookId?: string;
};

/** The JSON body of an event, as listed by `GET /v1/events` and sent to webhooks. */
export type EventPayload = {
  id: string;
  type: string;
  created_at: string;
  data: { object: Record<string, unknown> };
};

/**
 * Keys that hold secret material somewhere in Secryn. They are removed from event objects at any
 * depth (case-insensitive), whatever the caller passed: an event goes to third parties, so a
 * mistake upstream must not turn into a leak.
 */
export const FORBIDDEN_EVENT_KEYS: ReadonlySet<string> = new Set([
  'value',
  'private_key',
  'token',
  'secret',
  'secrets',
  'password',
  'passphrase',
  'plaintext',
]);

type Statements = {
  insertEvent: Statement<
    unknown,
    [{ id: string; type: string; projectId: string | null; payload: string; createdAt: number }]
  >;
  matching: Statement<
    { id: string; events: string; projectId: string | null },
    [{ projectId: string | null }]
  >;
  insertDelivery: Statement<
    unknown,
    [{ id: string; webhookId: string; eventId: string; now: number }]
  >;
};

/** Prepared once per connection: this runs inside every audited write that emits an event. */
const statementsFor = perConnection(
  (sqlite): Statements => ({
    insertEvent: sqlite.query(
      `INSERT INTO events (id, type, project_id, payload, created_at)
       VALUES ($id, $type, $projectId, $payload, $createdAt)`,
    ),
    matching: sqlite.query(
      `SELECT id, events, project_id AS projectId FROM webhooks
       WHERE enabled = 1 AND (project_id IS NULL OR project_id = $projectId)`,
    ),
    insertDelivery: sqlite.query(
      `INSERT INTO webhook_deliveries (id, webhook_id, event_id, status, attempts, attempt_base,
         next_attempt_at, created_at, updated_at)
       VALUES ($id, $webhookId, $eventId, 'pending', 0, 0, $now, $now, $now)`,
    ),
  }),
);

/**
 * Records an event and one pending delivery per matching enabled webhook, returning the new
 * `evt_` id. Synchronous and transactional by design: call it INSIDE the write job that makes the
 * change (through the change pipeline, src/changes/: return it as the change's `event`, or call
 * `tx.emit` / this function inside the change), so a committed change always has its event and deliveries and a
 * rolled-back one has neither. The delivery rows exist before any attempt, which is what makes
 * delivery at-least-once across crashes.
 *
 * A webhook matches when it is enabled, its `events` contain the exact type or `"*"`, and it has
 * no project filter or the event's `projectId` equals it (instance-wide events, projectId null,
 * reach only unfiltered webhooks), and the webhook's audience passes `visibleTo`. Keys in {@link FORBIDDEN_EVENT_KEYS} are stripped from
 * `object` at any depth. Throws when called outside a transaction (the event would commit apart
 * from its change) and on database errors (which roll the caller's job back).
 */
export function emitEvent(
  db: Db,
  clock: Clock,
  event: EventInput,
  options: EmitOptions = {},
): string {
  const sqlite = connectionOf(db);
  if (!sqlite.inTransaction) {
    throw new Error('emitEvent must run inside the write transaction of the change');
  }
  const statements = statementsFor(sqlite);
  const now = Math.trunc(clock.now());
  const id = newTypeId('evt');
  const payload: EventPayload = {
    id,
    type: event.type,
    created_at: toRfc3339(now),
    data: { object: stripSecrets(event.object) },
  };
  statements.insertEvent.run({
    id,
    type: event.type,
    projectId: event.projectId,
    payload: JSON.stringify(payload),
    createdAt: now,
  });
  // Open event streams read it once the transaction has ended (./commit-signal.ts).
  noteEventWritten();

  const targets =
    options.onlyWebhookId !== undefined
      ? [options.onlyWebhookId]
      : statements.matching
          .all({ projectId: event.projectId })
          .filter((row) => subscribes(row.events, event.type))
          .filter((row) => event.visibleTo?.(webhookAudience(row.projectId)) ?? true)
          .map((row) => row.id);
  for (const webhookId of targets) {
    statements.insertDelivery.run({ id: newTypeId('dlv'), webhookId, eventId: id, now });
  }
  if (targets.length > 0) signalOutboxWrite();
  return id;
}

/**
 * The weakest key that reaches a webhook with this project filter (see `src/webhooks/reach.ts`):
 * a manager limited to that project, or an unlimited manager for an instance-wide webhook. Any
 * such key can point the webhook at itself, so a webhook is sent only what this key may see,
 * whoever created it.
 */
export function webhookAudience(projectId: string | null): KeyGrant {
  return {
    role: 'manager',
    projectIds: projectId === null ? [] : [projectId],
    vaultIds: [],
    scopes: null,
    expiresAt: null,
  };
}

function subscribes(eventsJson: string, type: string): boolean {
  const list: unknown = JSON.parse(eventsJson);
  return Array.isArray(list) && (list.includes('*') || list.includes(type));
}

/**
 * A deep copy of `object` without {@link FORBIDDEN_EVENT_KEYS} (at any depth, case-insensitive).
 */
export function stripSecrets(object: Record<string, unknown>): Record<string, unknown> {
  return stripValue(object, 0) as Record<string, unknown>;
}

function stripValue(value: unknown, depth: number): unknown {
  // Event objects are shallow metadata; a deep structure is a bug, not something to walk forever.
  if (depth > 16) return null;
  if (Array.isArray(value)) return value.map((item) => stripValue(item, depth + 1));
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    const source = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    // Object.keys rather than Object.entries: no [key, value] array per property (this runs
    // for every property of every event, inside the write job).
    for (const key of Object.keys(source)) {
      if (FORBIDDEN_EVENT_KEYS.has(key.toLowerCase())) continue;
      const inner = source[key];
      const primitive = inner === null || typeof inner !== 'object';
      out[key] = primitive && depth < 16 ? inner : stripValue(inner, depth + 1);
    }
    return out;
  }
  return value;
}
