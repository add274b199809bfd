/**
 * Resources and their versions in the database. Reads on the hot paths (one resource by id, a
 * secret by vault and name, a vault's active secrets) are prepared once per connection and
 * return the vault's visibility fields with the row, so a read is one point query plus, only
 * when a value is returned, one point read and one decryption. Write functions are synchronous
 * and run inside the caller's write job; they re-read what they depend on there, so checks such
 * as `If-Match` and name uniqueness cannot race.
 */
import type { Database, SQLQueryBindings, Statement } from 'bun:sqlite';
import {
  and,
  count,
  desc,
  eq,
  getTableColumns,
  isNotNull,
  isNull,
  sql,
  type SQL,
} from 'drizzle-orm';
import { SQLiteSyncDialect } from 'drizzle-orm/sqlite-core';
import type { KeyGrant } from '../access/principal.ts';
import { visibleVaultFilter } from '../access/visibility.ts';
import { connectionOf, type Db } from '../db/client.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import type { PageRequest } from '../http/pagination.ts';
import type { InstanceKeyring } from '../keyring/live-keyring.ts';
import { vaults } from '../db/schema/vaults.ts';
import type { MetadataChanges, PreparedResource } from './input.ts';
import {
  resources,
  resourceValueColumn,
  resourceVersions,
  versionRowId,
  type ResourceRow,
  type ResourceType,
  type ResourceVersionRow,
} from '../db/schema/resources.ts';
import { newTypeId } from '../ids.ts';
import { RecordCache } from './record-cache.ts';
import { perConnection } from '../db/per-connection.ts';

/** A new resource id, `res_` + a time-ordered TypeID. */
export function newResourceId(): string {
  return newTypeId('res');
}

/**
 * A resource row with what the visibility rules need of its vault, and the sealed value of its
 * current version (`null`: that version has no value row).
 */
export type ResourceRecord = ResourceRow & {
  vaultRestricted: boolean;
  sealedValue: Uint8Array | null;
};

/** What a read may hand out right now. `expired` wins over the others. */
export type ResourceState = 'active' | 'disabled' | 'inactive' | 'expired';

/** The state of a resource at `now`. */
export function resourceState(
  row: Pick<ResourceRow, 'enabled' | 'activatesAt' | 'expiresAt'>,
  now: number,
): ResourceState {
  if (row.expiresAt !== null && now >= row.expiresAt) return 'expired';
  if (!row.enabled) return 'disabled';
  if (row.activatesAt !== null && now < row.activatesAt) return 'inactive';
  return 'active';
}

// --- prepared reads ----------------------------------------------------------------------

/** `r."vault_id" AS "vaultId", …`: raw rows come back with the drizzle property names. */
const RESOURCE_COLUMNS = Object.entries(getTableColumns(resources))
  .map(([property, column]) => `r."${column.name}" AS "${property}"`)
  .join(', ');

type RawResource = Omit<ResourceRow, 'tags' | 'enabled' | 'hasPrivateKey'> & {
  tags: string;
  enabled: number;
  hasPrivateKey: number | null;
};
type RawRecord = RawResource & { vaultRestricted: number; sealedValue: Uint8Array | null };

/** One active secret of a vault, as the vault read API lists it. */
export type ActiveSecret = {
  id: string;
  name: string;
  contentType: string | null;
  tags: string[];
  updatedAt: number;
  version: number;
  /** Sealed value; only selected when values were asked for. */
  sealed?: Uint8Array;
};

type RawActiveSecret = Omit<ActiveSecret, 'tags'> & { tags: string };

type Reads = {
  byId: Statement<RawRecord, [string]>;
  secretByName: Statement<RawRecord, [string, string]>;
  sealedValue: Statement<{ value: Uint8Array }, [string]>;
  activeSecrets: Statement<RawActiveSecret, [string, number, number]>;
  activeSecretsWithValues: Statement<RawActiveSecret, [string, number, number]>;
};

const ACTIVE_SECRETS = `FROM resources r
  WHERE r.vault_id = ?1 AND r.type = 'secret' AND r.deleted_at IS NULL AND r.enabled = 1
    AND (r.activates_at IS NULL OR r.activates_at <= ?2)
    AND (r.expires_at IS NULL OR r.expires_at > ?3)
  ORDER BY r.name`;

