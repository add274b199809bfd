/**
 * What each `/v1/webhooks` route accepts and answers: the TypeBox schemas Elysia validates with
 * and the OpenAPI text `/docs` shows. The routes themselves are listed in ./routes.ts.
 */
import { listSchema } from '../http/pagination.ts';
import { docsFor } from '../http/route.ts';
import {
  CreatedWebhookSchema,
  CreateWebhookBody,
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
import { Deleted } from '../http/fields.ts';

const docs = docsFor('webhooks');

export const list = {
  query: WebhookListQuery,
  response: { 200: listSchema(WebhookSchema) },
  detail: docs(
    'List webhooks',
    'Newest first; filters project_id and enabled. Keys limited to projects see only the ' +
      'webhooks of those projects.',
  ),
};

export const create = {
  body: CreateWebhookBody,
  parse: 'json' as const,
  response: { 201: CreatedWebhookSchema },
  detail: docs(
    'Create a webhook',
    'Returns the signing secret (whsec_...) once. Deliveries are signed per the Standard ' +
      'Webhooks specification. A key limited to projects must set project_id to one of them.',
  ),
};

export const get = {
  params: WebhookParams,
  response: { 200: WebhookSchema },
  detail: docs('Get a webhook', 'Never includes the signing secret.'),
};

export const update = {
  params: WebhookParams,
  body: UpdateWebhookBody,
  parse: 'json' as const,
  response: { 200: WebhookSchema },
  detail: docs(
    'Update a webhook',
    'Changes url, events, project_id, enabled or description. Enabling a webhook that ' +
      'the worker disabled clears its failure record; its pending deliveries resume.',
  ),
};

export const remove = {
  params: WebhookParams,
  response: { 200: Deleted },
  detail: docs(
    'Delete a webhook',
    'Removes it with its secrets and pending deliveries; the events stay in the log.',
  ),
};

export const rotateSecret = {
  params: WebhookParams,
  response: { 200: RotatedSecretSchema },
  detail: docs(
    'Rotate the signing secret',
    'Returns the new secret once. For 24 hours every delivery carries two signatures, one ' +
      'per secret, so receivers can switch at their own pace.',
  ),
};

export const test = {
  params: WebhookParams,
  response: { 201: DeliverySchema },
  detail: docs(
    'Send a test ping',
    'Queues a `ping` event for this webhook only and returns its delivery (pending); ' +
      'follow it at the Location given.',
  ),
};

export const listDeliveries = {
  params: WebhookParams,
  query: DeliveryListQuery,
  response: { 200: listSchema(DeliverySchema) },
  detail: docs(
    'List deliveries',
    'Newest first; filter status. Each shows its latest attempt (response status, ' +
      'duration, error) and, while pending, when it is tried next.',
  ),
};

export const getDelivery = {
  params: DeliveryParams,
  response: { 200: DeliveryDetailSchema },
  detail: docs('Get a delivery', 'With every attempt, oldest first.'),
};

export const retryDelivery = {
  params: DeliveryParams,
  response: { 200: DeliverySchema },
  detail: docs(
    'Retry a delivery',
    'Queues the delivery for an attempt now. A succeeded or failed one gets a fresh ' +
      'budget of webhooks.max_attempts attempts; one in flight answers 409. A disabled ' +
      'webhook receives it once enabled again.',
  ),
};
