/**
 * `GET /v1/events` (docs/api.md §6): the event log, exactly as webhooks receive it. A key limited to
 * projects sees the events of those projects only (instance-wide events, such as
 * `master_key.rotated`, are for keys limited to nothing), and an `api_key.*` event only to keys
 * that may manage that key (see ./visibility.ts); outside them it answers a hidden 404.
 */
import { Elysia } from 'elysia';
import { principalOf } from '../access/principal.ts';
import { hasProjectScope, hideAsNotFound } from '../access/visibility.ts';
import { NotFoundError } from '../errors.ts';
import { listResponse, readPage } from '../http/pagination.ts';
import type { RouteContext } from '../http/route.ts';
import { parseTimestamp } from '../http/schemas.ts';
import type { Instance } from '../instance.ts';
import type { EventListQuery, EventParams } from './schemas.ts';
import { findEvent, listEvents } from './service.ts';
import * as spec from './spec.ts';
import { canSeeEvent, visibleEventFilter } from './visibility.ts';

/** The `/v1/events` routes: schemas and OpenAPI text in ./spec.ts. */
export function eventRoutes(instance: Pick<Instance, 'db'>) {
  const handle = eventHandlers(instance);
  return new Elysia({ name: 'events' })
    .get('/v1/events', handle.list, spec.list)
    .get('/v1/events/:id', handle.get, spec.get);
}

/** The handlers, over one instance's database. */
function eventHandlers({ db }: Pick<Instance, 'db'>) {
  return { list, get };

  function list({ query, request, set }: RouteContext<{ query: typeof EventListQuery }>) {
    const key = principalOf(request);
    const page = readPage(query);
    if (query.project_id !== undefined && !hasProjectScope(key, query.project_id)) {
      hideAsNotFound(request, 'Project');
    }
    const filter = {
      visible: visibleEventFilter(db, key),
      type: query.type,
      sinceMs: query.since === undefined ? undefined : parseTimestamp(query.since, 'since'),
      projectId: query.project_id,
    };
    const { data, total } = listEvents(db, filter, page.offset, page.limit);
    return listResponse(request, set, page, total, data);
  }

  function get({ params, request }: RouteContext<{ params: typeof EventParams }>) {
    const found = findEvent(db, params.id);
    if (!found) throw new NotFoundError('Event');
    if (!canSeeEvent(db, principalOf(request), found)) hideAsNotFound(request, 'Event');
    return found.payload;
  }
}
