/**
 * The named handlers of the webhook routes of `/v1/webhooks` (listed in ./routes.ts; the delivery
 * routes are in ./delivery-handlers.ts, who reaches which webhook in ./reach.ts).
 */
import { principalOf } from '../access/principal.ts';
import { hasProjectScope, hideAsNotFound, projectScopeFilter } from '../access/visibility.ts';
import { commitChange } from '../changes/index.ts';
import { toRfc3339 } from '../db/columns.ts';
import { respondCreated } from '../http/created.ts';
import { listResponse, readPage } from '../http/pagination.ts';
import { requestMeta } from '../http/request-meta.ts';
import type { RouteContext } from '../http/route.ts';
import type { Instance } from '../instance.ts';
import type { LookupAll, OutboundPolicy } from './outbound-guard.ts';
import { assertProjectFilter, reachableWebhook } from './reach.ts';
import type {
  CreateWebhookBody,
  UpdateWebhookBody,
  WebhookListQuery,
  WebhookParams,
} from './schemas.ts';
import {
  checkEventList,
  checkWebhookTarget,
  checkWebhookUrl,
  deleteWebhook,
  insertWebhook,
  listWebhooks,
  newWebhookId,
  openWebhookUrl,
  rotateWebhookSecret,
  toWebhookObject,
  updateWebhook,
  webhookListFilter,
  type WebhookChanges,
} from './service.ts';
import { webhooks, type WebhookRow } from '../db/schema/webhooks.ts';

/** Overrides for tests. */
export type WebhookRoutesOptions = {
  /** DNS lookup for the save-time target check. */
  lookup?: LookupAll;
};

type Params = { params: typeof WebhookParams };

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
    assertProjectFilter(db, request, projectId);
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
    return webhookObject(reachableWebhook(db, request, params.id));
  }

  async function update({
    params,
    body,
    request,
  }: RouteContext<Params & { body: typeof UpdateWebhookBody }>) {
    const row = reachableWebhook(db, request, params.id);
    const changes: WebhookChanges = {};
    if (body.url !== undefined) changes.url = await checkedUrl(body.url);
    if (body.events !== undefined) changes.events = checkEventList(body.events);
    if (body.project_id !== undefined && body.project_id !== row.projectId) {
      assertProjectFilter(db, request, body.project_id);
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
    const row = reachableWebhook(db, request, params.id);
    await commitChange(instance, request, 200, () => ({ body: deleteWebhook(db, row.id) }));
    return { id: row.id, deleted: true as const };
  }

  async function rotateSecret({ params, request }: RouteContext<Params>) {
    const row = reachableWebhook(db, request, params.id);
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
}
