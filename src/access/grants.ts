/**
 * No escalation: a key can only hand out (create, widen) what it holds itself, and only sees and
 * manages keys that lie within its own reach. Used by the API-key routes; the CLI acts as the
 * local operator and is not limited.
 */
import { AppError } from '../errors.ts';
import { toRfc3339 } from '../db/columns.ts';
import { effectivePermissions, type Permission, type Role } from './permissions.ts';
import { principalOf, type KeyGrant } from './principal.ts';
import { canSeeVault, hideAsNotFound, type VaultRef } from './visibility.ts';

/**
 * Looks a vault up (project, restricted flag) so that a key may pass on a vault it can see
 * without holding it explicitly; undefined when there is no such vault.
 */
export type VaultResolver = (vaultId: string) => VaultRef | undefined;

/** Why a requested grant exceeds the grantor's: the offending API field and a safe reason. */
export type GrantProblem = {
  field: 'role' | 'scopes' | 'project_ids' | 'vault_ids' | 'expires_at';
  reason: string;
};

const isSubset = (inner: readonly string[], outer: readonly string[]) =>
  inner.every((item) => outer.includes(item));

/**
 * Whether everything `key` reaches is reached by `holder` too (projects and vaults only):
 * undefined when it is, else the problem. Admin keys reach everything and cannot be limited.
 * Without `resolveVault`, vault grants can only be passed on, never named anew.
 */
export function reachProblem(
  holder: KeyGrant,
  key: KeyGrant,
  resolveVault?: VaultResolver,
): GrantProblem | undefined {
  if (holder.role === 'admin') return undefined;
  if (key.role === 'admin') return { field: 'role', reason: 'Only an admin key can grant admin' };
  const unlimited = holder.projectIds.length === 0 && holder.vaultIds.length === 0;
  if (!unlimited && holder.projectIds.length > 0) {
    if (key.projectIds.length === 0 && key.vaultIds.length === 0) {
      return { field: 'project_ids', reason: "Must be limited to this key's projects" };
    }
    if (!isSubset(key.projectIds, holder.projectIds)) {
      return { field: 'project_ids', reason: "Must be within this key's projects" };
    }
  } else if (!unlimited) {
    // The holder reaches only its granted vaults, so the key must too.
    if (key.projectIds.length > 0) {
      return { field: 'project_ids', reason: 'This key is limited to vaults, not projects' };
    }
    if (key.vaultIds.length === 0) {
      return { field: 'vault_ids', reason: "Must be limited to this key's vaults" };
    }
  }
  // A vault grant reaches the vault even when it is restricted, so the holder must reach each
  // granted vault itself: one it holds, one it can see (when vaults can be looked up), or any
  // at all for an unlimited manager.
  const reachesEveryVault = unlimited && holder.role === 'manager';
  if (reachesEveryVault) return undefined;
  for (const vaultId of key.vaultIds) {
    if (holder.vaultIds.includes(vaultId)) continue;
    const vault = resolveVault?.(vaultId);
    if (vault && canSeeVault(holder, vault)) continue;
    return { field: 'vault_ids', reason: "Must be within this key's vaults" };
  }
  return undefined;
}

/**
 * Whether `grantor` may create (or turn an existing key into) `requested`: its permissions
 * (role narrowed by scopes), reach (projects, vaults) and expiry must all lie within the
 * grantor's, and only an admin can grant admin. Undefined when it may.
 */
export function grantProblem(
  grantor: KeyGrant,
  requested: KeyGrant,
  resolveVault?: VaultResolver,
): GrantProblem | undefined {
  return (
    permissionsProblem(grantor, requested.role, requested.scopes) ??
    reachProblem(grantor, requested, resolveVault) ??
    expiryProblem(grantor, requested.expiresAt)
  );
}

/**
 * Whether a key of `role` narrowed by `scopes` could do anything `grantor` cannot: only an admin
 * grants admin, only an admin or manager grants manager, and the permissions must be a subset.
 * Undefined when it could not.
 */
