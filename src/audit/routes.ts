/**
 * `GET /v1/audit-logs` and `GET /v1/audit-logs/:id` (docs/api.md §7). Read-only by design: there is
 * no update or delete route, so those methods answer 405. Permission (`audit:read`: admins, or
 * keys scoped to it) comes from the route table in `src/access/permissions.ts`.
 */
import { Elysia } from 'elysia';
import { NotFoundError } from '../errors.ts';
import { listResponse, readPage } from '../http/pagination.ts';
import { requestMeta } from '../http/request-meta.ts';
import type { RouteContext } from '../http/route.ts';
import type { Instance } from '../instance.ts';
import { findAuditEntry, listAuditEntries, parseAuditFilters } from './query.ts';
import { toAuditEntryView } from './rows.ts';
import * as spec from './spec.ts';

/** The `/v1/audit-logs` routes: schemas and OpenAPI text in ./spec.ts. */
export function auditRoutes(instance: Pick<Instance, 'sqlite'>) {
  const handle = auditHandlers(instance);
  return new Elysia({ name: 'audit-routes' })
    .get('/v1/audit-logs', handle.list, spec.list)
    .get('/v1/audit-logs/:id', handle.get, spec.get);
}

/** The handlers, over one instance's database. */
function auditHandlers({ sqlite }: Pick<Instance, 'sqlite'>) {
  return { list, get };

  function list({ query, request, set }: RouteContext<{ query: typeof spec.AuditListQuery }>) {
    const page = readPage(query);
    const filters = parseAuditFilters(query);
    const { rows, total, maxSeq } = listAuditEntries(sqlite, filters, page);
    return listResponse(request, set, page, total, rows.map(toAuditEntryView), {
      max_seq: String(maxSeq),
    });
  }

  function get({ params, request }: RouteContext<{ params: typeof spec.AuditEntryParams }>) {
    requestMeta(request).target ??= { type: 'audit_entry', id: params.id };
    const row = findAuditEntry(sqlite, params.id);
    if (!row) throw new NotFoundError('Audit entry');
    return toAuditEntryView(row);
  }
}
