/**
 * The delivery state machine in SQL, for the worker. Every function is synchronous and runs
 * inside a change (`commitSystemChange`, src/changes/), so each transition is durable before the worker
 * acts on it. States (see docs/webhooks.md):
 *
 *   pending ──claim (due, webhook enabled)──▶ in_flight ──2xx──▶ succeeded
 *      ▲                                        │   │
 *      │◀── failure, budget left (backoff) ─────┘   └── failure, budget spent ──▶ failed
 *      │◀── lease expired (worker died) / released at shutdown
 *      └─── manual retry (from succeeded or failed: fresh budget)
 */
import type { Database, Statement } from 'bun:sqlite';
import type { Clock } from '../clock.ts';
import type { Db } from '../db/client.ts';
import { toRfc3339 } from '../db/columns.ts';
import { emitEvent } from '../ledger/emit.ts';
import type { DeliveryAttemptResult } from './attempt.ts';
import { perConnection } from '../db/per-connection.ts';
import type { InstanceKeyring } from '../keyring/live-keyring.ts';
import { urlOriginForEvents } from './service.ts';

/** A claimed delivery with what an attempt needs. */
export type ClaimedDelivery = {
  id: string;
  webhookId: string;
  eventId: string;
  /** The webhook's receiver URL as stored (sealed): open it with `openWebhookUrl`. */
  sealedUrl: Uint8Array;
  /** The webhook's project (null: every project), which the URL is bound to. */
  projectId: string | null;
  payload: string;
  /** Attempts made before this one. */
  attempts: number;
  attemptBase: number;
};

type Candidate = { id: string; webhookId: string; due: number };

type Statements = {
  enabledWebhooks: Statement<{ id: string }, []>;
  duePending: Statement<Candidate, [{ webhookId: string; now: number; limit: number }]>;
  expiredLeases: Statement<Candidate, [{ webhookId: string; now: number; limit: number }]>;
  take: Statement<unknown, [{ id: string; owner: string; leaseUntil: number; now: number }]>;
  claimed: Statement<ClaimedDelivery, [string]>;
  current: Statement<
    { status: string; leaseOwner: string | null; attempts: number; attemptBase: number },
    [string]
  >;
  insertAttempt: Statement<
    unknown,
    [
      {
        deliveryId: string;
        attempt: number;
        startedAt: number;
        ok: number;
        responseStatus: number | null;
        durationMs: number;
        error: string | null;
      },
    ]
  >;
  finish: Statement<
    unknown,
    [
      {
        id: string;
        status: string;
        attempts: number;
        nextAttemptAt: number | null;
        lastAttemptAt: number;
        responseStatus: number | null;
        durationMs: number;
        error: string | null;
        now: number;
        completedAt: number | null;
      },
    ]
  >;
  webhookSucceeded: Statement<unknown, [string]>;
  webhookFailed: Statement<
    {
      id: string;
      url: Uint8Array;
      events: string;
      projectId: string | null;
      description: string;
      enabled: number;
      failingSince: number;
      createdAt: number;
      updatedAt: number;
    },
    [{ id: string; since: number }]
  >;
  disable: Statement<unknown, [{ id: string; reason: string; now: number }]>;
  release: Statement<unknown, [{ owner: string; now: number }]>;
  releaseOne: Statement<unknown, [{ id: string; owner: string; now: number }]>;
  reclaim: Statement<unknown, [{ now: number }]>;
};

