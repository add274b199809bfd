/**
 * The list engine of `GET /v1/resources`, the vault read lists and version lists: remembered
 * totals and bookmarks per query, so deep pages seek instead of walking, and the one function
 * every resource write calls to forget them ({@link resourcesChanged}).
 */
import type { Database, SQLQueryBindings } from 'bun:sqlite';
import { count, desc, eq, type SQL } from 'drizzle-orm';
import { SQLiteSyncDialect } from 'drizzle-orm/sqlite-core';
import type { KeyGrant } from '../../access/principal.ts';
import { visibleVaultFilter } from '../../access/visibility.ts';
import { connectionOf, type Db } from '../../db/client.ts';
import type { PageRequest } from '../../http/pagination.ts';
import { vaults } from '../../db/schema/vaults.ts';
import {
  resourceVersions,
  versionRowId,
  type ResourceRow,
  type ResourceType,
  type ResourceVersionRow,
} from '../../db/schema/resources.ts';
import { perConnection } from '../../db/per-connection.ts';
import { onVaultContentsChanged } from '../../vaults/service.ts';
import {
  RESOURCE_COLUMNS,
  forgetRecord,
  recordCacheOf,
  rowFromRaw,
  type RawResource,
} from './records.ts';

/**
 * What lists remember per query (SQL text and parameters): the total, and bookmarks — the sort
 * key of the row at a position, for the first row of each page served and of the page after
 * it — so that the next page, or the same deep page again, seeks from there instead of walking
 * every row before it (`OFFSET 49950` walks 49 950 index entries; from a bookmark, none). Counting 100 000 rows costs milliseconds; a cached
 * total costs a map lookup.
 *
 * Every write to `resources`, and every change of a vault's `restricted` flag (which the
 * visibility conditions read), clears it inside its write job ({@link resourcesChanged}). Only
 * this process writes resources (the CLI does not), so the cache is exact. Reads and jobs are
 * synchronous, so nothing can change between a count and its use.
 */
type Bookmark = { createdAt: number; id: string };
type QueryMemo = { total: number; bookmarks: Map<number, Bookmark> };

/** Most queries remembered per connection, and bookmarks per query (oldest dropped first). */
const MAX_MEMOS = 512;
const MAX_BOOKMARKS = 256;

const memosOf = perConnection((): Map<string, QueryMemo> => new Map());

export { connectionOf };

/**
 * Forgets every remembered list total and bookmark, and every cached record, of this
 * connection. Call inside the write job of any change to `resources` rows or to a vault's
 * `restricted` flag.
 */
export function resourcesChanged(db: Db): void {
  const sqlite = connectionOf(db);
  memosOf(sqlite).clear();
  resourceRowsChanged(sqlite);
}

/**
 * Forgets every cached record, every vault's cached secrets and the serialised list objects,
 * and keeps the list totals and bookmarks: for an UPDATE of resource rows (./writes.ts
 * `writeChanges`); a change that can move rows in or out of a list, or along its order, calls
 * {@link resourcesChanged} as well.
 */
export function resourceRowsChanged(sqlite: Database): void {
  generationOf(sqlite).value++;
  recordCacheOf(sqlite).clear();
}

/**
 * Forgets what a new value of `resource` makes stale — its cached records, its vault's cached
 * secrets, the serialised list objects — and keeps the list totals and bookmarks, which no new
 * value changes. Call inside the write job of a change to that resource's value alone.
 */
export function resourceValueChanged(
  sqlite: Database,
  resource: Pick<ResourceRow, 'id' | 'vaultId' | 'name'>,
): void {
  generationOf(sqlite).value++;
  forgetRecord(sqlite, resource);
}

// A vault's `restricted` flag and its deletion change what these caches hold.
onVaultContentsChanged(resourcesChanged);

function rememberQuery(sqlite: Database, key: string, count: () => number): QueryMemo {
  const memos = memosOf(sqlite);
  let memo = memos.get(key);
  if (!memo) {
    if (memos.size >= MAX_MEMOS) memos.delete(memos.keys().next().value!);
    memo = { total: count(), bookmarks: new Map() };
    memos.set(key, memo);
  }
  return memo;
}