const readsFor = perConnection((sqlite): Reads => {
  // A correlated subquery rather than a JOIN: same plan, a third of the cost in bun:sqlite.
  const restricted =
    '(SELECT v.restricted FROM vaults v WHERE v.id = r.vault_id) AS vaultRestricted';
  // The value in the same statement: every statement outside a transaction opens its own
  // read transaction (~2 µs of locking in WAL mode), more than the point read itself.
  const record = `SELECT ${RESOURCE_COLUMNS}, ${restricted},
      (SELECT rv.value FROM resource_versions rv WHERE rv.id = r.id || ':' || r.current_version)
        AS sealedValue
    FROM resources r`;
  const byName = `WHERE r.vault_id = ? AND r.type = 'secret' AND r.name = ? AND r.deleted_at IS NULL`;
  const secretColumns = `r.id AS id, r.name AS name, r.content_type AS contentType,
    r.tags AS tags, r.updated_at AS updatedAt, r.current_version AS version`;
  return {
    byId: sqlite.prepare(`${record} WHERE r.id = ?`),
    secretByName: sqlite.prepare(`${record} ${byName}`),
    sealedValue: sqlite.prepare('SELECT value FROM resource_versions WHERE id = ?'),
    activeSecrets: sqlite.prepare(`SELECT ${secretColumns} ${ACTIVE_SECRETS}`),
    activeSecretsWithValues: sqlite.prepare(
      `SELECT ${secretColumns},
         (SELECT value FROM resource_versions rv WHERE rv.id = r.id || ':' || r.current_version)
           AS sealed
       ${ACTIVE_SECRETS}`,
    ),
  };
});

function rowFromRaw(raw: RawResource): ResourceRow {
  return {
    ...raw,
    tags: JSON.parse(raw.tags) as string[],
    enabled: raw.enabled === 1,
    hasPrivateKey: raw.hasPrivateKey === null ? null : raw.hasPrivateKey === 1,
  };
}

function fromRaw(raw: RawRecord): ResourceRecord {
  return {
    ...rowFromRaw(raw),
    vaultRestricted: raw.vaultRestricted === 1,
    sealedValue: raw.sealedValue,
  };
}

/** Records cached for single reads (see record-cache.ts); sealed values count by size. */
const MAX_CACHED_RECORDS = 20_000;
const MAX_CACHED_BYTES = 32 * 1024 * 1024;
/** What a cached record costs besides its sealed value (a generous estimate). */
const RECORD_OVERHEAD_BYTES = 1024;

const recordCacheOf = perConnection(
  (): RecordCache<ResourceRecord> => new RecordCache(MAX_CACHED_RECORDS, MAX_CACHED_BYTES),
);

/** A record as every read returns it: frozen, cached or not, so no caller can rely on changing it. */
function frozenRecord(raw: RawRecord | null): ResourceRecord | undefined {
  if (!raw) return undefined;
  const record = fromRaw(raw);
  Object.freeze(record.tags);
  return Object.freeze(record);
}

/**
 * The record under `key`, through the record cache. Reads inside a transaction bypass it (what
 * a write job reads may still roll back); absent rows are not cached (anyone can ask for ids
 * that do not exist).
 */
function cachedRead(
  sqlite: Database,
  key: string,
  read: () => RawRecord | null,
): ResourceRecord | undefined {
  if (sqlite.inTransaction) return frozenRecord(read());
  const cache = recordCacheOf(sqlite);
  const cached = cache.get(key);
  if (cached) return cached;
  const record = frozenRecord(read());
  if (record) {
    cache.set(key, record, RECORD_OVERHEAD_BYTES + (record.sealedValue?.byteLength ?? 0));
  }
  return record;
}

/**
 * One resource by id (deleted ones included: check `deletedAt`), with its vault's fields and
 * the sealed value of its current version (open it with {@link openCurrentValue}). Outside a
 * transaction it is served from the record cache when it can be; the result is frozen.
 */
export function findResource(sqlite: Database, id: string): ResourceRecord | undefined {
  return cachedRead(sqlite, id, () => readsFor(sqlite).byId.get(id));
}

/** The live secret of a vault with this name, as {@link findResource} gives it. */
export function findSecretByName(
  sqlite: Database,
  vaultId: string,
  name: string,
): ResourceRecord | undefined {
  // Names never contain "/" (names.ts), so the key is unambiguous.
  return cachedRead(sqlite, `${vaultId}/${name}`, () =>
    readsFor(sqlite).secretByName.get(vaultId, name),
  );
}

/**
 * The enabled, active, live secrets of a vault at `now`, by name; with their sealed values
 * when `withValues` (open them with {@link openSecretValue}).
 */
