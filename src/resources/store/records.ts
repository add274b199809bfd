/**
 * Resources by id and by name, and their values: the hot reads. Prepared once per connection,
 * they return the vault's visibility fields with the row, so a read is one point query plus,
 * only when a value is returned, one point read and one decryption; single records are cached
 * per connection (see ../record-cache.ts) until a write clears them.
 */
import type { Database, Statement } from 'bun:sqlite';
import { getTableColumns } from 'drizzle-orm';
import { NotFoundError } from '../../errors.ts';
import type { InstanceKeyring } from '../../keyring/live-keyring.ts';
import {
  resources,
  resourceValueColumn,
  versionRowId,
  type ResourceRow,
} from '../../db/schema/resources.ts';
import { newTypeId } from '../../ids.ts';
import { RecordCache } from '../record-cache.ts';
import { perConnection } from '../../db/per-connection.ts';

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
/** Store-internal (./lists.ts). */
export const RESOURCE_COLUMNS = Object.entries(getTableColumns(resources))
  .map(([property, column]) => `r."${column.name}" AS "${property}"`)
  .join(', ');

export type RawResource = Omit<ResourceRow, 'tags' | 'enabled' | 'hasPrivateKey'> & {
  tags: string;
  enabled: number;
  hasPrivateKey: number | null;
};
type RawRecord = RawResource & { vaultRestricted: number; sealedValue: Uint8Array | null };

/**
 * One live, enabled secret of a vault, as the vault read API lists it: frozen, and the same
 * object from one read to the next until a write changes the vault's resources (callers may key
 * caches of its serialised metadata on it).
 */
export type ActiveSecret = {
  id: string;
  name: string;
  contentType: string | null;
  tags: string[];
  updatedAt: number;
  version: number;
  activatesAt: number | null;
  expiresAt: number | null;
  /** Sealed value of the current version (`null`: that version has no value row). */
  sealed: Uint8Array | null;
};

type RawActiveSecret = Omit<ActiveSecret, 'tags'> & { tags: string };

type Reads = {
  byId: Statement<RawRecord, [string]>;
  secretByName: Statement<RawRecord, [string, string]>;
  sealedValue: Statement<{ value: Uint8Array }, [string]>;
  liveSecrets: Statement<RawActiveSecret, [string]>;
};

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
  return {
    byId: sqlite.prepare(`${record} WHERE r.id = ?`),
    secretByName: sqlite.prepare(`${record} ${byName}`),
    sealedValue: sqlite.prepare('SELECT value FROM resource_versions WHERE id = ?'),
    // Every live, enabled secret of the vault; the time window is applied per read, so that
    // the rows can be cached (see listActiveSecrets).
    liveSecrets: sqlite.prepare(
      `SELECT r.id AS id, r.name AS name, r.content_type AS contentType, r.tags AS tags,
         r.updated_at AS updatedAt, r.current_version AS version,
         r.activates_at AS activatesAt, r.expires_at AS expiresAt,
         (SELECT value FROM resource_versions rv WHERE rv.id = r.id || ':' || r.current_version)
           AS sealed
       FROM resources r
       WHERE r.vault_id = ? AND r.type = 'secret' AND r.deleted_at IS NULL AND r.enabled = 1
       ORDER BY r.name`,
    ),
  };
});

export function rowFromRaw(raw: RawResource): ResourceRow {
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

/** Vaults whose live secrets are cached for vault reads, and the bytes they may hold. */
const MAX_CACHED_VAULTS = 1024;
const MAX_CACHED_VAULT_BYTES = 16 * 1024 * 1024;
/** What a cached secret costs besides its sealed value (a generous estimate). */
const SECRET_OVERHEAD_BYTES = 512;

/**
 * The record cache of a connection, which also holds the live secrets of recently read vaults
 * (sealed rows only: never a decrypted value). One `clear()`, which every resource write and
 * every change of a vault's contents makes inside its write job, forgets both.
 */
class ResourceCaches extends RecordCache<ResourceRecord> {
  readonly vaultSecrets = new RecordCache<readonly ActiveSecret[]>(
    MAX_CACHED_VAULTS,
    MAX_CACHED_VAULT_BYTES,
  );

  override clear(): void {
    super.clear();
    this.vaultSecrets.clear();
  }
}

/** Store-internal (./writes.ts, ./lists.ts). */
export const recordCacheOf = perConnection(
  (): ResourceCaches => new ResourceCaches(MAX_CACHED_RECORDS, MAX_CACHED_BYTES),
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
 * Forgets the cached records of one resource (by id and by name) and the cached secrets of its
 * vault. Store-internal: writes call it through ./lists.ts `resourceValueChanged`.
 */
export function forgetRecord(
  sqlite: Database,
  resource: Pick<ResourceRow, 'id' | 'vaultId' | 'name'>,
): void {
  const cache = recordCacheOf(sqlite);
  cache.delete(resource.id);
  cache.delete(`${resource.vaultId}/${resource.name}`);
  cache.vaultSecrets.delete(resource.vaultId);
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
 * The enabled, active, live secrets of a vault at `now`, by name, with their sealed values
 * (open them with {@link openValue}); frozen. A vault's live secrets are read once and cached
 * (sealed, see {@link ResourceCaches}) until a write clears the cache; reads inside a
 * transaction bypass it, as {@link cachedRead} does.
 */
export function listActiveSecrets(sqlite: Database, vaultId: string, now: number): ActiveSecret[] {
  const live = liveSecrets(sqlite, vaultId);
  const active: ActiveSecret[] = [];
  for (const secret of live) {
    if (secret.activatesAt !== null && now < secret.activatesAt) continue;
    if (secret.expiresAt !== null && now >= secret.expiresAt) continue;
    active.push(secret);
  }
  return active;
}

/** Every live, enabled secret of a vault, by name, through the vault secrets cache. */
function liveSecrets(sqlite: Database, vaultId: string): readonly ActiveSecret[] {
  const read = () => readsFor(sqlite).liveSecrets.all(vaultId).map(frozenSecret);
  if (sqlite.inTransaction) return read();
  const cache = recordCacheOf(sqlite).vaultSecrets;
  const cached = cache.get(vaultId);
  if (cached) return cached;
  const secrets = Object.freeze(read());
  let bytes = 0;
  for (const secret of secrets) bytes += SECRET_OVERHEAD_BYTES + (secret.sealed?.byteLength ?? 0);
  cache.set(vaultId, secrets, bytes);
  return secrets;
}

function frozenSecret(raw: RawActiveSecret): ActiveSecret {
  const tags = Object.freeze(JSON.parse(raw.tags) as string[]) as string[];
  return Object.freeze({ ...raw, tags });
}

/** Where a resource lives: what its values are bound to besides their row. */
export type ResourcePlace = Pick<ResourceRow, 'id' | 'vaultId' | 'projectId'>;

/** The AAD location of version `version` of `resource`'s value. */
export function valueLocation(resource: ResourcePlace, version: number) {
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
