/** The named handlers of the delivery routes of `/v1/webhooks` (test pings and the delivery log; listed in ./routes.ts). */
import { commitChange } from '../changes/index.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import { respondCreated } from '../http/created.ts';
import { listResponse, readPage } from '../http/pagination.ts';
import { requestMeta } from '../http/request-meta.ts';
import type { RouteContext } from '../http/route.ts';
import type { Instance } from '../instance.ts';
import { signalOutboxWrite } from '../ledger/outbox-signal.ts';
import { reachableWebhook } from './reach.ts';
import type { DeliveryListQuery, DeliveryParams, WebhookParams } from './schemas.ts';
import {
  deliveryIdOfEvent,
  findDelivery,
  listAttempts,
  listDeliveries as listDeliveryRows,
  requeueDelivery,
  toDeliveryObject,
} from './delivery-log.ts';
import { toWebhookObject, urlOriginForEvents } from './service.ts';
import type { DeliveryStatus } from '../db/schema/webhooks.ts';

type Params = { params: typeof WebhookParams };
type DeliveryContext = RouteContext<{ params: typeof DeliveryParams }>;

/** The delivery handlers, over one instance. */
export function deliveryHandlers(instance: Instance) {
  const { db, clock, keyring } = instance;
  return { test, listDeliveries, getDelivery, retryDelivery };

  async function test({ params, request, set }: RouteContext<Params>) {
    const row = reachableWebhook(db, request, params.id);
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
    const row = reachableWebhook(db, request, params.id);
    const page = readPage(query);
    const status = query.status as DeliveryStatus | undefined; // validated by the query schema
    const { rows, total } = listDeliveryRows(db, row.id, status, page.offset, page.limit);
    return listResponse(request, set, page, total, rows.map(toDeliveryObject));
  }

  function getDelivery({ params, request }: DeliveryContext) {
    const row = reachableWebhook(db, request, params.id);
    const delivery = findDelivery(db, row.id, params.dlv_id);
    if (!delivery) throw new NotFoundError('Delivery');
    return { ...toDeliveryObject(delivery), attempts: listAttempts(db, delivery.id) };
  }

  async function retryDelivery({ params, request }: DeliveryContext) {
    const row = reachableWebhook(db, request, params.id);
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
}