/** Remembers that the row at position `at` of the query's order has `row`'s sort key. */
function remember(memo: QueryMemo, at: number, row: Bookmark | undefined): void {
  if (!row || at === 0 || memo.bookmarks.has(at)) return;
  if (memo.bookmarks.size >= MAX_BOOKMARKS) {
    memo.bookmarks.delete(memo.bookmarks.keys().next().value!);
  }
  memo.bookmarks.set(at, { createdAt: row.createdAt, id: row.id });
}

/** The bookmark at or closest before position `offset` (and its position), if any. */
function nearestBookmark(
  memo: QueryMemo | undefined,
  offset: number,
): { at: number; bookmark: Bookmark } | undefined {
  let best: { at: number; bookmark: Bookmark } | undefined;
  for (const [at, bookmark] of memo?.bookmarks ?? []) {
    if (at <= offset && (!best || at > best.at)) best = { at, bookmark };
  }
  return best;
}

/** The filters of `GET /v1/resources` (and the vault read lists). */
export type ResourceFilters = {
  vaultId?: string;
  projectId?: string;
  type?: ResourceType;
  name?: string;
  tag?: string;
  enabled?: boolean;
  /**
   * Deleted resources still within the retention period (deleted at or after
   * `deletedSince`) instead of live ones.
   */
  deletedSince?: number;
};

const dialect = new SQLiteSyncDialect();

/** A drizzle condition as SQL text and parameters, to embed in a hand-written query. */
function toRawSql(condition: SQL): { sql: string; params: unknown[] } {
  const query = dialect.sqlToQuery(condition);
  return { sql: query.sql, params: query.params };
}

/**
 * A page of the resources the key reaches, newest first (ties by id), and the total count.
 * Hand-written SQL (statements cached per SQL text by bun:sqlite): the query builder and its
 * row mapping cost more than the queries here. One direct `ORDER BY … LIMIT … OFFSET` walking
 * the (deleted_at, created_at, id, vault_id) index in order: SQLite defers each table seek
 * until a row is returned, so skipped rows are not fetched, where the former
 * `id IN (… LIMIT … OFFSET …)` form re-sorted its page in a temporary B-tree (page 1: ~120 vs
 * ~200 µs). Deep pages start from the nearest remembered bookmark (see {@link QueryMemo}).
 */
export function listResources(
  sqlite: Database,
  key: KeyGrant,
  filters: ResourceFilters,
  page: PageRequest,
): { rows: ResourceRow[]; total: number } {
  const { rows, total } = pageOf<RawResource>(sqlite, key, filters, page, RESOURCE_COLUMNS);
  return { rows: rows.map(rowFromRaw), total };
}

/**
 * The ids of a page of {@link listResources}, and the total count. Without other filters than
 * the vaults the key reaches, the page comes from the (deleted_at, created_at, id, vault_id)
 * index alone, without reading a row: for callers that keep what they make of each resource
 * (e.g. its serialised API object) until {@link resourcesGeneration} moves.
 */
export function listResourceIds(
  sqlite: Database,
  key: KeyGrant,
  filters: ResourceFilters,
  page: PageRequest,
): { ids: string[]; total: number } {
  const { rows, total } = pageOf<{ id: string; createdAt: number }>(
    sqlite,
    key,
    filters,
    page,
    'r.id AS id, r.created_at AS createdAt',
  );
  return { ids: rows.map((row) => row.id), total };
}

/** The resources with these ids (live or deleted), in no particular order. */
export function resourcesByIds(sqlite: Database, ids: readonly string[]): ResourceRow[] {
  if (ids.length === 0) return [];
  return sqlite
    .query<RawResource, SQLQueryBindings[]>(
      `SELECT ${RESOURCE_COLUMNS} FROM resources r WHERE r.id IN (${ids.map(() => '?').join(',')})`,
    )
    .all(...ids)
    .map(rowFromRaw);
}

/**
 * A number that changes whenever anything a list could show changes on this connection (it
 * moves with {@link resourcesChanged}, {@link resourceRowsChanged} and
 * {@link resourceValueChanged}): what a caller made from rows of an earlier generation is stale.
 */
export function resourcesGeneration(sqlite: Database): number {
  return generationOf(sqlite).value;
}

