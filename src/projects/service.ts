/**
 * Projects in the database. Write functions are synchronous and run inside the caller's write
 * job (with its audit entry and event); authorization (who may see or change which project) is
 * the caller's, through `src/access/visibility.ts`.
 */
import { and, count, desc, eq, inArray, ne, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { toRfc3339 } from '../db/columns.ts';
import { ConflictError } from '../errors.ts';
import type { PageRequest } from '../http/pagination.ts';
import { vaults } from '../db/schema/vaults.ts';
import type { ProjectObject } from './schemas.ts';
import { projects, type ProjectRow } from '../db/schema/projects.ts';
import { newTypeId } from '../ids.ts';

/** A new project id, `prj_` + a time-ordered TypeID. */
export function newProjectId(): string {
  return newTypeId('prj');
}

function prepareFindProject(db: Db) {
  return db
    .select()
    .from(projects)
    .where(eq(projects.id, sql.placeholder('id')))
    .prepare();
}

const findProjectByDb = new WeakMap<Db, ReturnType<typeof prepareFindProject>>();

/** One project by id (a prepared point read). */
export function findProject(db: Db, id: string): ProjectRow | undefined {
  let statement = findProjectByDb.get(db);
  if (!statement) {
    statement = prepareFindProject(db);
    findProjectByDb.set(db, statement);
  }
  return statement.get({ id });
}

/**
 * A page of projects, newest first (ties by id), restricted by `visible` (a condition from
 * `visibleProjectFilter`; undefined = all), and the total count.
 */
export function listProjects(
  db: Db,
  visible: SQL | undefined,
  page: PageRequest,
): { rows: ProjectRow[]; total: number } {
  const total = db.select({ n: count() }).from(projects).where(visible).get()?.n ?? 0;
  const rows = db
    .select()
    .from(projects)
    .where(visible)
    .orderBy(desc(projects.createdAt), desc(projects.id))
    .limit(page.limit)
    .offset(page.offset)
    .all();
  return { rows, total };
}

/** The projects that the given vaults belong to (for keys that hold vault grants). */
export function projectsOfVaults(db: Db, vaultIds: readonly string[]): string[] {
  if (vaultIds.length === 0) return [];
  return db
    .selectDistinct({ projectId: vaults.projectId })
    .from(vaults)
    .where(inArray(vaults.id, [...vaultIds]))
    .all()
    .map((row) => row.projectId);
}

/** @throws ConflictError (field `name`) when another project has the name. */
function assertNameFree(db: Db, name: string, exceptId?: string): void {
  const clash = db
    .select({ id: projects.id })
    .from(projects)
    .where(and(eq(projects.name, name), exceptId ? ne(projects.id, exceptId) : undefined))
    .get();
  if (clash) throw new ConflictError('A project with this name already exists', 'name');
}

/** What a new project is made of. */
export type NewProject = {
  id: string;
  name: string;
  description: string | null;
  createdBy: string;
};

/** Inserts a project. @throws ConflictError when the name is taken. */
export function insertProject(db: Db, project: NewProject, now: number): ProjectRow {
  assertNameFree(db, project.name);
  return db
    .insert(projects)
    .values({ ...project, createdAt: now, updatedAt: now })
    .returning()
    .get();
}

/** What `PUT /v1/projects/:id` may change. */
export type ProjectChanges = { name?: string; description?: string | null };

/**
 * Applies changes and returns the project, or undefined when it no longer exists. Leaves the
 * row (and `updated_at`) alone when nothing actually changes.
 * @throws ConflictError when the new name is taken.
 */
export function updateProject(
  db: Db,
  id: string,
  changes: ProjectChanges,
  now: number,
): { row: ProjectRow; changed: boolean } | undefined {
  const current = findProject(db, id);
  if (!current) return undefined;
  const effective: ProjectChanges = {};
  if (changes.name !== undefined && changes.name !== current.name) effective.name = changes.name;
  if (changes.description !== undefined && changes.description !== current.description)
    effective.description = changes.description;
  if (Object.keys(effective).length === 0) return { row: current, changed: false };
  if (effective.name !== undefined) assertNameFree(db, effective.name, id);
  const row = db
    .update(projects)
    .set({ ...effective, updatedAt: now })
    .where(eq(projects.id, id))
    .returning()
    .get();
  return { row, changed: true };
}

/**
 * Deletes a project that has no vaults; returns false when it no longer exists.
 * @throws ConflictError when it still has vaults.
 */
export function deleteProject(db: Db, id: string): boolean {
  const vaultCount =
    db.select({ n: count() }).from(vaults).where(eq(vaults.projectId, id)).get()?.n ?? 0;
  if (vaultCount > 0) {
    throw new ConflictError(
      `The project still has ${vaultCount} vault${vaultCount === 1 ? '' : 's'}; delete them first`,
    );
  }
  return (
    db.delete(projects).where(eq(projects.id, id)).returning({ id: projects.id }).get() !==
    undefined
  );
}

/** The API object of a project. */
export function toProjectObject(row: ProjectRow): ProjectObject {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    created_at: toRfc3339(row.createdAt),
    updated_at: toRfc3339(row.updatedAt),
  };
}
