/**
 * `GET /v1/audit-logs`, `GET /v1/audit-logs/:id` and `GET /v1/audit-logs/verify` (docs/api.md §7).
 * Read-only by design: there is no update or delete route, so those methods answer 405.
 * Permission (`audit:read`: admins, or keys scoped to it) comes from the route table in
 * `src/access/permissions.ts`.
 *
 * Routes:
 *   GET /v1/audit-logs          list
 *   GET /v1/audit-logs/verify   verify
 *   GET /v1/audit-logs/:id      get
 */
import { Elysia } from 'elysia';
import { NotFoundError } from '../errors.ts';
import { builtJson } from '../http/fields.ts';
import { listResponse, readPage } from '../http/pagination.ts';
import { toRfc3339 } from '../db/columns.ts';
import { requestMeta } from '../http/request-meta.ts';
import type { RouteContext } from '../http/route.ts';
import type { Instance } from '../instance.ts';
import { findAuditEntry, listAuditEntries, parseAuditFilters } from './query.ts';
import { toAuditEntryView } from './rows.ts';
import { verifyChain, type VerifyResult } from './verify.ts';
import * as spec from './spec.ts';

/** The `/v1/audit-logs` routes: schemas and OpenAPI text in ./spec.ts. */
export function auditRoutes(instance: Pick<Instance, 'sqlite' | 'clock'>) {
  const handle = auditHandlers(instance);
  return new Elysia({ name: 'audit-routes' })
    .get('/v1/audit-logs', handle.list, spec.list)
    .get('/v1/audit-logs/verify', handle.verify, spec.verify)
    .get('/v1/audit-logs/:id', handle.get, spec.get);
}

/** The handlers, over one instance's database. */
function auditHandlers({ sqlite, clock }: Pick<Instance, 'sqlite' | 'clock'>) {
  // The last verification, reused for VERIFY_REUSE_MS: a walk hashes every entry on the event
  // loop (measured: 20,000 entries in 60 ms, about 3 s per million), so a console refreshing its
  // overview must not repeat it.
  let last: { result: VerifyResult; checkedAt: number } | undefined;
  return { list, get, verify };

  function verify() {
    const now = clock.now();
    if (!last || now - last.checkedAt >= spec.VERIFY_REUSE_MS || now < last.checkedAt) {
      last = { result: verifyChain(sqlite), checkedAt: now };
    }
    const { result, checkedAt } = last;
    return {
      intact: result.intact,
      verified: result.verified,
      head: result.head,
      problem: result.problem ?? null,
      checked_at: toRfc3339(checkedAt),
    };
  }

  function list({ query, request, set }: RouteContext<{ query: typeof spec.AuditListQuery }>) {
    const page = readPage(query);
    const filters = parseAuditFilters(query);
    const { rows, total, maxSeq } = listAuditEntries(sqlite, filters, page);
    // Built JSON (no response cleaner): every entry is written field by field by
    // toAuditEntryView, and a page of 100 entries is ~47 KB, which leaves as one chunk this way
    // (http/fields.ts jsonText) instead of one send() per header fragment.
    return builtJson(
      listResponse(request, set, page, total, rows.map(toAuditEntryView), {
        max_seq: String(maxSeq),
      }),
    );
  }

  function get({ params, request }: RouteContext<{ params: typeof spec.AuditEntryParams }>) {
    requestMeta(request).target ??= { type: 'audit_entry', id: params.id };
    const row = findAuditEntry(sqlite, params.id);
    if (!row) throw new NotFoundError('Audit entry');
    return toAuditEntryView(row);
  }
}
