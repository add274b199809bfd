/**
 * Webhook subscriptions and their signing secrets in the database, for the HTTP routes and the
 * delivery worker. Write functions are synchronous and run inside the caller's write job (with
 * its audit entry). Who may see or change which webhook is decided by the routes.
 */
import { and, desc, eq, isNotNull, isNull, lte, sql, type SQL } from 'drizzle-orm';
import type { Statement } from 'bun:sqlite';
import dns from 'node:dns';
import { connectionOf, type Db } from '../db/client.ts';
import { perConnection } from '../db/per-connection.ts';
import { toRfc3339 } from '../db/columns.ts';
import { InvalidRequestError } from '../errors.ts';
import { ALL_EVENTS, isEventType } from '../ledger/event-types.ts';
import type { InstanceKeyring } from '../keyring/live-keyring.ts';
import {
  resolveDeliveryTarget,
  validateWebhookUrl,
  type LookupAll,
  type OutboundPolicy,
} from './outbound-guard.ts';
import { generateWebhookSecret } from './signing.ts';
import {
  webhooks,
  webhookSecretColumn,
  webhookUrlColumn,
  webhookSecrets,
  type WebhookRow,
} from '../db/schema/webhooks.ts';
import { newTypeId } from '../ids.ts';

/** How long the previous secret keeps signing after a rotation. */
export const PREVIOUS_SECRET_GRACE_MS = 24 * 3_600_000;

/** A webhook as the API shows it; never its secret. */
export type WebhookObject = {
  id: string;
  url: string;
  events: string[];
  project_id: string | null;
  enabled: boolean;
  description: string;
  failing_since: string | null;
  disabled_reason: string | null;
  created_at: string;
  updated_at: string;
};

/**
 * The API shape of a stored webhook, with `url` as given: the opened URL for the API
 * ({@link openWebhookUrl}), only its origin for events ({@link urlOriginForEvents}).
 */
export function toWebhookObject(row: WebhookRow, url: string): WebhookObject {
  return {
    id: row.id,
    url,
    events: row.events,
    project_id: row.projectId,
    enabled: row.enabled,
    description: row.description,
    failing_since: toRfc3339(row.failingSince),
    disabled_reason: row.disabledReason,
    created_at: toRfc3339(row.createdAt),
    updated_at: toRfc3339(row.updatedAt),
  };
}

/** A webhook's id and project: what its URL and secrets are bound to. */
export type WebhookPlace = { id: string; projectId: string | null };

/** Seals a webhook's receiver URL for storage, bound to the webhook's id and project. */
export function sealWebhookUrl(keyring: InstanceKeyring, hook: WebhookPlace, url: string): Buffer {
  return Buffer.from(
    keyring.encrypt(url, webhookUrlColumn.at(hook.id, undefined, { projectId: hook.projectId })),
  );
}

/** Opens a stored receiver URL; throws DecryptionError if it was altered or moved. */
export function openWebhookUrl(
  keyring: InstanceKeyring,
  row: WebhookPlace & { url: Uint8Array },
): string {
  return keyring.decryptString(
    row.url,
    webhookUrlColumn.at(row.id, undefined, { projectId: row.projectId }),
  );
}

/** The AAD location of signing secret `secretId` of `hook`. */
function secretLocation(hook: WebhookPlace, secretId: string) {
  return webhookSecretColumn.at(secretId, undefined, {
    parentId: hook.id,
    projectId: hook.projectId,
  });
}

/**
 * The part of a stored webhook's URL that events may carry: its origin ('' if the URL does not
 * open). The path and query often hold the receiver's token (chat and incident tools put it
 * there), and an event reaches every subscriber and every `events:read` key, not only those
 * allowed to read webhooks.
 */
export function urlOriginForEvents(
  keyring: InstanceKeyring,
  row: WebhookPlace & { url: Uint8Array },
): string {
  try {
    return new URL(openWebhookUrl(keyring, row)).origin;
  } catch {
    // A URL that no longer opens (the row was altered) must not stop the state change that
    // emits the event; the delivery attempts report it.
    return '';
  }
}

/**
 * The normalised URL to store (`URL.href`), or a 400 naming `url`. Syntax only: whether the
 * address is allowed is decided on the resolved address at every delivery, since DNS changes.
 */
export function checkWebhookUrl(raw: string): string {
  const verdict = validateWebhookUrl(raw);
  if (!verdict.ok) throw new InvalidRequestError('url', verdict.reason);
  return verdict.url.href;
}

/** How long saving a webhook waits for DNS before leaving the check to delivery time. */
const SAVE_LOOKUP_TIMEOUT_MS = 2_000;

/**
 * Save-time check of the destination, for early feedback: refuses (400 naming `url`) a URL whose
 * host is, or resolves to, an address the outbound policy forbids (link-local, cloud metadata,
 * or loopback/private without an allow-list entry). A host that does not resolve now, or not
 * within 2 s, is accepted: the authoritative check runs on the resolved address at every
 * delivery, since DNS answers change.
 */
