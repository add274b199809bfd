/** The principal: what a key (stored, being created, or calling) may reach and do. */
import { UnauthorizedError } from '../errors.ts';
import type { KeyGrant, Permission } from '../roles.ts';
import { effectivePermissions } from './permissions.ts';

export type { KeyGrant };

/** Per-key rate-limit override (absent fields fall back to the configured defaults). */
export type KeyRateLimit = { requestsPerMinute: number | null; burst: number | null };

/** The authenticated caller of a request: an API key that passed every check. */
export type Principal = KeyGrant & {
  keyId: string;
  name: string;
  /** The role's permissions narrowed by the scopes: what the route table is checked against. */
  permissions: ReadonlySet<Permission>;
  rateLimit: KeyRateLimit;
};

/** Builds a principal from a key's stored fields. */
export function principalFor(
  key: KeyGrant & { keyId: string; name: string; rateLimit?: KeyRateLimit },
): Principal {
  return {
    keyId: key.keyId,
    name: key.name,
    role: key.role,
    projectIds: key.projectIds,
    vaultIds: key.vaultIds,
    scopes: key.scopes,
    expiresAt: key.expiresAt,
    permissions: effectivePermissions(key.role, key.scopes),
    rateLimit: key.rateLimit ?? { requestsPerMinute: null, burst: null },
  };
}

/**
 * The caller of each request. A WeakMap keyed by the Request, not Elysia's typed context: it is set
 * in `onRequest`, before any `derive`/`resolve` runs, and read by code that holds only the Request
 * (the change pipeline, audit entries). Not for speed: ~30 ns a request either way against ~2.5–4
 * µs a request; the measurement and the full reason are at `metas` in src/http/request-meta.ts.
 */
const principals = new WeakMap<Request, Principal>();

/** Records the authenticated caller of a request (the access plugin does, before routing). */
export function setPrincipal(request: Request, principal: Principal): void {
  principals.set(request, principal);
}

/** The authenticated caller of a request, or undefined when it has none. */
export function findPrincipal(request: Request): Principal | undefined {
  return principals.get(request);
}

/**
 * The authenticated caller of a request, for handlers behind the access plugin (every `/v1`
 * route but health). Throws 401 if there is none, which only happens when a route was mounted
 * outside the plugin: failing closed beats serving anonymously.
 */
export function principalOf(request: Request): Principal {
  const principal = principals.get(request);
  if (!principal) throw new UnauthorizedError();
  return principal;
}