export function listActiveSecrets(
  sqlite: Database,
  vaultId: string,
  now: number,
  withValues: boolean,
): ActiveSecret[] {
  const reads = readsFor(sqlite);
  const statement = withValues ? reads.activeSecretsWithValues : reads.activeSecrets;
  return statement.all(vaultId, now, now).map((raw) => ({
    ...raw,
    tags: JSON.parse(raw.tags) as string[],
  }));
}

/** Where a resource lives: what its values are bound to besides their row. */
export type ResourcePlace = Pick<ResourceRow, 'id' | 'vaultId' | 'projectId'>;

/** The AAD location of version `version` of `resource`'s value. */
function valueLocation(resource: ResourcePlace, version: number) {
  return resourceValueColumn.at(versionRowId(resource.id, version), version, {
    parentId: resource.id,
    vaultId: resource.vaultId,
    projectId: resource.projectId,
  });
}

/**
 * Opens the sealed value of version `version` of `resource`. A value that does not open where
 * the resource now lives (moved to another vault or project, altered, corrupt) throws
 * DecryptionError, which the API answers as a bare 500 and logs with its location.
 */
export function openValue(
  keyring: InstanceKeyring,
  resource: ResourcePlace,
  version: number,
  sealed: Uint8Array,
): string {
  return keyring.decryptString(sealed, valueLocation(resource, version));
}

/** Opens the value of a record's current version (read with the record). */
export function openCurrentValue(keyring: InstanceKeyring, record: ResourceRecord): string {
  if (record.sealedValue === null) throw new NotFoundError('Version');
  return openValue(keyring, record, record.currentVersion, record.sealedValue);
}

/** Reads and opens a resource's value at `version` (its current one by default). */
export function readValue(
  sqlite: Database,
  keyring: InstanceKeyring,
  resource: ResourcePlace,
  version: number,
): string {
  const row = readsFor(sqlite).sealedValue.get(versionRowId(resource.id, version));
  if (!row) throw new NotFoundError('Version');
  return openValue(keyring, resource, version, row.value);
}

// --- lists -------------------------------------------------------------------------------

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

/**
 * Forgets every remembered list total and bookmark, and every cached record, of this
 * connection. Call inside the write job of any change to `resources` rows or to a vault's
 * `restricted` flag.
 */
export function resourcesChanged(db: Db): void {
  const sqlite = connectionOf(db);
  memosOf(sqlite).clear();
  recordCacheOf(sqlite).clear();
}

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
 * row mapping cost more than the queries here. The page is chosen on the index first
 * (`id IN (… LIMIT … OFFSET …)`), so a deep page does not fetch the rows it skips, and from
 * the nearest remembered bookmark when there is one (see {@link QueryMemo}).
 */
