/**
 * Vaults in the database. Write functions are synchronous and run inside the caller's write
 * job; authorization is the caller's, through `src/access/visibility.ts`.
 */
import { and, count, desc, eq, isNotNull, isNull, ne, sql, type SQL } from 'drizzle-orm';
import type { VaultRef } from '../access/visibility.ts';
import type { Db } from '../db/client.ts';
import { toRfc3339 } from '../db/columns.ts';
import { ConflictError } from '../errors.ts';
import type { PageRequest } from '../http/pagination.ts';
import { resources } from '../db/schema/resources.ts';
import type { VaultObject } from './schemas.ts';
import { vaults, type VaultRow } from '../db/schema/vaults.ts';
import { newTypeId } from '../ids.ts';

/**
 * Told, inside the write job, when who reaches a vault's resources changes (its `restricted`
 * flag) or its resources go with it: the resource store forgets its cached list totals and
 * records (src/resources/store/lists.ts subscribes). Vaults come before resources in the
 * feature order, so the store subscribes here instead of being called; a process that never
 * loads the store has no such cache to forget.
 */
const contentsListeners = new Set<(db: Db) => void>();

/** Subscribes to {@link contentsListeners}; listeners run inside the write job. */
export function onVaultContentsChanged(listener: (db: Db) => void): void {
  contentsListeners.add(listener);
}

function vaultContentsChanged(db: Db): void {
  for (const listener of contentsListeners) listener(db);
}

/** A new vault id, `vlt_` + a time-ordered TypeID. */
export function newVaultId(): string {
  return newTypeId('vlt');
}

function prepareFindVault(db: Db) {
  return db
    .select()
    .from(vaults)
    .where(eq(vaults.id, sql.placeholder('id')))
    .prepare();
}

const findVaultByDb = new WeakMap<Db, ReturnType<typeof prepareFindVault>>();

/** One vault by id (a prepared point read: every vault read API request starts here). */
export function findVault(db: Db, id: string): VaultRow | undefined {
  let statement = findVaultByDb.get(db);
  if (!statement) {
    statement = prepareFindVault(db);
    findVaultByDb.set(db, statement);
  }
  return statement.get({ id });
}

/** What the visibility rules need of a vault. */
export function vaultRefOf(row: Pick<VaultRow, 'id' | 'projectId' | 'restricted'>): VaultRef {
  return { id: row.id, projectId: row.projectId, restricted: row.restricted };
}

/**
 * A page of vaults, newest first (ties by id), restricted by `visible` (from
 * `visibleVaultFilter`; undefined = all) and optionally to one project, and the total count.
 */
export function listVaults(
  db: Db,
  visible: SQL | undefined,
  projectId: string | undefined,
  page: PageRequest,
): { rows: VaultRow[]; total: number } {
  const where = and(visible, projectId === undefined ? undefined : eq(vaults.projectId, projectId));
  const total = db.select({ n: count() }).from(vaults).where(where).get()?.n ?? 0;
  const rows = db
    .select()
    .from(vaults)
    .where(where)
    .orderBy(desc(vaults.createdAt), desc(vaults.id))
    .limit(page.limit)
    .offset(page.offset)
    .all();
  return { rows, total };
}

/** @throws ConflictError (field `name`) when another vault of the project has the name. */
function assertNameFree(db: Db, projectId: string, name: string, exceptId?: string): void {
  const clash = db
    .select({ id: vaults.id })
    .from(vaults)
    .where(
      and(
        eq(vaults.projectId, projectId),
        eq(vaults.name, name),
        exceptId ? ne(vaults.id, exceptId) : undefined,
      ),
    )
    .get();
  if (clash)
    throw new ConflictError('A vault with this name already exists in the project', 'name');
}

/** What a new vault is made of. */
export type NewVault = {
  id: string;
  projectId: string;
  name: string;
  description: string | null;
  restricted: boolean;
  createdBy: string;
};

/** Inserts a vault (its project must exist). @throws ConflictError when the name is taken. */
export function insertVault(db: Db, vault: NewVault, now: number): VaultRow {
  assertNameFree(db, vault.projectId, vault.name);
  return db
    .insert(vaults)
    .values({ ...vault, createdAt: now, updatedAt: now })
    .returning()
    .get();
}

/** What `PUT /v1/vaults/:id` may change. */
export type VaultChanges = { name?: string; description?: string | null; restricted?: boolean };

/**
 * Applies changes and returns the vault (undefined when it no longer exists), leaving it
 * untouched when nothing actually changes.
 * @throws ConflictError when the new name is taken in the project.
 */
export function updateVault(
  db: Db,
  id: string,
  changes: VaultChanges,
  now: number,
): { row: VaultRow; changed: boolean } | undefined {
  const current = findVault(db, id);
  if (!current) return undefined;
  const effective: VaultChanges = {};
  if (changes.name !== undefined && changes.name !== current.name) effective.name = changes.name;
  if (changes.description !== undefined && changes.description !== current.description)
    effective.description = changes.description;
  if (changes.restricted !== undefined && changes.restricted !== current.restricted)
    effective.restricted = changes.restricted;
  if (Object.keys(effective).length === 0) return { row: current, changed: false };
  if (effective.name !== undefined) assertNameFree(db, current.projectId, effective.name, id);
  // Who reaches the vault's resources may change: cached list totals are stale.
  if (effective.restricted !== undefined) vaultContentsChanged(db);
  const row = db
    .update(vaults)
    .set({ ...effective, updatedAt: now })
    .where(eq(vaults.id, id))
    .returning()
    .get();
  return { row, changed: true };
}

/**
 * Deletes a vault that holds no live resources, purging its soft-deleted ones (and their
 * versions) with it: they could not be restored into a vault that no longer exists. Returns
 * false when the vault no longer exists.
 * @throws ConflictError when it still holds resources that are not deleted.
 */
export function deleteVault(db: Db, id: string): boolean {
  const live =
    db
      .select({ n: count() })
      .from(resources)
      .where(and(eq(resources.vaultId, id), isNull(resources.deletedAt)))
      .get()?.n ?? 0;
  if (live > 0) {
    throw new ConflictError(
      `The vault still holds ${live} resource${live === 1 ? '' : 's'}; delete them first`,
    );
  }
  vaultContentsChanged(db);
  db.delete(resources)
    .where(and(eq(resources.vaultId, id), isNotNull(resources.deletedAt)))
    .run();
  return (
    db.delete(vaults).where(eq(vaults.id, id)).returning({ id: vaults.id }).get() !== undefined
  );
}

/** The API object of a vault. */
export function toVaultObject(row: VaultRow): VaultObject {
  return {
    id: row.id,
    project_id: row.projectId,
    name: row.name,
    description: row.description,
    restricted: row.restricted,
    created_at: toRfc3339(row.createdAt),
    updated_at: toRfc3339(row.updatedAt),
  };
}
