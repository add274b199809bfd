/**
 * What each `/v1/audit-logs` route accepts and answers: the TypeBox schemas Elysia validates with
 * and the OpenAPI text `/docs` shows. The routes themselves are listed in ./routes.ts.
 */
import { t } from 'elysia';
import { documentedResponse } from '../http/fields.ts';
import { listSchema, paginationQuery } from '../http/pagination.ts';
import { docsFor } from '../http/route.ts';
import { ResponseInteger, strictObject } from '../http/schemas.ts';
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
  response: { 200: documentedResponse(listSchema(AuditEntrySchema)) },
  detail: docs('List audit entries', 'Newest first. Never contains a value or a token.'),
};

export const get = {
  params: AuditEntryParams,
  response: { 200: AuditEntrySchema },
  detail: docs('Get an audit entry', 'With its hash and the previous entry’s hash.'),
};

/** How long one chain verification is reused by `GET /v1/audit-logs/verify`. */
export const VERIFY_REUSE_MS = 60_000;

const VerifyProblemSchema = t.Object({
  kind: t.String({ description: 'changed, removed, inserted, reordered, checkpoint or truncated' }),
  seq: ResponseInteger({ description: 'Chain position of the entry named' }),
  id: t.Nullable(t.String({ description: 'The entry named, when it still exists' })),
  message: t.String(),
});

export const AuditVerifySchema = t.Object({
  intact: t.Boolean({ description: 'True when every entry hashes and links as written' }),
  verified: ResponseInteger({ description: 'Entries found linked before the first problem' }),
  head: t.Object({
    seq: ResponseInteger(),
    id: t.Nullable(t.String()),
    hash: t.String({
      description: 'Record it elsewhere and pass it to `secryn audit verify --anchor` later',
    }),
  }),
  problem: t.Nullable(VerifyProblemSchema),
  checked_at: t.String({ description: 'When this verification ran' }),
});

export const verify = {
  response: { 200: AuditVerifySchema },
  detail: docs(
    'Verify the audit chain',
    'Walks the keyed hash chain read-only, as `secryn audit verify` does, and names the first ' +
      'entry changed, removed, inserted or reordered. The walk hashes every entry (about a ' +
      'few seconds per million entries), so one result is reused for 60 seconds (`checked_at`). ' +
      'Cutting entries from the end needs an anchor: use the CLI with `--anchor`.',
  ),
};