export async function checkWebhookTarget(
  href: string,
  policy: OutboundPolicy,
  lookup: LookupAll = dns.promises.lookup,
): Promise<void> {
  let lookupFailed = false;
  const recordingLookup: LookupAll = async (hostname, options) => {
    try {
      const answers = await lookup(hostname, options);
      if (answers.length === 0) lookupFailed = true;
      return answers;
    } catch (error) {
      lookupFailed = true;
      throw error;
    }
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const verdict = await Promise.race([
    resolveDeliveryTarget(new URL(href), policy, recordingLookup),
    new Promise<null>(
      (resolve) => (timer = setTimeout(() => resolve(null), SAVE_LOOKUP_TIMEOUT_MS)),
    ),
  ]).finally(() => clearTimeout(timer));
  if (verdict !== null && !verdict.ok && !lookupFailed) {
    throw new InvalidRequestError('url', verdict.reason);
  }
}

/** The subscription list, checked: known types, or `["*"]` alone; duplicates removed. */
export function checkEventList(list: readonly string[]): string[] {
  if (list.length === 0)
    throw new InvalidRequestError('events', 'Must name at least one event type');
  const distinct = [...new Set(list)];
  if (distinct.includes(ALL_EVENTS)) {
    if (distinct.length > 1) {
      throw new InvalidRequestError('events', '"*" subscribes to everything and must stand alone');
    }
    return distinct;
  }
  if (!distinct.every(isEventType)) {
    throw new InvalidRequestError('events', 'Names an unknown event type (see docs/api.md §6)');
  }
  return distinct;
}

/** A new webhook id, `whk_` + a time-ordered TypeID. */
export function newWebhookId(): string {
  return newTypeId('whk');
}

/** Everything that defines a new webhook. */
export type NewWebhook = {
  url: string;
  events: string[];
  projectId: string | null;
  enabled: boolean;
  description: string;
};

/** Inserts a webhook with a fresh signing secret; returns the row and the secret (shown once). */
export function insertWebhook(
  db: Db,
  keyring: InstanceKeyring,
  id: string,
  hook: NewWebhook,
  createdBy: string,
  now: number,
): { row: WebhookRow; secret: string } {
  const row = db
    .insert(webhooks)
    .values({
      id,
      url: sealWebhookUrl(keyring, { id, projectId: hook.projectId }, hook.url),
      events: hook.events,
      projectId: hook.projectId,
      enabled: hook.enabled,
      description: hook.description,
      createdAt: now,
      updatedAt: now,
      createdBy,
    })
    .returning()
    .get();
  const secret = addSecret(db, keyring, row, now);
  return { row, secret };
}

/** Fields a PUT may change. */
export type WebhookChanges = Partial<NewWebhook>;

/**
 * Applies `changes` and returns the new row. Enabling a webhook clears its failure record, so
 * the disable clock starts afresh. A change of project re-seals the URL and every signing
 * secret for the new project (they are bound to it).
 */
export function updateWebhook(
  db: Db,
  keyring: InstanceKeyring,
  id: string,
  changes: WebhookChanges,
  now: number,
): WebhookRow {
  const current = findWebhook(db, id);
  if (!current) throw new Error(`webhook ${id} vanished inside its update`);
  const moved = changes.projectId !== undefined && changes.projectId !== current.projectId;
  const place = { id, projectId: moved ? changes.projectId! : current.projectId };
  const set: Partial<typeof webhooks.$inferInsert> = { updatedAt: now };
  if (changes.url !== undefined || moved) {
    set.url = sealWebhookUrl(keyring, place, changes.url ?? openWebhookUrl(keyring, current));
  }
  if (moved) resealSecrets(db, keyring, current, place);
  if (changes.events !== undefined) set.events = changes.events;
  if (changes.projectId !== undefined) set.projectId = changes.projectId;
  if (changes.description !== undefined) set.description = changes.description;
  if (changes.enabled !== undefined) {
    set.enabled = changes.enabled;
    if (changes.enabled) {
      set.failingSince = null;
      set.disabledReason = null;
    }
  }
  return db.update(webhooks).set(set).where(eq(webhooks.id, id)).returning().get()!;
}

/** Deletes a webhook; its secrets and deliveries go with it (events stay in the log). */
export function deleteWebhook(db: Db, id: string): void {
  db.delete(webhooks).where(eq(webhooks.id, id)).run();
}

/** The webhook, or undefined. */
export function findWebhook(db: Db, id: string): WebhookRow | undefined {
  return db.select().from(webhooks).where(eq(webhooks.id, id)).get();
}

/** One page of webhooks matching `where`, newest first, and the total. */
export function listWebhooks(
  db: Db,
  where: SQL | undefined,
  offset: number,
  limit: number,
): { rows: WebhookRow[]; total: number } {
  const rows = db
    .select()
    .from(webhooks)
    .where(where)
    .orderBy(desc(webhooks.createdAt), desc(webhooks.id))
    .limit(limit)
    .offset(offset)
    .all();
  const total =
    db
      .select({ n: sql<number>`count(*)` })
      .from(webhooks)
      .where(where)
      .get()?.n ?? 0;
  return { rows, total };
}

/**
 * Rotates the signing secret: the current one stays valid (signing alongside the new one) for
 * {@link PREVIOUS_SECRET_GRACE_MS}, secrets already past their grace are deleted, and the new
 * secret is returned (shown once) with the time the previous one stops signing.
 */
export function rotateWebhookSecret(
  db: Db,
  keyring: InstanceKeyring,
  webhookId: string,
  now: number,
): { secret: string; previousExpiresAt: number } {
  const previousExpiresAt = now + PREVIOUS_SECRET_GRACE_MS;
  db.delete(webhookSecrets)
    .where(
      and(
        eq(webhookSecrets.webhookId, webhookId),
        isNotNull(webhookSecrets.expiresAt),
        lte(webhookSecrets.expiresAt, now),
      ),
    )
    .run();
  db.update(webhookSecrets)
    .set({ expiresAt: previousExpiresAt })
    .where(and(eq(webhookSecrets.webhookId, webhookId), isNull(webhookSecrets.expiresAt)))
    .run();
  const hook = findWebhook(db, webhookId);
  if (!hook) throw new Error(`webhook ${webhookId} vanished inside its secret rotation`);
  const secret = addSecret(db, keyring, hook, now);
  return { secret, previousExpiresAt };
}

/** Re-seals every signing secret of webhook `from` for `to` (its new project). */
function resealSecrets(db: Db, keyring: InstanceKeyring, from: WebhookPlace, to: WebhookPlace) {
  const rows = db
    .select({ id: webhookSecrets.id, secret: webhookSecrets.secret })
    .from(webhookSecrets)
    .where(eq(webhookSecrets.webhookId, from.id))
    .all();
  for (const row of rows) {
    const plaintext = keyring.decrypt(row.secret, secretLocation(from, row.id));
    try {
      const secret = Buffer.from(keyring.encrypt(plaintext, secretLocation(to, row.id)));
      db.update(webhookSecrets).set({ secret }).where(eq(webhookSecrets.id, row.id)).run();
    } finally {
      plaintext.fill(0);
    }
  }
}

function addSecret(db: Db, keyring: InstanceKeyring, hook: WebhookPlace, now: number): string {
  const id = newTypeId('whs');
  const secret = generateWebhookSecret();
  db.insert(webhookSecrets)
    .values({
      id,
      webhookId: hook.id,
      secret: Buffer.from(keyring.encrypt(secret, secretLocation(hook, id))),
      createdAt: now,
      expiresAt: null,
    })
    .run();
  return secret;
}

/**
 * The secrets that sign a delivery at `now`: the current one first, then any previous one
 * still in its grace period, newest first.
 */
export function signingSecrets(
  db: Db,
  keyring: InstanceKeyring,
  webhookId: string,
  now: number,
): string[] {
  const rows = secretsStatement(db).all({ webhookId, now });
  return rows.map((row) =>
    keyring.decryptString(
      row.secret,
      secretLocation({ id: webhookId, projectId: row.projectId }, row.id),
    ),
  );
}

type SecretRow = { id: string; secret: Uint8Array; projectId: string | null };
/** Prepared once per connection: every delivery attempt reads its webhook's secrets. */
const secretsStatementOf = perConnection(
  (sqlite): Statement<SecretRow, [{ webhookId: string; now: number }]> =>
    sqlite.query(
      `SELECT s.id, s.secret, w.project_id AS projectId
       FROM webhook_secrets s JOIN webhooks w ON w.id = s.webhook_id
       WHERE s.webhook_id = $webhookId AND (s.expires_at IS NULL OR s.expires_at > $now)
       ORDER BY s.expires_at IS NOT NULL, s.created_at DESC`,
    ),
);

function secretsStatement(db: Db): Statement<SecretRow, [{ webhookId: string; now: number }]> {
  return secretsStatementOf(connectionOf(db));
}

/** The `GET /v1/webhooks` filter: the caller's project scope, then the optional query filters. */
export function webhookListFilter(
  scope: SQL | undefined,
  filters: { projectId?: string; enabled?: boolean },
): SQL | undefined {
  return and(
    scope,
    filters.projectId === undefined ? undefined : eq(webhooks.projectId, filters.projectId),
    filters.enabled === undefined ? undefined : eq(webhooks.enabled, filters.enabled),
  );
}
