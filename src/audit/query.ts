/** Reading the audit log: filters of `GET /v1/audit-logs` and `secryn audit export`, and paging. */
import type { Database, SQLQueryBindings } from 'bun:sqlite';
import { InvalidRequestError } from '../errors.ts';
import { timestampMs } from '../http/schemas.ts';
import { seqOfAuditEntryId } from '../ledger/audit-entry-id.ts';
import { AUDIT_ROW_COLUMNS, type AuditRow } from './rows.ts';

/** Filters of `GET /v1/audit-logs` (docs/api.md §7); all optional, combined with AND. */
export type AuditFilters = {
  actorId?: string;
  action?: string;
  /** The target's id (`res_…`, `key_…`, …): named `resource_id` in the API. */
  targetId?: string;
  outcome?: 'success' | 'denied' | 'error';
  /** Inclusive lower bound, epoch ms. */
  since?: number;
  /** Exclusive upper bound, epoch ms. */
  until?: number;
  /**
   * Only entries at or before this chain position: the newest entry when a walk through the
   * pages began, so that entries appended meanwhile (the walk's own included) shift no page.
   */
  maxSeq?: number;
};

const OUTCOMES = ['success', 'denied', 'error'] as const;
const MAX_FILTER_LENGTH = 256;

/**
 * Reads the filters from a query string, naming the first bad one (`details.field`) in a 400.
 * `since`/`until` take RFC 3339 timestamps (`2024-01-15T10:30:00Z`) or dates (`2024-01-15`).
 */
export function parseAuditFilters(query: Record<string, string | undefined>): AuditFilters {
  const filters: AuditFilters = {};
  const text = (field: string) => {
    const value = query[field];
    if (value === undefined || value === '') return undefined;
    if (value.length > MAX_FILTER_LENGTH)
      throw new InvalidRequestError(field, `Must be at most ${MAX_FILTER_LENGTH} characters`);
    return value;
  };
  filters.actorId = text('actor_id');
  filters.action = text('action');
  filters.targetId = text('resource_id');
  const outcome = text('outcome');
  if (outcome !== undefined) {
    if (!(OUTCOMES as readonly string[]).includes(outcome))
      throw new InvalidRequestError('outcome', `Must be one of ${OUTCOMES.join(', ')}`);
    filters.outcome = outcome as AuditFilters['outcome'];
  }
  const maxSeq = text('max_seq');
  if (maxSeq !== undefined) {
    if (!/^[1-9][0-9]{0,15}$/.test(maxSeq) || !Number.isSafeInteger(Number(maxSeq))) {
      throw new InvalidRequestError('max_seq', 'Must be a positive whole number');
    }
    filters.maxSeq = Number(maxSeq);
  }
  for (const field of ['since', 'until'] as const) {
    const value = text(field);
    if (value === undefined) continue;
    const ms = timestampMs(value, { dateOnly: true });
    if (ms === undefined)
      throw new InvalidRequestError(field, 'Must be an RFC 3339 timestamp or a YYYY-MM-DD date');
    filters[field] = ms;
  }
  return filters;
}

/**
 * The `seq` range holding every entry of a time range, found through the `at` index. A page is
 * read newest first by `seq`, so without these bounds a filter on another field (say a target
 * that appears once) would walk the whole log even with `since` set. Exact whatever the clock
 * did: the bounds only narrow the scan, the `at` conditions still decide.
 */
function seqBounds(
  sqlite: Database,
  filters: Pick<AuditFilters, 'since' | 'until'>,
): { from: number; to: number } | undefined {
  if (filters.since === undefined && filters.until === undefined) return undefined;
  const range = sqlite
    .query<
      { from: number | null; to: number | null },
      [number, number]
    >('SELECT min(seq) AS "from", max(seq) AS "to" FROM audit_log WHERE at >= ? AND at < ?')
    .get(filters.since ?? Number.MIN_SAFE_INTEGER, filters.until ?? Number.MAX_SAFE_INTEGER);
  return { from: range?.from ?? 1, to: range?.to ?? 0 };
}

function whereClause(
  filters: AuditFilters,
  bounds?: { from: number; to: number },
): { sql: string; params: SQLQueryBindings[] } {
  const conditions: string[] = [];
  const params: SQLQueryBindings[] = [];
  const add = (condition: string, value: SQLQueryBindings | undefined) => {
    if (value === undefined) return;
    conditions.push(condition);
    params.push(value);
  };
  add('actor_id = ?', filters.actorId);
  add('action = ?', filters.action);
  add('target_id = ?', filters.targetId);
  add('outcome = ?', filters.outcome);
  add('at >= ?', filters.since);
  add('at < ?', filters.until);
  add('seq >= ?', bounds?.from);
  add('seq <= ?', bounds?.to);
  add('seq <= ?', filters.maxSeq);
  return { sql: conditions.length ? `WHERE ${conditions.join(' AND ')}` : '', params };
}