const statementsFor = perConnection(
  (sqlite): Statements => ({
    enabledWebhooks: sqlite.query(`SELECT id FROM webhooks WHERE enabled = 1`),
    // Per webhook, so that each is one short index range (webhook, status, due) however long
    // the backlog: a single window query over every due row cost ~15 ms at 10 k pending.
    duePending: sqlite.query(
      `SELECT id, webhook_id AS webhookId, next_attempt_at AS due FROM webhook_deliveries
       WHERE webhook_id = $webhookId AND status = 'pending' AND next_attempt_at <= $now
       ORDER BY next_attempt_at LIMIT $limit`,
    ),
    expiredLeases: sqlite.query(
      `SELECT id, webhook_id AS webhookId, next_attempt_at AS due FROM webhook_deliveries
       WHERE webhook_id = $webhookId AND status = 'in_flight' AND lease_expires_at <= $now
       ORDER BY next_attempt_at LIMIT $limit`,
    ),
    take: sqlite.query(
      `UPDATE webhook_deliveries SET status = 'in_flight', lease_owner = $owner,
         lease_expires_at = $leaseUntil, updated_at = $now WHERE id = $id`,
    ),
    claimed: sqlite.query(
      `SELECT d.id, d.webhook_id AS webhookId, d.event_id AS eventId, w.url AS sealedUrl,
         w.project_id AS projectId, e.payload, d.attempts, d.attempt_base AS attemptBase
       FROM webhook_deliveries d
       JOIN webhooks w ON w.id = d.webhook_id JOIN events e ON e.id = d.event_id
       WHERE d.id = ?`,
    ),
    current: sqlite.query(
      `SELECT status, lease_owner AS leaseOwner, attempts, attempt_base AS attemptBase
       FROM webhook_deliveries WHERE id = ?`,
    ),
    insertAttempt: sqlite.query(
      `INSERT INTO webhook_delivery_attempts
         (delivery_id, attempt, started_at, ok, response_status, duration_ms, error)
       VALUES ($deliveryId, $attempt, $startedAt, $ok, $responseStatus, $durationMs, $error)`,
    ),
    finish: sqlite.query(
      `UPDATE webhook_deliveries SET status = $status, attempts = $attempts,
         next_attempt_at = $nextAttemptAt, lease_owner = NULL, lease_expires_at = NULL,
         last_attempt_at = $lastAttemptAt, last_response_status = $responseStatus,
         last_duration_ms = $durationMs, last_error = $error, updated_at = $now,
         completed_at = $completedAt
       WHERE id = $id`,
    ),
    webhookSucceeded: sqlite.query(
      `UPDATE webhooks SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL`,
    ),
    webhookFailed: sqlite.query(
      `UPDATE webhooks SET failing_since = COALESCE(failing_since, $since) WHERE id = $id
       RETURNING id, url, events, project_id AS projectId, description, enabled,
         failing_since AS failingSince, created_at AS createdAt, updated_at AS updatedAt`,
    ),
    disable: sqlite.query(
      `UPDATE webhooks SET enabled = 0, disabled_reason = $reason, updated_at = $now
       WHERE id = $id`,
    ),
    release: sqlite.query(
      `UPDATE webhook_deliveries SET status = 'pending', lease_owner = NULL,
         lease_expires_at = NULL, updated_at = $now
       WHERE status = 'in_flight' AND lease_owner = $owner`,
    ),
    releaseOne: sqlite.query(
      `UPDATE webhook_deliveries SET status = 'pending', lease_owner = NULL,
         lease_expires_at = NULL, updated_at = $now
       WHERE id = $id AND status = 'in_flight' AND lease_owner = $owner`,
    ),
    reclaim: sqlite.query(
      `UPDATE webhook_deliveries SET status = 'pending', lease_owner = NULL,
         lease_expires_at = NULL, updated_at = $now
       WHERE status = 'in_flight' AND lease_expires_at <= $now`,
    ),
  }),
);

/** Limits of one claim. */
export type ClaimLimits = {
  owner: string;
  leaseMs: number;
  /** Free worker slots. */
  capacity: number;
  perEndpoint: number;
  /** Deliveries this worker already has in flight, per webhook. */
  inFlight: ReadonlyMap<string, number>;
  /** Ids of the deliveries this worker is attempting right now (never claimed twice). */
  running: ReadonlySet<string>;
};

/**
 * Claims up to `capacity` due deliveries (pending and due, or in flight with an expired lease),
 * at most `perEndpoint` in flight per webhook counting those already running, by setting them
 * `in_flight` under a lease of `leaseMs`. A worker that dies leaves the lease to expire, after
 * which any worker claims the row again: that is the at-least-once guarantee across crashes.
 */
export function claimDueDeliveries(
  sqlite: Database,
  now: number,
  limits: ClaimLimits,
): ClaimedDelivery[] {
  if (limits.capacity <= 0) return [];
  const s = statementsFor(sqlite);
  // Up to each webhook's free slots, then interleaved by rank (every webhook's oldest first,
  // then every webhook's second, …) so that one endpoint's backlog cannot fill every slot.
  const ranked: (Candidate & { rank: number })[] = [];
  for (const { id: webhookId } of s.enabledWebhooks.all()) {
    const free = limits.perEndpoint - (limits.inFlight.get(webhookId) ?? 0);
    if (free <= 0) continue;
    const query = { webhookId, now, limit: free + limits.running.size };
    const rows = [...s.expiredLeases.all(query), ...s.duePending.all(query)]
      .filter((row) => !limits.running.has(row.id))
      .slice(0, free);
    rows.forEach((row, rank) => ranked.push({ ...row, rank }));
  }
  ranked.sort((a, b) => a.rank - b.rank || a.due - b.due || (a.id < b.id ? -1 : 1));
  const claimed: ClaimedDelivery[] = [];
  for (const candidate of ranked.slice(0, limits.capacity)) {
    s.take.run({ id: candidate.id, owner: limits.owner, leaseUntil: now + limits.leaseMs, now });
    const row = s.claimed.get(candidate.id);
    if (row) claimed.push(row);
  }
  return claimed;
}

