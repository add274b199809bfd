/** The named handlers of the `/v1/webhooks` routes (listed in ./routes.ts). */
import { principalOf, type KeyGrant } from '../access/principal.ts';
import { hasProjectScope, hideAsNotFound, projectScopeFilter } from '../access/visibility.ts';
import { commitChange } from '../changes/index.ts';
import { toRfc3339 } from '../db/columns.ts';
import { ConflictError, ForbiddenError, NotFoundError } from '../errors.ts';
import { signalOutboxWrite } from '../ledger/outbox-signal.ts';
import { respondCreated } from '../http/created.ts';
import { listResponse, readPage } from '../http/pagination.ts';
import { requestMeta } from '../http/request-meta.ts';
import type { RouteContext } from '../http/route.ts';
import type { Instance } from '../instance.ts';
import { findProject } from '../projects/service.ts';
import type { LookupAll, OutboundPolicy } from './outbound-guard.ts';
import type {
  CreateWebhookBody,
  DeliveryListQuery,
  DeliveryParams,
  UpdateWebhookBody,
  WebhookListQuery,
  WebhookParams,
} from './schemas.ts';
import {
  checkEventList,
  checkWebhookTarget,
  checkWebhookUrl,
  deleteWebhook,
  deliveryIdOfEvent,
  findDelivery,
  findWebhook,
  insertWebhook,
  listAttempts,
  listDeliveries as listDeliveryRows,
  listWebhooks,
  newWebhookId,
  openWebhookUrl,
  requeueDelivery,
  rotateWebhookSecret,
  toDeliveryObject,
  toWebhookObject,
  updateWebhook,
  urlOriginForEvents,
  webhookListFilter,
  type WebhookChanges,
} from './service.ts';
import { webhooks, type DeliveryStatus, type WebhookRow } from '../db/schema/webhooks.ts';

/** Overrides for tests. */
export type WebhookRoutesOptions = {
  /** DNS lookup for the save-time target check. */
  lookup?: LookupAll;
};

type Params = { params: typeof WebhookParams };
type DeliveryContext = RouteContext<{ params: typeof DeliveryParams }>;

