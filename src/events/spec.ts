/**
 * What each `/v1/events` route accepts and answers: the TypeBox schemas Elysia validates with
 * and the OpenAPI text `/docs` shows. The routes themselves are listed in ./routes.ts.
 */
import { listSchema } from '../http/pagination.ts';
import { docsFor } from '../http/route.ts';
import { EventListQuery, EventParams, EventSchema } from './schemas.ts';

const docs = docsFor('events');

export const list = {
  query: EventListQuery,
  response: { 200: listSchema(EventSchema) },
  detail: docs(
    'List events',
    'Newest first. Filters: type (exact, or `resource.*` for every action on an object), ' +
      'since (RFC 3339, inclusive), project_id. Kept for events.retention_days.',
  ),
};

export const get = {
  params: EventParams,
  response: { 200: EventSchema },
  detail: docs('Get an event', 'The payload exactly as webhooks receive it.'),
};
