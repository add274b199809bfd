/**
 * The TypeBox schemas of `/v1/webhooks`: validation, OpenAPI and types (events: ../events/schemas.ts).
 */
import { t } from 'elysia';
import { ProjectId, QueryBoolean, ResponseInteger, strictObject } from '../http/schemas.ts';
import { paginationQuery } from '../http/pagination.ts';
import { EventTypeSchema } from '../events/schemas.ts';
import { EVENT_TYPES } from '../ledger/event-types.ts';

const EventListSchema = t.Array(EventTypeSchema, {
  minItems: 1,
  maxItems: EVENT_TYPES.length + 1,
  error: 'Must be a non-empty list of event types, or ["*"]',
  description: 'Exact event types, or ["*"] for every type',
});

const UrlSchema = t.String({
  minLength: 1,
  maxLength: 2048,
  error: 'Must be an http or https URL',
  description:
    'Where deliveries are POSTed. Loopback and private addresses are refused unless listed in ' +
    'webhooks.allowed_hosts / allowed_cidrs; link-local and cloud metadata addresses always are. ' +
    'Checked again on the resolved address at every delivery.',
  examples: ['https://hooks.example.com/secryn'],
});

const DescriptionSchema = t.String({
  maxLength: 500,
  pattern: '^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$',
  error: 'Must be at most 500 characters without control characters',
});

/** A webhook as the API shows it; never its secret. */
export const WebhookSchema = t.Object(
  {
    id: t.String({ examples: ['whk_01jq3v6x1nf4r8s2k9w7y5t3m0'] }),
    url: t.String(),
    events: t.Array(t.String()),
    project_id: t.Nullable(t.String({ description: 'Only events of this project; null = all' })),
    enabled: t.Boolean(),
    description: t.String(),
    failing_since: t.Nullable(
      t.String({ description: 'Start of the current run of failed attempts; null when healthy' }),
    ),
    disabled_reason: t.Nullable(
      t.String({ description: 'Why the worker disabled it; cleared when it is enabled again' }),
    ),
    created_at: t.String(),
    updated_at: t.String(),
  },
  {
    description:
      'A webhook subscription (its signing secret is shown only on creation and rotation)',
  },
);

/** `POST /v1/webhooks`: the webhook plus its signing secret, shown this once. */
export const CreatedWebhookSchema = t.Composite([
  WebhookSchema,
  t.Object({
    secret: t.String({
      description: 'The Standard Webhooks signing secret (whsec_...); it is never shown again',
    }),
  }),
]);

export const CreateWebhookBody = strictObject({
  url: UrlSchema,
  events: EventListSchema,
  project_id: t.Optional(t.Nullable(ProjectId)),
  enabled: t.Optional(t.Boolean({ default: true })),
  description: t.Optional(DescriptionSchema),
});

export const UpdateWebhookBody = strictObject({
  url: t.Optional(UrlSchema),
  events: t.Optional(EventListSchema),
  project_id: t.Optional(t.Nullable(ProjectId)),
  enabled: t.Optional(t.Boolean()),
  description: t.Optional(DescriptionSchema),
});

export const WebhookParams = t.Object({ id: t.String({ maxLength: 64 }) });
export const DeliveryParams = t.Object({
  id: t.String({ maxLength: 64 }),
  dlv_id: t.String({ maxLength: 64 }),
});

export const WebhookListQuery = strictObject({
  ...paginationQuery,
  project_id: t.Optional(ProjectId),
  // Patterns rather than UnionEnum: Elysia fills an optional UnionEnum query field with its
  // first member when absent, which would silently filter the list.
  enabled: t.Optional(QueryBoolean),
});

export const RotatedSecretSchema = t.Object({
  id: t.String(),
  secret: t.String({ description: 'The new signing secret (whsec_...); it is never shown again' }),
  previous_secret_expires_at: t.String({
    description: 'Until then deliveries are signed with both the previous and the new secret',
  }),
});

const DELIVERY_STATUSES = ['pending', 'in_flight', 'succeeded', 'failed'] as const;

/** A delivery: one event to one webhook, with the outcome of its latest attempt. */
export const DeliverySchema = t.Object({
  id: t.String({ examples: ['dlv_01jq3v6x1nf4r8s2k9w7y5t3m0'] }),
  webhook_id: t.String(),
  event_id: t.String(),
  event_type: t.String(),
  status: t.UnionEnum(DELIVERY_STATUSES),
  attempt: ResponseInteger({ description: 'Attempts made so far' }),
  response_status: t.Nullable(
    ResponseInteger({ description: 'HTTP status of the latest attempt' }),
  ),
  duration_ms: t.Nullable(ResponseInteger()),
  error: t.Nullable(t.String({ description: 'Why the latest attempt failed' })),
  last_attempt_at: t.Nullable(t.String()),
  next_attempt_at: t.Nullable(t.String({ description: 'When it is tried next, while pending' })),
  created_at: t.String(),
  updated_at: t.String(),
  completed_at: t.Nullable(t.String()),
});

export const DeliveryDetailSchema = t.Composite([
  DeliverySchema,
  t.Object({
    attempts: t.Array(
      t.Object({
        attempt: ResponseInteger(),
        started_at: t.String(),
        ok: t.Boolean(),
        response_status: t.Nullable(ResponseInteger()),
        duration_ms: ResponseInteger(),
        error: t.Nullable(t.String()),
      }),
    ),
  }),
]);

export const DeliveryListQuery = strictObject({
  ...paginationQuery,
  status: t.Optional(
    t.String({
      pattern: `^(${DELIVERY_STATUSES.join('|')})$`,
      error: `Must be one of: ${DELIVERY_STATUSES.join(', ')}`,
    }),
  ),
});