export function permissionsProblem(
  grantor: KeyGrant,
  role: Role,
  scopes: readonly Permission[] | null,
): GrantProblem | undefined {
  if (role === 'admin' && grantor.role !== 'admin') {
    return { field: 'role', reason: 'Only an admin key can grant admin' };
  }
  // A manager reaches its projects' restricted vaults, which no lesser role does.
  if (role === 'manager' && grantor.role !== 'admin' && grantor.role !== 'manager') {
    return { field: 'role', reason: 'Only an admin or manager key can grant manager' };
  }
  const held = effectivePermissions(grantor.role, grantor.scopes);
  const missing = [...effectivePermissions(role, scopes)].filter((p) => !held.has(p));
  if (missing.length === 0) return undefined;
  return {
    field: scopes === null ? 'role' : 'scopes',
    reason: `This key cannot grant ${missing.join(', ')}`,
  };
}

/** Whether a key expiring at `expiresAt` would outlive `grantor` (which cannot drop its expiry). */
export function expiryProblem(
  grantor: KeyGrant,
  expiresAt: number | null,
): GrantProblem | undefined {
  if (grantor.expiresAt === null) return undefined;
  if (expiresAt !== null && expiresAt <= grantor.expiresAt) return undefined;
  return {
    field: 'expires_at',
    reason: `Must be set and no later than this key's own expiry (${toRfc3339(grantor.expiresAt)})`,
  };
}

/**
 * Whether `viewer` may see and manage `key`: admins see every key; anyone else only non-admin
 * keys that lie within its own projects and vaults.
 */
export function canManageKey(
  viewer: KeyGrant,
  key: KeyGrant,
  resolveVault?: VaultResolver,
): boolean {
  if (viewer.role === 'admin') return true;
  if (key.role === 'admin') return false;
  return reachProblem(viewer, key, resolveVault) === undefined;
}

/** The 403 for a grant beyond the caller's own, naming the field. */
export class GrantExceededError extends AppError {
  constructor(problem: GrantProblem) {
    super('FORBIDDEN', 'Forbidden', { field: problem.field, reason: problem.reason });
  }
}

/** Throws 403 unless the caller of `request` may grant `requested` (see {@link grantProblem}). */
export function assertCanGrant(
  request: Request,
  requested: KeyGrant,
  resolveVault?: VaultResolver,
): void {
  const problem = grantProblem(principalOf(request), requested, resolveVault);
  if (problem) throw new GrantExceededError(problem);
}

/** Throws a hidden 404 unless the caller of `request` may see and manage `key`. */
export function assertKeyManageable(
  request: Request,
  key: KeyGrant,
  resolveVault?: VaultResolver,
): void {
  if (!canManageKey(principalOf(request), key, resolveVault)) hideAsNotFound(request, 'API key');
}

/** Throws the 403 of a grant problem, if there is one (for partial checks such as updates). */
export function refuseGrantProblem(problem: GrantProblem | undefined): void {
  if (problem) throw new GrantExceededError(problem);
}

/**
 * Throws 403 unless `editor` may change `current` by `changes` (a name-only change and an empty
 * one included). Least privilege, as for creation: an editor may only modify a key it could have
 * created, and only into a key it could create. So a key narrowed by scopes, or one that
 * expires, cannot touch a key stronger or longer-lived than itself, not even to rename it or
 * narrow it; revoking it (which only takes access away) needs reach alone.
 */
export function assertCanEdit(
  editor: KeyGrant,
  current: KeyGrant,
  changes: Partial<Pick<KeyGrant, 'scopes' | 'expiresAt'>>,
  resolveVault?: VaultResolver,
): void {
  const asItIs = grantProblem(editor, current, resolveVault);
  if (asItIs) {
    throw new GrantExceededError({
      field: asItIs.field,
      reason: `This key cannot change a key it could not create: ${asItIs.reason}`,
    });
  }
  const updated: KeyGrant = {
    ...current,
    scopes: changes.scopes === undefined ? current.scopes : changes.scopes,
    expiresAt: changes.expiresAt === undefined ? current.expiresAt : changes.expiresAt,
  };
  refuseGrantProblem(grantProblem(editor, updated, resolveVault));
}
