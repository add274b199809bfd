/**
 * The TypeBox schemas of `/v1/events` and of an event type as webhooks subscribe to it:
 * validation, OpenAPI and types.
 */
import { t } from 'elysia';
import { paginationQuery } from '../http/pagination.ts';
import { ProjectId, strictObject, Timestamp } from '../http/schemas.ts';
import { EVENT_TYPES } from '../ledger/event-types.ts';

/** One event type (or `*`), as a filter and in a webhook's subscription list. */
export const EventTypeSchema = t.String({
  minLength: 1,
  maxLength: 64,
  error: `Must be "*" or one of: ${EVENT_TYPES.join(', ')}`,
  examples: ['resource.created'],
});

/** An event as listed and as delivered. */
export const EventSchema = t.Object({
  id: t.String({ examples: ['evt_01jq3v6x1nf4r8s2k9w7y5t3m0'] }),
  type: t.String({ examples: ['resource.created'] }),
  created_at: t.String(),
  data: t.Object({
    object: t.Record(t.String(), t.Unknown(), { description: 'Metadata only, never a value' }),
  }),
});

export const EventListQuery = strictObject({
  ...paginationQuery,
  type: t.Optional(EventTypeSchema),
  since: t.Optional(Timestamp),
  project_id: t.Optional(ProjectId),
});

export const EventParams = t.Object({ id: t.String({ maxLength: 64 }) });
