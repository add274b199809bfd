/** Table definitions of webhooks, their sealed secrets, deliveries and attempts. */
import { sql } from 'drizzle-orm';
import { blob, check, index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { epochMs } from '../columns.ts';
import { encryptedColumn } from './encrypted.ts';
import { events } from './events.ts';
import { projects } from './projects.ts';

/**
 * Webhook subscriptions. `events` is a JSON array of exact event types or `["*"]`; a non-null
 * `project_id` limits the subscription to events of that project. `failing_since` is the time of
 * the first failed attempt of the current unbroken run of failures (cleared by any success); the
 * worker disables the endpoint once it is older than `webhooks.disable_after_hours`. Deleting a
 * project deletes its webhooks (a project filter must never silently widen to every project).
 */
export const webhooks = sqliteTable(
  'webhooks',
  {
    id: text('id').primaryKey(),
    /**
     * The receiver URL, sealed by the instance keyring (see {@link webhookUrlColumn}): receivers
     * such as chat and incident tools put their access token in the path or query.
     */
    url: blob('url', { mode: 'buffer' }).notNull(),
    events: text('events', { mode: 'json' }).$type<string[]>().notNull(),
    projectId: text('project_id').references(() => projects.id, { onDelete: 'cascade' }),
    enabled: integer('enabled', { mode: 'boolean' }).notNull(),
    description: text('description').notNull().default(''),
    failingSince: epochMs('failing_since'),
    disabledReason: text('disabled_reason'),
    createdAt: epochMs('created_at').notNull(),
    updatedAt: epochMs('updated_at').notNull(),
    /** Who created it: `api_key:key_…`. */
    createdBy: text('created_by').notNull(),
  },
  (t) => [
    index('webhooks_project_idx').on(t.projectId),
    index('webhooks_created_idx').on(t.createdAt),
  ],
);

/**
 * Signing secrets, sealed by the instance keyring. The current secret has `expires_at` null;
 * a rotation stamps the old one with now + 24 h, and every unexpired secret signs each delivery
 * (current first), so receivers on either secret keep verifying during the change-over.
 */
export const webhookSecrets = sqliteTable(
  'webhook_secrets',
  {
    id: text('id').primaryKey(),
    webhookId: text('webhook_id')
      .notNull()
      .references(() => webhooks.id, { onDelete: 'cascade' }),
    secret: blob('secret', { mode: 'buffer' }).notNull(),
    createdAt: epochMs('created_at').notNull(),
    expiresAt: epochMs('expires_at'),
  },
  (t) => [index('webhook_secrets_webhook_idx').on(t.webhookId)],
);

/**
 * The sealed receiver URLs; AAD binds the webhook id and its project (none: empty), so a
 * webhook moved to another project, or to every project, with raw SQL delivers nothing.
 */
export const webhookUrlColumn = encryptedColumn({
  table: webhooks,
  idColumn: webhooks.id,
  column: webhooks.url,
  owner: { projectId: webhooks.projectId },
});

/** The sealed `whsec_…` signing secrets; AAD binds the row id, its webhook and that project. */
export const webhookSecretColumn = encryptedColumn({
  table: webhookSecrets,
  idColumn: webhookSecrets.id,
  column: webhookSecrets.secret,
  owner: {
    parent: { foreignKey: webhookSecrets.webhookId, key: webhooks.id },
    projectId: webhooks.projectId,
  },
});

/** Where a delivery stands; see docs/webhooks.md for the state machine. */
export type DeliveryStatus = 'pending' | 'in_flight' | 'succeeded' | 'failed';

/**
 * One row per (event, webhook), written in the same transaction as the event, before any attempt
 * (at-least-once). A worker claims a due row by setting `status = 'in_flight'` with a lease;
 * a lease that expires (the worker died) makes the row claimable again. `last_*` describe the most
 * recent attempt; `webhook_delivery_attempts` keeps each one.
 */
export const webhookDeliveries = sqliteTable(
  'webhook_deliveries',
  {
    id: text('id').primaryKey(),
    webhookId: text('webhook_id')
      .notNull()
      .references(() => webhooks.id, { onDelete: 'cascade' }),
    eventId: text('event_id')
      .notNull()
      .references(() => events.id, { onDelete: 'cascade' }),
    status: text('status').$type<DeliveryStatus>().notNull(),
    attempts: integer('attempts').notNull().default(0),
    /** `attempts` when last re-queued by hand: the retry budget counts from here. */
    attemptBase: integer('attempt_base').notNull().default(0),
    nextAttemptAt: epochMs('next_attempt_at'),
    leaseOwner: text('lease_owner'),
    leaseExpiresAt: epochMs('lease_expires_at'),
    lastAttemptAt: epochMs('last_attempt_at'),
    lastResponseStatus: integer('last_response_status'),
    lastDurationMs: integer('last_duration_ms'),
    lastError: text('last_error'),
    createdAt: epochMs('created_at').notNull(),
    updatedAt: epochMs('updated_at').notNull(),
    completedAt: epochMs('completed_at'),
  },
  (t) => [
    // The claim: per webhook, due pending rows (and expired leases) oldest first.
    index('webhook_deliveries_due_idx').on(t.webhookId, t.status, t.nextAttemptAt),
    index('webhook_deliveries_webhook_idx').on(t.webhookId, t.createdAt),
    index('webhook_deliveries_event_idx').on(t.eventId),
    check(
      'webhook_deliveries_status_check',
      sql`${t.status} IN ('pending', 'in_flight', 'succeeded', 'failed')`,
    ),
  ],
);

/** Every attempt of a delivery, for `GET /v1/webhooks/:id/deliveries/:dlv_id`. */
export const webhookDeliveryAttempts = sqliteTable(
  'webhook_delivery_attempts',
  {
    seq: integer('seq').primaryKey(),
    deliveryId: text('delivery_id')
      .notNull()
      .references(() => webhookDeliveries.id, { onDelete: 'cascade' }),
    attempt: integer('attempt').notNull(),
    startedAt: epochMs('started_at').notNull(),
    ok: integer('ok', { mode: 'boolean' }).notNull(),
    responseStatus: integer('response_status'),
    durationMs: integer('duration_ms').notNull(),
    error: text('error'),
  },
  (t) => [index('webhook_delivery_attempts_delivery_idx').on(t.deliveryId, t.attempt)],
);

export type WebhookRow = typeof webhooks.$inferSelect;
export type DeliveryRow = typeof webhookDeliveries.$inferSelect;