/** The handlers, over one instance. */
export function webhookHandlers(instance: Instance, options: WebhookRoutesOptions = {}) {
  const { db, clock, keyring, config } = instance;
  const policy: OutboundPolicy = {
    allowedHosts: config.webhooks.allowed_hosts,
    allowedCidrs: config.webhooks.allowed_cidrs,
  };
  return {
    list,
    create,
    get,
    update,
    remove,
    rotateSecret,
    test,
    listDeliveries,
    getDelivery,
    retryDelivery,
  };

  function list({ query, request, set }: RouteContext<{ query: typeof WebhookListQuery }>) {
    const key = principalOf(request);
    const page = readPage(query);
    if (query.project_id !== undefined && !hasProjectScope(key, query.project_id)) {
      hideAsNotFound(request, 'Project');
    }
    const where = webhookListFilter(projectScopeFilter(key, webhooks.projectId), {
      projectId: query.project_id,
      enabled: query.enabled === undefined ? undefined : query.enabled === 'true',
    });
    const { rows, total } = listWebhooks(db, where, page.offset, page.limit);
    return listResponse(request, set, page, total, rows.map(webhookObject));
  }

  async function create({ body, request, set }: RouteContext<{ body: typeof CreateWebhookBody }>) {
    const creator = principalOf(request);
    const url = await checkedUrl(body.url);
    const events = checkEventList(body.events);
    const projectId = body.project_id ?? null;
    assertProjectFilter(request, projectId);
    const id = newWebhookId();
    requestMeta(request).target = { type: 'webhook', id };
    const now = clock.now();
    const location = `/v1/webhooks/${id}`;
    const fields = {
      url,
      events,
      projectId,
      enabled: body.enabled ?? true,
      description: body.description ?? '',
    };
    // A retry with the same Idempotency-Key replays the response, secret included (sealed).
    const created = await commitChange(instance, request, 201, () => {
      const actor = `api_key:${creator.keyId}`;
      const { row, secret } = insertWebhook(db, keyring, id, fields, actor, now);
      return { body: { ...toWebhookObject(row, url), secret }, location };
    });
    return respondCreated(set, location, created);
  }

  function get({ params, request }: RouteContext<Params>) {
    return webhookObject(reachableWebhook(request, params.id));
  }

  async function update({
    params,
    body,
    request,
  }: RouteContext<Params & { body: typeof UpdateWebhookBody }>) {
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
  }

  async function remove({ params, request }: RouteContext<Params>) {
    const row = reachableWebhook(request, params.id);
    await commitChange(instance, request, 200, () => ({ body: deleteWebhook(db, row.id) }));
    return { id: row.id, deleted: true as const };
  }

  async function rotateSecret({ params, request }: RouteContext<Params>) {
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
  }

  async function test({ params, request, set }: RouteContext<Params>) {
    const row = reachableWebhook(request, params.id);
    const deliveryPath = (id: string) => `/v1/webhooks/${row.id}/deliveries/${id}`;
    if (!row.enabled) {
      throw new ConflictError('The webhook is disabled; enable it before testing', 'enabled');
    }
    const delivery = await commitChange(instance, request, 201, (tx) => {
      const object = toWebhookObject(row, urlOriginForEvents(keyring, row));
      const ping = { type: 'ping' as const, projectId: row.projectId, object };
      const eventId = tx.emit(ping, { onlyWebhookId: row.id });
      const createdId = deliveryIdOfEvent(db, eventId)!;
      return {
        body: toDeliveryObject(findDelivery(db, row.id, createdId)!),
        location: deliveryPath(createdId),
      };
    });
    return respondCreated(set, deliveryPath(delivery.id), delivery);
  }

  function listDeliveries({
    params,
    query,
    request,
    set,
  }: RouteContext<Params & { query: typeof DeliveryListQuery }>) {
    const row = reachableWebhook(request, params.id);
    const page = readPage(query);
    const status = query.status as DeliveryStatus | undefined; // validated by the query schema
    const { rows, total } = listDeliveryRows(db, row.id, status, page.offset, page.limit);
    return listResponse(request, set, page, total, rows.map(toDeliveryObject));
  }

  function getDelivery({ params, request }: DeliveryContext) {
    const row = reachableWebhook(request, params.id);
    const delivery = findDelivery(db, row.id, params.dlv_id);
    if (!delivery) throw new NotFoundError('Delivery');
    return { ...toDeliveryObject(delivery), attempts: listAttempts(db, delivery.id) };
  }

  async function retryDelivery({ params, request }: DeliveryContext) {
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
  }

  /** The normalised URL, refused (400) when its destination is forbidden. */
  async function checkedUrl(raw: string): Promise<string> {
    const href = checkWebhookUrl(raw);
    await checkWebhookTarget(href, policy, options.lookup);
    return href;
  }

  /** The API object of a stored webhook, its URL opened. */
  function webhookObject(row: WebhookRow) {
    return toWebhookObject(row, openWebhookUrl(keyring, row));
  }

  /** The webhook, if it exists and the caller reaches it; else a (hidden) 404. */
  function reachableWebhook(request: Request, id: string): WebhookRow {
    const row = findWebhook(db, id);
    if (!row) throw new NotFoundError('Webhook');
    if (!reaches(principalOf(request), row.projectId)) hideAsNotFound(request, 'Webhook');
    return row;
  }

  /** Checks that the caller may attach a webhook to `projectId` (null: every project). */
  function assertProjectFilter(request: Request, projectId: string | null): void {
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
    if (!findProject(db, projectId)) throw new NotFoundError('Project');
  }
}

/** True for keys limited to no project or vault: they reach instance-wide webhooks. */
function isUnlimited(key: KeyGrant): boolean {
  return key.role === 'admin' || (key.projectIds.length === 0 && key.vaultIds.length === 0);
}

/** True when the key may see and manage a webhook with this project filter. */
function reaches(key: KeyGrant, projectId: string | null): boolean {
  return projectId === null ? isUnlimited(key) : hasProjectScope(key, projectId);
}
