/**
 * Which projects and vaults a key reaches (docs/api.md §1, §3, §5). The route table decides *what* a
 * key may do; these helpers decide *where*. Something outside a key's reach answers 404 as if it
 * did not exist, and the request is marked as a denial for the audit log.
 *
 * The rules, for a key with project limit P and vault grants V (empty = not limited):
 * - an `admin` key reaches everything (admin keys cannot be limited);
 * - a vault in V is reached, restricted or not (an explicit grant);
 * - otherwise a vault is reached when the key has scope over its project — its project is in
 *   P, or the key has neither P nor V — and it is not restricted, unless the key is a `manager`
 *   (restricted vaults are for admins, managers of the project and explicit grants);
 * - so a key with V but no P reaches exactly V, and one with both reaches P's vaults plus V.
 */
import { and, eq, inArray, or, sql, type SQL } from 'drizzle-orm';
import type { AnySQLiteColumn } from 'drizzle-orm/sqlite-core';
import { NotFoundError } from '../errors.ts';
import { requestMeta } from '../http/request-meta.ts';
import { principalOf, type KeyGrant } from './principal.ts';

/** What the visibility rules need to know about a vault. */
export type VaultRef = { id: string; projectId: string; restricted: boolean };

/**
 * True when the key has authority over the whole project (create vaults or webhooks in it,
 * manage its keys): admins, keys without limits, and keys limited to it. A vault grant inside a
 * project does not give scope over the project.
 */
export function hasProjectScope(key: KeyGrant, projectId: string): boolean {
  if (key.role === 'admin') return true;
  if (key.projectIds.length > 0) return key.projectIds.includes(projectId);
  return key.vaultIds.length === 0;
}

/** True when the key reaches the vault (see the module comment for the rules). */
export function canSeeVault(key: KeyGrant, vault: VaultRef): boolean {
  if (key.role === 'admin') return true;
  if (key.vaultIds.includes(vault.id)) return true;
  if (!hasProjectScope(key, vault.projectId)) return false;
  return !vault.restricted || key.role === 'manager';
}

/**
 * True when the key may see the project's metadata: it has scope over the project, or a vault
 * granted to it lies in it. `projectsOfGrantedVaults` is the project ids of `key.vaultIds`
 * (the vaults feature looks them up); omit it for keys without vault grants.
 */
export function canSeeProject(
  key: KeyGrant,
  projectId: string,
  projectsOfGrantedVaults: readonly string[] = [],
): boolean {
  return hasProjectScope(key, projectId) || projectsOfGrantedVaults.includes(projectId);
}

/**
 * Answers 404 for something that exists but lies outside the caller's reach, marking the
 * request as a denial for the audit log. Use it for every such case so that "hidden" and
 * "absent" look the same to the caller.
 */
export function hideAsNotFound(request: Request, what = 'Resource'): never {
  requestMeta(request).denied = true;
  throw new NotFoundError(what);
}

/** Throws a hidden 404 unless the caller of `request` may see the project. */
export function assertProjectVisible(
  request: Request,
  projectId: string,
  projectsOfGrantedVaults: readonly string[] = [],
): void {
  if (!canSeeProject(principalOf(request), projectId, projectsOfGrantedVaults)) {
    hideAsNotFound(request, 'Project');
  }
}

/** Throws a hidden 404 unless the caller of `request` has scope over the whole project. */
export function assertProjectScope(request: Request, projectId: string): void {
  if (!hasProjectScope(principalOf(request), projectId)) hideAsNotFound(request, 'Project');
}

/**
 * Throws a hidden 404 unless the caller of `request` reaches the vault. `what` names the object
 * the caller asked for: a resource in an unreachable vault must be "Resource not found", exactly
 * as a resource that does not exist, or the message would tell the two apart.
 */
export function assertVaultVisible(request: Request, vault: VaultRef, what = 'Vault'): void {
  if (!canSeeVault(principalOf(request), vault)) hideAsNotFound(request, what);
}

/** Columns of a vaults table, for {@link visibleVaultFilter}. */
export type VaultColumns = {
  id: AnySQLiteColumn;
  projectId: AnySQLiteColumn;
  restricted: AnySQLiteColumn;
};

const NOTHING: SQL = sql`0`;

/**
 * A WHERE condition selecting exactly the vaults the key reaches ({@link canSeeVault} in SQL),
 * for lists: `db.select().from(vaults).where(and(visibleVaultFilter(key, vaults), ...))`.
 * Undefined means "no filter" (admins); drizzle's `and()` skips it.
 */
export function visibleVaultFilter(key: KeyGrant, columns: VaultColumns): SQL | undefined {
  if (key.role === 'admin') return undefined;
  const parts: SQL[] = [];
  if (key.vaultIds.length > 0) parts.push(inArray(columns.id, [...key.vaultIds]));
  let projectPart: SQL | undefined | null = null;
  if (key.projectIds.length > 0) projectPart = inArray(columns.projectId, [...key.projectIds]);
  else if (key.vaultIds.length === 0) projectPart = undefined; // every project
  if (projectPart !== null) {
    const unrestricted = key.role === 'manager' ? undefined : eq(columns.restricted, false);
    parts.push(and(projectPart, unrestricted) ?? sql`1`);
  }
  if (parts.length === 0) return NOTHING;
  return parts.length === 1 ? parts[0] : or(...parts);
}

/**
 * A WHERE condition selecting the projects whose metadata the key may see
 * ({@link canSeeProject} in SQL). Undefined means "no filter".
 */
export function visibleProjectFilter(
  key: KeyGrant,
  projectIdColumn: AnySQLiteColumn,
  projectsOfGrantedVaults: readonly string[] = [],
): SQL | undefined {
  if (key.role === 'admin') return undefined;
  if (key.projectIds.length === 0 && key.vaultIds.length === 0) return undefined;
  const ids = [...new Set([...key.projectIds, ...projectsOfGrantedVaults])];
  return ids.length === 0 ? NOTHING : inArray(projectIdColumn, ids);
}

/**
 * A WHERE condition selecting the projects over which the key has full scope
 * ({@link hasProjectScope} in SQL), e.g. for webhooks, which belong to a project.
 */
export function projectScopeFilter(
  key: KeyGrant,
  projectIdColumn: AnySQLiteColumn,
): SQL | undefined {
  if (key.role === 'admin') return undefined;
  if (key.projectIds.length > 0) return inArray(projectIdColumn, [...key.projectIds]);
  return key.vaultIds.length === 0 ? undefined : NOTHING;
}