/** What the worker decided about a failure's retry. */
export type RetryPolicy = {
  maxAttempts: number;
  /** Delay before retry number `failures` (1 after the first failure). */
  delayMs(failures: number): number;
  /** An endpoint failing without a success for this long is disabled. */
  disableAfterMs: number;
};

/** The transition an attempt caused. */
export type AttemptOutcome = 'succeeded' | 'retry' | 'failed' | 'lease_lost';

/**
 * Records one attempt and moves the delivery on: `succeeded` on a 2xx; otherwise `pending`
 * again after a backoff delay while the budget lasts (attempts since the last manual re-queue
 * < `maxAttempts`), then `failed`. The attempt is always logged; the delivery changes only while
 * this worker still holds its lease (a lease that expired mid-attempt may have been claimed by
 * another worker, whose outcome then counts: at-least-once allows the duplicate).
 *
 * The webhook's failure record follows: a success clears `failing_since`; a failure sets it if
 * unset, and once it is older than `disableAfterMs` the webhook is disabled and a
 * `webhook.disabled` event is emitted in the same transaction.
 */
export function recordAttempt(
  db: Db,
  sqlite: Database,
  clock: Clock,
  input: {
    delivery: ClaimedDelivery;
    owner: string;
    startedAt: number;
    result: DeliveryAttemptResult;
    policy: RetryPolicy;
    /** Opens the webhook's URL for the origin a `webhook.disabled` event carries. */
    keyring: InstanceKeyring;
  },
): AttemptOutcome {
  const s = statementsFor(sqlite);
  const { delivery, result, policy } = input;
  const now = Math.trunc(clock.now());
  const current = s.current.get(delivery.id);
  if (!current) return 'lease_lost'; // the webhook (and its deliveries) was deleted meanwhile
  const attempt = current.attempts + 1;
  const error = result.error === undefined ? null : result.error.slice(0, 500);
  s.insertAttempt.run({
    deliveryId: delivery.id,
    attempt,
    startedAt: input.startedAt,
    ok: result.ok ? 1 : 0,
    responseStatus: result.status ?? null,
    durationMs: Math.max(0, Math.round(result.durationMs)),
    error,
  });
  const owned = current.status === 'in_flight' && current.leaseOwner === input.owner;

  let outcome: AttemptOutcome;
  if (result.ok) {
    outcome = 'succeeded';
    s.webhookSucceeded.run(delivery.webhookId);
  } else {
    outcome = attempt - current.attemptBase >= policy.maxAttempts ? 'failed' : 'retry';
    const hook = s.webhookFailed.get({ id: delivery.webhookId, since: input.startedAt });
    if (hook && hook.enabled === 1 && now - hook.failingSince >= policy.disableAfterMs) {
      const hours = Math.floor((now - hook.failingSince) / 3_600_000);
      const reason = `Every delivery attempt failed for ${hours} hour${hours === 1 ? '' : 's'} (since ${toRfc3339(hook.failingSince)})`;
      s.disable.run({ id: hook.id, reason, now });
      emitEvent(db, clock, {
        type: 'webhook.disabled',
        projectId: hook.projectId,
        object: {
          id: hook.id,
          url: urlOriginForEvents(input.keyring, hook),
          events: JSON.parse(hook.events) as unknown,
          project_id: hook.projectId,
          enabled: false,
          description: hook.description,
          failing_since: toRfc3339(hook.failingSince),
          disabled_reason: reason,
          created_at: toRfc3339(hook.createdAt),
          updated_at: toRfc3339(now),
        },
      });
    }
  }
  if (!owned) return 'lease_lost';
  s.finish.run({
    id: delivery.id,
    status: outcome === 'retry' ? 'pending' : outcome,
    attempts: attempt,
    nextAttemptAt:
      outcome === 'retry' ? now + Math.max(0, policy.delayMs(attempt - current.attemptBase)) : null,
    lastAttemptAt: input.startedAt,
    responseStatus: result.status ?? null,
    durationMs: Math.max(0, Math.round(result.durationMs)),
    error,
    now,
    completedAt: outcome === 'retry' ? null : now,
  });
  return outcome;
}

/** Hands this worker's in-flight deliveries back (shutdown): pending, claimable at once. */
export function releaseLeases(sqlite: Database, owner: string, now: number, ids?: string[]): void {
  const s = statementsFor(sqlite);
  if (ids === undefined) s.release.run({ owner, now });
  else for (const id of ids) s.releaseOne.run({ id, owner, now });
}

/**
 * Turns deliveries whose lease expired (their worker died, e.g. `kill -9`) back into pending
 * ones, so that they show as such and are claimed again. The claim also takes such rows
 * directly; this makes the state visible at start-up.
 */
export function reclaimExpiredLeases(sqlite: Database, now: number): void {
  statementsFor(sqlite).reclaim.run({ now });
}
