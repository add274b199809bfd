/**
 * `/v1/webhooks` (API.md §6): subscriptions, secret rotation, test pings and the delivery log.
 * The permission of each route is in the permission table; here the handlers decide *which*
 * webhooks a key reaches: a webhook of a project is reached by keys with scope over that
 * project, an instance-wide one (no `project_id`) only by keys limited to no project or vault
 * (admins, unlimited managers). Anything else answers a hidden 404. Every change is committed
 * with its audit entry before the response.
 */
import { and, eq } from 'drizzle-orm';
import { Elysia } from 'elysia';
import { principalOf, type KeyGrant } from '../access/principal.ts';
import { hasProjectScope, hideAsNotFound, projectScopeFilter } from '../access/visibility.ts';
import { commitChange } from '../changes/index.ts';
import { toRfc3339 } from '../db/columns.ts';
import { ConflictError, ForbiddenError, NotFoundError } from '../errors.ts';
import { signalOutboxWrite } from '../events/outbox-signal.ts';
import { listResponse, listSchema, readPage } from '../http/pagination.ts';
import { requestMeta } from '../http/request-meta.ts';
import type { Instance } from '../instance.ts';
import { projects } from '../db/schema/projects.ts';
import {
  CreatedWebhookSchema,
  CreateWebhookBody,
  DeletedSchema,
  DeliveryDetailSchema,
  DeliveryListQuery,
  DeliveryParams,
  DeliverySchema,
  RotatedSecretSchema,
  UpdateWebhookBody,
  WebhookListQuery,
  WebhookParams,
  WebhookSchema,
} from './schemas.ts';
import {
  checkEventList,
  checkWebhookTarget,
  checkWebhookUrl,
  deleteWebhook,
  findDelivery,
  findDeliveryOfEvent,
  findWebhook,
  insertWebhook,
  listAttempts,
  listDeliveries,
  listWebhooks,
  newWebhookId,
  openWebhookUrl,
  requeueDelivery,
  rotateWebhookSecret,
  toDeliveryObject,
  toWebhookObject,
  updateWebhook,
  urlOriginForEvents,
  type WebhookChanges,
} from './service.ts';
import type { LookupAll, OutboundPolicy } from './outbound-guard.ts';
import { webhooks, type DeliveryStatus, type WebhookRow } from '../db/schema/webhooks.ts';
import { respondCreated } from '../http/created.ts';

const detail = (summary: string, description: string) => ({
  summary,
  description,
  tags: ['webhooks'],
});

/** True for keys limited to no project or vault: they reach instance-wide webhooks. */
function isUnlimited(key: KeyGrant): boolean {
  return key.role === 'admin' || (key.projectIds.length === 0 && key.vaultIds.length === 0);
}

/** True when the key may see and manage a webhook with this project filter. */
function reaches(key: KeyGrant, projectId: string | null): boolean {
  return projectId === null ? isUnlimited(key) : hasProjectScope(key, projectId);
}

/** Overrides for tests. */
export type WebhookRoutesOptions = {
  /** DNS lookup for the save-time target check. */
  lookup?: LookupAll;
};