export function listResources(
  sqlite: Database,
  key: KeyGrant,
  filters: ResourceFilters,
  page: PageRequest,
): { rows: ResourceRow[]; total: number } {
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
    .query<RawResource, SQLQueryBindings[]>(
      `SELECT ${RESOURCE_COLUMNS} FROM resources r WHERE r.id IN (
         SELECT r.id FROM resources r WHERE ${condition}${seek}
         ORDER BY r.created_at DESC, r.id DESC LIMIT ? OFFSET ?)
       ORDER BY r.created_at DESC, r.id DESC`,
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
  return { rows: rows.map(rowFromRaw), total };
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

// --- writes (inside a write job) ---------------------------------------------------------
//
// Hand-written statements, as for the hot reads: in a write job the query builder's SQL
// generation and per-call `prepare` cost more than the writes themselves.

const PROPERTY_COLUMNS = Object.entries(getTableColumns(resources)).map(
  ([property, column]) => [property as keyof ResourceRow, column.name] as const,
);
const COLUMN_OF = new Map<keyof ResourceRow, string>(PROPERTY_COLUMNS);

/** A row property as SQLite stores it (JSON tags, 0/1 booleans). */
function toColumnValue(property: keyof ResourceRow, value: unknown): SQLQueryBindings {
  if (property === 'tags') return JSON.stringify(value);
  if (typeof value === 'boolean') return value ? 1 : 0;
  return value as SQLQueryBindings;
}

const INSERT_RESOURCE = `INSERT INTO resources (${PROPERTY_COLUMNS.map(([, column]) => `"${column}"`).join(', ')})
  VALUES (${PROPERTY_COLUMNS.map(() => '?').join(', ')})`;

function insertVersion(
  sqlite: Database,
  keyring: InstanceKeyring,
  resource: ResourcePlace,
  version: number,
  plaintext: string,
  createdBy: string,
  now: number,
): void {
  sqlite
    .query(
      `INSERT INTO resource_versions (id, resource_id, version, value, created_at, created_by)
       VALUES (?, ?, ?, ?, ?, ?)`,
    )
    .run(
      versionRowId(resource.id, version),
      resource.id,
      version,
      keyring.encrypt(plaintext, valueLocation(resource, version)),
      now,
      createdBy,
    );
}

/** @throws ConflictError (field `name`) when a live resource of the vault and type has it. */
function assertNameFree(
  sqlite: Database,
  vaultId: string,
  type: ResourceType,
  name: string,
  exceptId?: string,
): void {
  const clash = sqlite
    .query<{ id: string }, [string, string, string]>(
      `SELECT id FROM resources
       WHERE vault_id = ? AND type = ? AND name = ? AND deleted_at IS NULL`,
    )
    .get(vaultId, type, name);
  if (clash && clash.id !== exceptId) {
    throw new ConflictError(`A ${type} with this name already exists in the vault`, 'name');
  }
}

/** The live resource `id` as it is now (inside the job), or a 404. */
function currentLive(sqlite: Database, id: string): ResourceRecord {
  const row = findResource(sqlite, id);
  if (!row || row.deletedAt !== null) throw new NotFoundError('Resource');
  return row;
}

/** Writes `changes` (and `updated_at`) to a resource and returns the row as stored. */
function writeChanges(sqlite: Database, id: string, changes: Partial<ResourceRow>): ResourceRecord {
  // Every UPDATE of a resource comes through here: no cached record may outlive it.
  recordCacheOf(sqlite).clear();
  const properties = Object.keys(changes) as (keyof ResourceRow)[];
  sqlite
    .query(
      `UPDATE resources SET ${properties.map((property) => `"${COLUMN_OF.get(property)}" = ?`).join(', ')}
       WHERE id = ?`,
    )
    .run(...properties.map((property) => toColumnValue(property, changes[property])), id);
  return findResource(sqlite, id)!;
}

/** @throws ConflictError (field `If-Match`) when the resource moved past `expected`. */
function assertVersion(row: ResourceRow, expected: number | undefined): void {
  if (expected !== undefined && row.currentVersion !== expected) {
    throw new ConflictError(
      `The resource is at version ${row.currentVersion}, not ${expected}: read it again and retry`,
      'If-Match',
    );
  }
}

/** Inserts a resource and its version 1. @throws ConflictError when the name is taken. */
export function insertResource(
  db: Db,
  keyring: InstanceKeyring,
  resource: PreparedResource & {
    id: string;
    vaultId: string;
    projectId: string;
    createdBy: string;
  },
  now: number,
): ResourceRow {
  const sqlite = connectionOf(db);
  const { value, ...metadata } = resource;
  assertNameFree(sqlite, resource.vaultId, resource.type, resource.name);
  resourcesChanged(db);
  const row: ResourceRow = {
    ...metadata,
    currentVersion: 1,
    createdAt: now,
    updatedAt: now,
    deletedAt: null,
    deletedBy: null,
  };
  sqlite
    .query(INSERT_RESOURCE)
    .run(...PROPERTY_COLUMNS.map(([property]) => toColumnValue(property, row[property])));
  insertVersion(sqlite, keyring, resource, 1, value, resource.createdBy, now);
  return row;
}

/**
 * Applies a `PUT` to a live resource: metadata changes, and for a secret a new value, which
 * makes a new version only when it differs from the current one — unless `alwaysNewVersion`.
 * Nothing is written (and `updated_at` stays) when nothing changes.
 *
 * `alwaysNewVersion` is for callers who may not reveal the value: for them the outcome must not
 * depend on the current value (else writing a guess and watching `version` confirms it), so any
 * `value` makes a new version, exactly as a different one would. The current value is then not
 * even read, so neither can the time taken tell.
 * @throws NotFoundError when the resource is gone; ConflictError for a stale `If-Match`
 *   (`expectedVersion`) or a name that is taken.
 */
export function updateResource(
  db: Db,
  keyring: InstanceKeyring,
  id: string,
  changes: { metadata: MetadataChanges; value?: string },
  expectedVersion: number | undefined,
  actor: string,
  now: number,
  alwaysNewVersion = false,
): { row: ResourceRow; changed: boolean } {
  const sqlite = connectionOf(db);
  const current = currentLive(sqlite, id);
  assertVersion(current, expectedVersion);
  const set: Partial<ResourceRow> = {};
  const m = changes.metadata;
  if (m.name !== undefined && m.name !== current.name) set.name = m.name;
  if (m.description !== undefined && m.description !== current.description)
    set.description = m.description;
  if (m.tags !== undefined && JSON.stringify(m.tags) !== JSON.stringify(current.tags))
    set.tags = m.tags;
  if (m.enabled !== undefined && m.enabled !== current.enabled) set.enabled = m.enabled;
  if (m.activatesAt !== undefined && m.activatesAt !== current.activatesAt)
    set.activatesAt = m.activatesAt;
  if (m.expiresAt !== undefined && m.expiresAt !== current.expiresAt) set.expiresAt = m.expiresAt;
  if (m.contentType !== undefined && m.contentType !== current.contentType)
    set.contentType = m.contentType;
  if (
    changes.value !== undefined &&
    (alwaysNewVersion ||
      changes.value !== readValue(sqlite, keyring, current, current.currentVersion))
  ) {
    const version = current.currentVersion + 1;
    insertVersion(sqlite, keyring, current, version, changes.value, actor, now);
    set.currentVersion = version;
  }
  if (Object.keys(set).length === 0) return { row: current, changed: false };
  if (set.name !== undefined) assertNameFree(sqlite, current.vaultId, current.type, set.name, id);
  resourcesChanged(db);
  return { row: writeChanges(sqlite, id, { ...set, updatedAt: now }), changed: true };
}

/**
 * Makes a new version of a live secret with the value of version `version`.
 * @throws NotFoundError (resource or version gone), ConflictError (not a secret; stale
 *   `If-Match`).
 */
export function restoreVersion(
  db: Db,
  keyring: InstanceKeyring,
  id: string,
  version: number,
  expectedVersion: number | undefined,
  actor: string,
  now: number,
): ResourceRow {
  const sqlite = connectionOf(db);
  const current = currentLive(sqlite, id);
  if (current.type !== 'secret') {
    throw new ConflictError(
      `A ${current.type} is immutable: it has only its first version, nothing to restore`,
    );
  }
  assertVersion(current, expectedVersion);
  const value = readValue(sqlite, keyring, current, version);
  const next = current.currentVersion + 1;
  insertVersion(sqlite, keyring, current, next, value, actor, now);
  return writeChanges(sqlite, id, { currentVersion: next, updatedAt: now });
}

/** Soft-deletes a live resource; @throws NotFoundError when it is gone already. */
export function softDeleteResource(db: Db, id: string, actor: string, now: number): ResourceRow {
  const sqlite = connectionOf(db);
  currentLive(sqlite, id);
  resourcesChanged(db);
  return writeChanges(sqlite, id, { deletedAt: now, deletedBy: actor });
}

/**
 * Brings back a resource deleted at or after `deletedSince` (the retention window).
 * @throws NotFoundError when it is not deleted within the window; ConflictError (field `name`)
 *   when a live resource took its name meanwhile.
 */
export function undeleteResource(
  db: Db,
  id: string,
  deletedSince: number,
  now: number,
): ResourceRow {
  const sqlite = connectionOf(db);
  const row = findResource(sqlite, id);
  if (!row || row.deletedAt === null || row.deletedAt < deletedSince) {
    throw new NotFoundError('Resource');
  }
  assertNameFree(sqlite, row.vaultId, row.type, row.name);
  resourcesChanged(db);
  return writeChanges(sqlite, id, { deletedAt: null, deletedBy: null, updatedAt: now });
}

/**
 * Permanently deletes up to `limit` resources deleted before `deletedBefore`, with all their
 * versions (values included), and returns their ids.
 */
export function purgeDeletedResources(db: Db, deletedBefore: number, limit: number): string[] {
  const ids = db
    .select({ id: resources.id })
    .from(resources)
    .where(and(isNotNull(resources.deletedAt), sql`${resources.deletedAt} < ${deletedBefore}`))
    .limit(limit)
    .all()
    .map((row) => row.id);
  if (ids.length > 0) resourcesChanged(db);
  for (const id of ids) {
    db.delete(resourceVersions).where(eq(resourceVersions.resourceId, id)).run();
    db.delete(resources).where(eq(resources.id, id)).run();
  }
  return ids;
}
