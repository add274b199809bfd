/**
 * Resource writes: create, update, restore a version, soft delete and undelete. Synchronous, run
 * inside the caller's write job; they re-read what they depend on there, so checks such as
 * `If-Match` and name uniqueness cannot race.
 */
import type { Database, SQLQueryBindings, Statement } from 'bun:sqlite';
import { getTableColumns } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { ConflictError, NotFoundError } from '../../errors.ts';
import type { InstanceKeyring } from '../../keyring/live-keyring.ts';
import type { MetadataChanges, PreparedResource } from '../input.ts';
import {
  resources,
  versionRowId,
  type ResourceRow,
  type ResourceType,
} from '../../db/schema/resources.ts';
import { perConnection } from '../../db/per-connection.ts';
import {
  connectionOf,
  resourceRowsChanged,
  resourceValueChanged,
  resourcesChanged,
} from './lists.ts';
import {
  findResource,
  openCurrentValue,
  readValue,
  valueLocation,
  type ResourcePlace,
  type ResourceRecord,
} from './records.ts';

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

type WriteStatements = {
  insertVersion: Statement<unknown, [string, string, number, Uint8Array, number, string]>;
  nameClash: Statement<{ id: string }, [string, string, string]>;
  newVersion: Statement<unknown, [number, number, string]>;
  vaultExists: Statement<{ found: number }, [string]>;
  insertResource: Statement<unknown, SQLQueryBindings[]>;
};

/** Prepared once per connection: an update runs them inside every write job. */
const statementsFor = perConnection(
  (sqlite): WriteStatements => ({
    insertVersion: sqlite.prepare(
      `INSERT INTO resource_versions (id, resource_id, version, value, created_at, created_by)
       VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    nameClash: sqlite.prepare(
      `SELECT id FROM resources
       WHERE vault_id = ? AND type = ? AND name = ? AND deleted_at IS NULL`,
    ),
    vaultExists: sqlite.prepare('SELECT 1 AS found FROM vaults WHERE id = ?'),
    newVersion: sqlite.prepare(
      'UPDATE resources SET current_version = ?, updated_at = ? WHERE id = ?',
    ),
    insertResource: sqlite.prepare(INSERT_RESOURCE),
  }),
);

function insertVersion(
  sqlite: Database,
  keyring: InstanceKeyring,
  resource: ResourcePlace,
  version: number,
  plaintext: string,
  createdBy: string,
  now: number,
): void {
  statementsFor(sqlite).insertVersion.run(
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
  const clash = statementsFor(sqlite).nameClash.get(vaultId, type, name);
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

/**
 * Writes `changes` to resource `current` and returns the row as now stored: `current` with the
 * changes applied, not read back (the UPDATE stores exactly these values).
 */
function writeChanges(
  sqlite: Database,
  current: ResourceRow,
  changes: Partial<ResourceRow>,
): ResourceRow {
  // Every UPDATE of a resource comes through here: no cached record or serialised list object
  // may outlive it.
  resourceRowsChanged(sqlite);
  const properties = Object.keys(changes) as (keyof ResourceRow)[];
  sqlite
    .query(
      `UPDATE resources SET ${properties.map((property) => `"${COLUMN_OF.get(property)}" = ?`).join(', ')}
       WHERE id = ?`,
    )
    .run(...properties.map((property) => toColumnValue(property, changes[property])), current.id);
  return withChanges(current, changes);
}

/**
 * Makes `version` (already inserted) the current one of `current`, and nothing else changes: a
 * new value or a restored one. No list filter or order reads `current_version` or `updated_at`,
 * so the list memos (totals, bookmarks) stay valid; this resource's cached records, its vault's
 * cached secrets and the serialised list objects (which show both fields) are forgotten
 * (clearing every cached record on each write made the reads after it miss).
 */
function moveToVersion(
  sqlite: Database,
  current: ResourceRecord,
  version: number,
  now: number,
): ResourceRow {
  resourceValueChanged(sqlite, current);
  statementsFor(sqlite).newVersion.run(version, now, current.id);
  return withChanges(current, { currentVersion: version, updatedAt: now });
}

/** The plain row of `record` (without the vault fields and sealed value reads add) changed by `changes`. */
function withChanges(record: ResourceRow, changes: Partial<ResourceRow>): ResourceRow {
  // A rest copy rather than `delete`, which would turn the row into a slow dictionary object.
  const {
    vaultRestricted: _restricted,
    sealedValue: _sealed,
    ...row
  } = record as ResourceRow & Partial<Pick<ResourceRecord, 'vaultRestricted' | 'sealedValue'>>;
  return { ...row, ...changes };
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

/**
 * Inserts a resource and its version 1.
 * @throws NotFoundError when its vault is gone (deleted since the caller looked it up);
 *   ConflictError when the name is taken.
 */
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
  const statements = statementsFor(sqlite);
  if (!statements.vaultExists.get(resource.vaultId)) throw new NotFoundError('Vault');
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
  statements.insertResource.run(
    ...PROPERTY_COLUMNS.map(([property]) => toColumnValue(property, row[property])),
  );
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
 * `resource` is its id, or its live record as read inside this same write job (the caller has
 * just checked it, e.g. for visibility): then it is not read a second time.
 * @throws NotFoundError when the resource is gone; ConflictError for a stale `If-Match`
 *   (`expectedVersion`) or a name that is taken.
 */
export function updateResource(
  db: Db,
  keyring: InstanceKeyring,
  resource: string | ResourceRecord,
  changes: { metadata: MetadataChanges; value?: string },
  expectedVersion: number | undefined,
  actor: string,
  now: number,
  alwaysNewVersion = false,
): { row: ResourceRow; changed: boolean } {
  const sqlite = connectionOf(db);
  const current = typeof resource === 'string' ? currentLive(sqlite, resource) : resource;
  const id = current.id;
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
  const metadataChanged = Object.keys(set).length > 0;
  if (
    changes.value !== undefined &&
    (alwaysNewVersion || changes.value !== openCurrentValue(keyring, current))
  ) {
    const version = current.currentVersion + 1;
    insertVersion(sqlite, keyring, current, version, changes.value, actor, now);
    set.currentVersion = version;
  }
  if (set.currentVersion === undefined && !metadataChanged) {
    return { row: withChanges(current, {}), changed: false };
  }
  if (!metadataChanged) {
    return { row: moveToVersion(sqlite, current, set.currentVersion!, now), changed: true };
  }
  if (set.name !== undefined) assertNameFree(sqlite, current.vaultId, current.type, set.name, id);
  resourcesChanged(db);
  return { row: writeChanges(sqlite, current, { ...set, updatedAt: now }), changed: true };
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
  return moveToVersion(sqlite, current, next, now);
}

/** Soft-deletes a live resource; @throws NotFoundError when it is gone already. */
export function softDeleteResource(db: Db, id: string, actor: string, now: number): ResourceRow {
  const sqlite = connectionOf(db);
  const current = currentLive(sqlite, id);
  resourcesChanged(db);
  return writeChanges(sqlite, current, { deletedAt: now, deletedBy: actor });
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
  return writeChanges(sqlite, row, { deletedAt: null, deletedBy: null, updatedAt: now });
}