/** The `/v1/webhooks` routes. */
export function webhookRoutes(instance: Instance, options: WebhookRoutesOptions = {}) {
  const { db, clock, keyring, config } = instance;
  const policy: OutboundPolicy = {
    allowedHosts: config.webhooks.allowed_hosts,
    allowedCidrs: config.webhooks.allowed_cidrs,
  };
  /** The normalised URL, refused (400) when its destination is forbidden. */
  const checkedUrl = async (raw: string): Promise<string> => {
    const href = checkWebhookUrl(raw);
    await checkWebhookTarget(href, policy, options.lookup);
    return href;
  };

  /** The API object of a stored webhook, its URL opened. */
  const webhookObject = (row: WebhookRow) => toWebhookObject(row, openWebhookUrl(keyring, row));

  /** The webhook, if it exists and the caller reaches it; else a (hidden) 404. */
  const reachableWebhook = (request: Request, id: string): WebhookRow => {
    const row = findWebhook(db, id);
    if (!row) throw new NotFoundError('Webhook');
    if (!reaches(principalOf(request), row.projectId)) hideAsNotFound(request, 'Webhook');
    return row;
  };

  /** Checks that the caller may attach a webhook to `projectId` (null: every project). */
  const assertProjectFilter = (request: Request, projectId: string | null): void => {
    const key = principalOf(request);
    if (projectId === null) {
      if (!isUnlimited(key)) {
        throw new ForbiddenError(
          'A key limited to projects or vaults must give the project_id of one of its projects',
        );
      }
      return;
    }
    if (!hasProjectScope(key, projectId)) hideAsNotFound(request, 'Project');
    const exists = db
      .select({ id: projects.id })
      .from(projects)
      .where(eq(projects.id, projectId))
      .get();
    if (!exists) throw new NotFoundError('Project');
  };

  return new Elysia({ name: 'webhooks' })
    .get(
      '/v1/webhooks',
      ({ query, request, set }) => {
        const key = principalOf(request);
        const page = readPage(query);
        if (query.project_id !== undefined && !hasProjectScope(key, query.project_id)) {
          hideAsNotFound(request, 'Project');
        }
        const { rows, total } = listWebhooks(
          db,
          and(
            projectScopeFilter(key, webhooks.projectId),
            query.project_id === undefined ? undefined : eq(webhooks.projectId, query.project_id),
            query.enabled === undefined
              ? undefined
              : eq(webhooks.enabled, query.enabled === 'true'),
          ),
          page.offset,
          page.limit,
        );
        return listResponse(request, set, page, total, rows.map(webhookObject));
      },
      {
        query: WebhookListQuery,
        response: { 200: listSchema(WebhookSchema) },
        detail: detail(
          'List webhooks',
          'Newest first; filters project_id and enabled. Keys limited to projects see only the ' +
            'webhooks of those projects.',
        ),
      },
    )
    .post(
      '/v1/webhooks',
      async ({ body, request, set }) => {
        const creator = principalOf(request);
        const url = await checkedUrl(body.url);
        const events = checkEventList(body.events);
        const projectId = body.project_id ?? null;
        assertProjectFilter(request, projectId);
        const id = newWebhookId();
        requestMeta(request).target = { type: 'webhook', id };
        const now = clock.now();
        const location = `/v1/webhooks/${id}`;
        // A retry with the same Idempotency-Key replays the response, secret included (sealed).
        const created = await commitChange(instance, request, 201, () => {
          const { row, secret } = insertWebhook(
            db,
            keyring,
            id,
            {
              url,
              events,
              projectId,
              enabled: body.enabled ?? true,
              description: body.description ?? '',
            },
            `api_key:${creator.keyId}`,
            now,
          );
          return { body: { ...toWebhookObject(row, url), secret }, location };
        });
        return respondCreated(set, location, created);
      },
      {
        body: CreateWebhookBody,
        parse: 'json',
        response: { 201: CreatedWebhookSchema },
        detail: detail(
          'Create a webhook',
          'Returns the signing secret (whsec_...) once. Deliveries are signed per the Standard ' +
            'Webhooks specification. A key limited to projects must set project_id to one of them.',
        ),
      },
    )
    .get(
      '/v1/webhooks/:id',
      ({ params, request }) => webhookObject(reachableWebhook(request, params.id)),
      {
        params: WebhookParams,
        response: { 200: WebhookSchema },
        detail: detail('Get a webhook', 'Never includes the signing secret.'),
      },
    )
    .put(
      '/v1/webhooks/:id',
      async ({ params, body, request }) => {
        const row = reachableWebhook(request, params.id);
        const changes: WebhookChanges = {};
        if (body.url !== undefined) changes.url = await checkedUrl(body.url);
        if (body.events !== undefined) changes.events = checkEventList(body.events);
        if (body.project_id !== undefined && body.project_id !== row.projectId) {
          assertProjectFilter(request, body.project_id);
          changes.projectId = body.project_id;
        }
        if (body.enabled !== undefined) changes.enabled = body.enabled;
        if (body.description !== undefined) changes.description = body.description;
        const updated = await commitChange(instance, request, 200, () => ({
          body:
            Object.keys(changes).length === 0
              ? row
              : updateWebhook(db, keyring, row.id, changes, clock.now()),
        }));
        return webhookObject(updated);
      },
      {
        params: WebhookParams,
        body: UpdateWebhookBody,
        parse: 'json',
        response: { 200: WebhookSchema },
        detail: detail(
          'Update a webhook',
          'Changes url, events, project_id, enabled or description. Enabling a webhook that ' +
            'the worker disabled clears its failure record; its pending deliveries resume.',
        ),
      },
    )
    .delete(
      '/v1/webhooks/:id',
      async ({ params, request }) => {
        const row = reachableWebhook(request, params.id);
        await commitChange(instance, request, 200, () => ({ body: deleteWebhook(db, row.id) }));
        return { id: row.id, deleted: true as const };
      },
      {
        params: WebhookParams,
        response: { 200: DeletedSchema },
        detail: detail(
          'Delete a webhook',
          'Removes it with its secrets and pending deliveries; the events stay in the log.',
        ),
      },
    )
    .post(
      '/v1/webhooks/:id/rotate-secret',
      async ({ params, request }) => {
        const row = reachableWebhook(request, params.id);
        return commitChange(instance, request, 200, () => {
          const rotated = rotateWebhookSecret(db, keyring, row.id, clock.now());
          return {
            body: {
              id: row.id,
              secret: rotated.secret,
              previous_secret_expires_at: toRfc3339(rotated.previousExpiresAt),
            },
          };
        });
      },
      {
        params: WebhookParams,
        response: { 200: RotatedSecretSchema },
        detail: detail(
          'Rotate the signing secret',
          'Returns the new secret once. For 24 hours every delivery carries two signatures, one ' +
            'per secret, so receivers can switch at their own pace.',
        ),
      },
    )
    .post(
      '/v1/webhooks/:id/test',
      async ({ params, request, set }) => {
        const row = reachableWebhook(request, params.id);
        const deliveryPath = (id: string) => `/v1/webhooks/${row.id}/deliveries/${id}`;
        if (!row.enabled) {
          throw new ConflictError('The webhook is disabled; enable it before testing', 'enabled');
        }
        const delivery = await commitChange(instance, request, 201, (tx) => {
          const eventId = tx.emit(
            {
              type: 'ping',
              projectId: row.projectId,
              object: toWebhookObject(row, urlOriginForEvents(keyring, row)),
            },
            { onlyWebhookId: row.id },
          );
          const created = findDeliveryOfEvent(db, row.id, eventId)!;
          return { body: toDeliveryObject(created), location: deliveryPath(created.id) };
        });
        return respondCreated(set, deliveryPath(delivery.id), delivery);
      },
      {
        params: WebhookParams,
        response: { 201: DeliverySchema },
        detail: detail(
          'Send a test ping',
          'Queues a `ping` event for this webhook only and returns its delivery (pending); ' +
            'follow it at the Location given.',
        ),
      },
    )
    .get(
      '/v1/webhooks/:id/deliveries',
      ({ params, query, request, set }) => {
        const row = reachableWebhook(request, params.id);
        const page = readPage(query);
        const { rows, total } = listDeliveries(
          db,
          row.id,
          query.status as DeliveryStatus | undefined,
          page.offset,
          page.limit,
        );
        return listResponse(request, set, page, total, rows.map(toDeliveryObject));
      },
      {
        params: WebhookParams,
        query: DeliveryListQuery,
        response: { 200: listSchema(DeliverySchema) },
        detail: detail(
          'List deliveries',
          'Newest first; filter status. Each shows its latest attempt (response status, ' +
            'duration, error) and, while pending, when it is tried next.',
        ),
      },
    )
    .get(
      '/v1/webhooks/:id/deliveries/:dlv_id',
      ({ params, request }) => {
        const row = reachableWebhook(request, params.id);
        const delivery = findDelivery(db, row.id, params.dlv_id);
        if (!delivery) throw new NotFoundError('Delivery');
        return { ...toDeliveryObject(delivery), attempts: listAttempts(db, delivery.id) };
      },
      {
        params: DeliveryParams,
        response: { 200: DeliveryDetailSchema },
        detail: detail('Get a delivery', 'With every attempt, oldest first.'),
      },
    )
    .post(
      '/v1/webhooks/:id/deliveries/:dlv_id/retry',
      async ({ params, request }) => {
        const row = reachableWebhook(request, params.id);
        if (!findDelivery(db, row.id, params.dlv_id)) throw new NotFoundError('Delivery');
        requestMeta(request).target = { type: 'webhook_delivery', id: params.dlv_id };
        return commitChange(instance, request, 200, () => {
          // Thrown inside the job, the 409 rolls back with it; the response hook audits it.
          if (!requeueDelivery(db, clock, params.dlv_id)) {
            throw new ConflictError('The delivery is being attempted right now');
          }
          signalOutboxWrite();
          return { body: toDeliveryObject(findDelivery(db, row.id, params.dlv_id)!) };
        });
      },
      {
        params: DeliveryParams,
        response: { 200: DeliverySchema },
        detail: detail(
          'Retry a delivery',
          'Queues the delivery for an attempt now. A succeeded or failed one gets a fresh ' +
            'budget of webhooks.max_attempts attempts; one in flight answers 409. A disabled ' +
            'webhook receives it once enabled again.',
        ),
      },
    );
}
