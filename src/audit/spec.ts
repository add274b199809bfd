/**
 * What each `/v1/audit-logs` route accepts and answers: the TypeBox schemas Elysia validates with
 * and the OpenAPI text `/docs` shows. The routes themselves are listed in ./routes.ts.
 */
import { t } from 'elysia';
import { listSchema, paginationQuery } from '../http/pagination.ts';
import { docsFor } from '../http/route.ts';
import { strictObject } from '../http/schemas.ts';
import { AuditEntrySchema } from './rows.ts';

const docs = docsFor('audit');

const filter = (description: string) => t.Optional(t.String({ maxLength: 256, description }));

export const AuditListQuery = strictObject({
  ...paginationQuery,
  actor_id: filter('Only entries by this actor (an API key id or a local user)'),
  action: filter('Only this action, e.g. resource.reveal'),
  resource_id: filter('Only entries whose target is this object'),
  outcome: filter('success, denied or error'),
  since: filter('From this time on (RFC 3339, or YYYY-MM-DD)'),
  until: filter('Before this time (RFC 3339, or YYYY-MM-DD)'),
  max_seq: filter(
    'Only entries up to this chain position. The Link header sets it to the newest entry of ' +
      'the first page, so pages do not shift while new entries arrive; follow Link to keep it.',
  ),
});

export const AuditEntryParams = t.Object({ id: t.String({ maxLength: 64 }) });

export const list = {
  query: AuditListQuery,
  response: { 200: listSchema(AuditEntrySchema) },
  detail: docs('List audit entries', 'Newest first. Never contains a value or a token.'),
};

export const get = {
  params: AuditEntryParams,
  response: { 200: AuditEntrySchema },
  detail: docs('Get an audit entry', 'With its hash and the previous entry’s hash.'),
};
