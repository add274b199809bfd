/**
 * `/v1/webhooks` (docs/api.md §6): subscriptions, secret rotation, test pings and the delivery log.
 * The permission of each route is in the permission table; here the handlers decide *which*
 * webhooks a key reaches: a webhook of a project is reached by keys with scope over that
 * project, an instance-wide one (no `project_id`) only by keys limited to no project or vault
 * (admins, unlimited managers). Anything else answers a hidden 404. Every change is committed
 * with its audit entry before the response.
 */
import { Elysia } from 'elysia';
import type { Instance } from '../instance.ts';
import { deliveryHandlers } from './delivery-handlers.ts';
import { webhookHandlers, type WebhookRoutesOptions } from './handlers.ts';
import * as spec from './spec.ts';

export type { WebhookRoutesOptions } from './handlers.ts';

/** The `/v1/webhooks` routes: handlers in ./handlers.ts and ./delivery-handlers.ts, schemas and OpenAPI text in ./spec.ts. */
export function webhookRoutes(instance: Instance, options: WebhookRoutesOptions = {}) {
  const handle = webhookHandlers(instance, options);
  const deliveries = deliveryHandlers(instance);
  return new Elysia({ name: 'webhooks' })
    .get('/v1/webhooks', handle.list, spec.list)
    .post('/v1/webhooks', handle.create, spec.create)
    .get('/v1/webhooks/:id', handle.get, spec.get)
    .put('/v1/webhooks/:id', handle.update, spec.update)
    .delete('/v1/webhooks/:id', handle.remove, spec.remove)
    .post('/v1/webhooks/:id/rotate-secret', handle.rotateSecret, spec.rotateSecret)
    .post('/v1/webhooks/:id/test', deliveries.test, spec.test)
    .get('/v1/webhooks/:id/deliveries', deliveries.listDeliveries, spec.listDeliveries)
    .get('/v1/webhooks/:id/deliveries/:dlv_id', deliveries.getDelivery, spec.getDelivery)
    .post(
      '/v1/webhooks/:id/deliveries/:dlv_id/retry',
      deliveries.retryDelivery,
      spec.retryDelivery,
    );
}
