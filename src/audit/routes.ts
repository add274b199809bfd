/** Routes of the audit log API (`/v1/audit-logs`). */
import { Elysia, t } from 'elysia';
import { NotFoundError } from '../errors.ts';
import { listResponse, listSchema, paginationQuery, readPage } from '../http/pagination.ts';
import { requestMeta } from '../http/request-meta.ts';
import { strictObject } from '../http/schemas.ts';
import { routeDetail } from '../http/route-detail.ts';
import type { Instance } from '../instance.ts';
import { findAuditEntry, listAuditEntries, parseAuditFilters } from './query.ts';
import { AuditEntrySchema, toAuditEntryView } from './rows.ts';

const filter = (description: string) => t.Optional(t.String({ maxLength: 256, description }));

const AuditListQuery = strictObject({
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

const detail = routeDetail('audit');

/**
 * `GET /v1/audit-logs` and `GET /v1/audit-logs/:id` (docs/api.md §7). Read-only by design: there is
 * no update or delete route, so those methods answer 405. Permission (`audit:read`: admins, or
 * keys scoped to it) comes from the route table in `src/access/permissions.ts`.
 */
export function auditRoutes(instance: Instance) {
  return new Elysia({ name: 'audit-routes' })
    .get(
      '/v1/audit-logs',
      ({ query, request, set }) => {
        const page = readPage(query);
        const filters = parseAuditFilters(query);
        const { rows, total, maxSeq } = listAuditEntries(instance.sqlite, filters, page);
        return listResponse(request, set, page, total, rows.map(toAuditEntryView), {
          max_seq: String(maxSeq),
        });
      },
      {
        query: AuditListQuery,
        response: { 200: listSchema(AuditEntrySchema) },
        detail: detail('List audit entries', 'Newest first. Never contains a value or a token.'),
      },
    )
    .get(
      '/v1/audit-logs/:id',
      ({ params, request }) => {
        requestMeta(request).target ??= { type: 'audit_entry', id: params.id };
        const row = findAuditEntry(instance.sqlite, params.id);
        if (!row) throw new NotFoundError('Audit entry');
        return toAuditEntryView(row);
      },
      {
        params: t.Object({ id: t.String({ maxLength: 64 }) }),
        response: { 200: AuditEntrySchema },
        detail: detail('Get an audit entry', 'With its hash and the previous entry’s hash.'),
      },
    );
}