/**
 * One page of entries matching `filters`, newest first (by chain position), the total, and
 * `maxSeq`: the chain position the page was cut at (the filter's, else the newest entry), for the
 * links to the neighbouring pages.
 */
export function listAuditEntries(
  sqlite: Database,
  filters: AuditFilters,
  page: { page: number; limit: number },
): { rows: AuditRow[]; total: number; maxSeq: number } {
  const { maxSeq: _, ...others } = filters;
  if (Object.values(others).every((value) => value === undefined)) {
    return listWholeLog(sqlite, page, filters.maxSeq);
  }
  // One snapshot for the bounds, the page and its total, even while the server appends.
  return sqlite.transaction(() => {
    const maxSeq = filters.maxSeq ?? headSeq(sqlite);
    const where = whereClause({ ...filters, maxSeq }, seqBounds(sqlite, filters));
    const total =
      sqlite
        .query<
          { total: number },
          SQLQueryBindings[]
        >(`SELECT count(*) AS total FROM audit_log ${where.sql}`)
        .get(...where.params)?.total ?? 0;
    const rows = sqlite
      .query<
        AuditRow,
        SQLQueryBindings[]
      >(`SELECT ${AUDIT_ROW_COLUMNS} FROM audit_log ${where.sql} ORDER BY seq DESC LIMIT ? OFFSET ?`)
      .all(...where.params, page.limit, (page.page - 1) * page.limit);
    return { rows, total, maxSeq };
  })();
}

function headSeq(sqlite: Database): number {
  return (
    sqlite.query<{ head: number | null }, []>('SELECT max(seq) AS head FROM audit_log').get()
      ?.head ?? 0
  );
}

/**
 * The unfiltered list without counting or skipping rows: `seq` runs without gaps from the
 * retention checkpoint to the head (a gap is tampering, which `audit verify` reports), so the
 * total is a subtraction and a page starts at a computed `seq` — constant time however long the
 * log, where `count(*)` and `OFFSET` would walk it on the event loop.
 */
function listWholeLog(
  sqlite: Database,
  page: { page: number; limit: number },
  maxSeq: number | undefined,
): { rows: AuditRow[]; total: number; maxSeq: number } {
  return sqlite.transaction(() => {
    const bounds = sqlite
      .query<{ head: number | null; start: number | null }, []>(
        `SELECT (SELECT max(seq) FROM audit_log) AS head,
                (SELECT through_seq FROM audit_checkpoint WHERE id = 1) AS start`,
      )
      .get();
    const head = Math.min(bounds?.head ?? 0, maxSeq ?? Number.MAX_SAFE_INTEGER);
    const total = Math.max(0, head - (bounds?.start ?? 0));
    const rows = sqlite
      .query<
        AuditRow,
        [number, number]
      >(`SELECT ${AUDIT_ROW_COLUMNS} FROM audit_log WHERE seq <= ? ORDER BY seq DESC LIMIT ?`)
      .all(head - (page.page - 1) * page.limit, page.limit);
    return { rows, total, maxSeq: head };
  })();
}

/**
 * One entry by id, or null. The id names its chain position ({@link seqOfAuditEntryId}), so this
 * is a rowid lookup; the stored id must then match exactly (there is no index on `id`).
 */
export function findAuditEntry(sqlite: Database, id: string): AuditRow | null {
  const seq = seqOfAuditEntryId(id);
  if (seq === null) return null;
  const row = sqlite
    .query<AuditRow, [number]>(`SELECT ${AUDIT_ROW_COLUMNS} FROM audit_log WHERE seq = ?`)
    .get(seq);
  return row !== null && row.id === id ? row : null;
}

/**
 * Every entry in chain order whose time lies in [since, until), streamed from one read
 * snapshot: the caller iterates, memory stays constant whatever the size of the log.
 */
export function* streamAuditEntries(
  sqlite: Database,
  range: { since?: number; until?: number } = {},
): Generator<AuditRow> {
  sqlite.run('BEGIN');
  try {
    const where = whereClause(range, seqBounds(sqlite, range));
    yield* sqlite
      .query<
        AuditRow,
        SQLQueryBindings[]
      >(`SELECT ${AUDIT_ROW_COLUMNS} FROM audit_log ${where.sql} ORDER BY seq`)
      .iterate(...where.params);
  } finally {
    sqlite.run('COMMIT');
  }
}