const generationOf = perConnection(() => ({ value: 0 }));

/** The page query of the lists: `columns` of one page (sort keys included) and the total. */
function pageOf<Row extends { id: string; createdAt: number }>(
  sqlite: Database,
  key: KeyGrant,
  filters: ResourceFilters,
  page: PageRequest,
  columns: string,
): { rows: Row[]; total: number } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filters.deletedSince === undefined) where.push('r.deleted_at IS NULL');
  else {
    where.push('r.deleted_at >= ?');
    params.push(filters.deletedSince);
  }
  const equal = (column: string, value: unknown) => {
    if (value === undefined) return;
    where.push(`r.${column} = ?`);
    params.push(value);
  };
  equal('vault_id', filters.vaultId);
  equal('project_id', filters.projectId);
  equal('type', filters.type);
  equal('name', filters.name);
  equal('enabled', filters.enabled === undefined ? undefined : filters.enabled ? 1 : 0);
  if (filters.tag !== undefined) {
    where.push('EXISTS (SELECT 1 FROM json_each(r.tags) WHERE json_each.value = ?)');
    params.push(filters.tag);
  }
  const visible = visibleVaultFilter(key, vaults);
  if (visible !== undefined) {
    const raw = toRawSql(visible);
    where.push(`r.vault_id IN (SELECT "vaults"."id" FROM "vaults" WHERE ${raw.sql})`);
    params.push(...raw.params);
  }
  const condition = where.join(' AND ');
  const bind = params as SQLQueryBindings[];
  const countSql = `SELECT count(*) AS n FROM resources r WHERE ${condition}`;
  const countRows = () =>
    sqlite.query<{ n: number }, SQLQueryBindings[]>(countSql).get(...bind)?.n ?? 0;
  // The retention window moves with the clock: lists of deleted resources are not remembered.
  const memo =
    filters.deletedSince === undefined
      ? rememberQuery(sqlite, `${condition}\u0000${JSON.stringify(params)}`, countRows)
      : undefined;
  const total = memo?.total ?? countRows();
  if (total <= page.offset) return { rows: [], total };
  const from = nearestBookmark(memo, page.offset);
  const seek = from ? ' AND (r.created_at, r.id) <= (?, ?)' : '';
  // One row more than the page: its sort key is the bookmark of the next page.
  const rows = sqlite
    .query<Row, SQLQueryBindings[]>(
      `SELECT ${columns} FROM resources r WHERE ${condition}${seek}
       ORDER BY r.created_at DESC, r.id DESC LIMIT ? OFFSET ?`,
    )
    .all(
      ...bind,
      ...(from ? [from.bookmark.createdAt, from.bookmark.id] : []),
      page.limit + 1,
      page.offset - (from?.at ?? 0),
    );
  if (memo) {
    remember(memo, page.offset, rows[0]);
    remember(memo, page.offset + page.limit, rows[page.limit]);
  }
  if (rows.length > page.limit) rows.length = page.limit;
  return { rows, total };
}

/** A page of a resource's versions, newest first, without values, and their count. */
export function listVersions(
  db: Db,
  resourceId: string,
  page: PageRequest,
): { rows: Omit<ResourceVersionRow, 'value'>[]; total: number } {
  const where = eq(resourceVersions.resourceId, resourceId);
  const total = db.select({ n: count() }).from(resourceVersions).where(where).get()?.n ?? 0;
  const rows = db
    .select({
      id: resourceVersions.id,
      resourceId: resourceVersions.resourceId,
      version: resourceVersions.version,
      createdAt: resourceVersions.createdAt,
      createdBy: resourceVersions.createdBy,
    })
    .from(resourceVersions)
    .where(where)
    .orderBy(desc(resourceVersions.version))
    .limit(page.limit)
    .offset(page.offset)
    .all();
  return { rows, total };
}

/** One version of a resource (with its sealed value). */
export function findVersion(
  db: Db,
  resourceId: string,
  version: number,
): ResourceVersionRow | undefined {
  return db
    .select()
    .from(resourceVersions)
    .where(eq(resourceVersions.id, versionRowId(resourceId, version)))
    .get();
}
