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
import { listResponse, listSchema, readPage } from '../http/pagination.ts';
import type { Instance } from '../instance.ts';
import { parseTimestamp } from '../http/schemas.ts';
import { routeDetail } from '../http/route-detail.ts';
import { EventListQuery, EventParams, EventSchema } from './schemas.ts';
import { findEvent, listEvents } from './service.ts';
import { canSeeEvent, visibleEventFilter } from './visibility.ts';

const detail = routeDetail('events');

/** The `/v1/events` routes. */
export function eventRoutes(instance: Instance) {
  const { db } = instance;
  return new Elysia({ name: 'events' })
    .get(
      '/v1/events',
      ({ query, request, set }) => {
        const key = principalOf(request);
        const page = readPage(query);
        if (query.project_id !== undefined && !hasProjectScope(key, query.project_id)) {
          hideAsNotFound(request, 'Project');
        }
        const { data, total } = listEvents(
          db,
          {
            visible: visibleEventFilter(db, key),
            type: query.type,
            sinceMs: query.since === undefined ? undefined : parseTimestamp(query.since, 'since'),
            projectId: query.project_id,
          },
          page.offset,
          page.limit,
        );
        return listResponse(request, set, page, total, data);
      },
      {
        query: EventListQuery,
        response: { 200: listSchema(EventSchema) },
        detail: detail(
          'List events',
          'Newest first. Filters: type (exact, or `resource.*` for every action on an object), ' +
            'since (RFC 3339, inclusive), project_id. Kept for events.retention_days.',
        ),
      },
    )
    .get(
      '/v1/events/:id',
      ({ params, request }) => {
        const found = findEvent(db, params.id);
        if (!found) throw new NotFoundError('Event');
        if (!canSeeEvent(db, principalOf(request), found)) hideAsNotFound(request, 'Event');
        return found.payload;
      },
      {
        params: EventParams,
        response: { 200: EventSchema },
        detail: detail('Get an event', 'The payload exactly as webhooks receive it.'),
      },
    );
}
