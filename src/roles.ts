/**
 * The vocabulary of what a key may do: the permission and role names, and a key's grant. Kept in
 * the base layer because the key table stores them (src/db/schema/keys.ts), the outbox filters
 * webhook deliveries by a grant (src/ledger/emit.ts) and the access layer maps roles to
 * permissions (src/access/permissions.ts, the one permission table).
 */

/** Every permission, as `<collection>:<verb>`. Scopes are lists of these. */
export const PERMISSIONS = [
  'projects:read',
  'projects:write',
  'vaults:read',
  'vaults:write',
  'resources:read',
  'resources:write',
  'resources:delete',
  'resources:reveal',
  'api_keys:read',
  'api_keys:write',
  'webhooks:read',
  'webhooks:write',
  'events:read',
  'audit:read',
  'metrics:read',
  'system:admin',
] as const;

export type Permission = (typeof PERMISSIONS)[number];

/** The roles of docs/api.md §5, most powerful first. */
export const ROLES = ['admin', 'manager', 'contributor', 'reader', 'access'] as const;

export type Role = (typeof ROLES)[number];

/**
 * What a key may reach and do: the same shape for a stored key, a key being created, and the
 * caller of a request. Empty `projectIds` / `vaultIds` mean "not limited on that axis".
 */
export type KeyGrant = {
  role: Role;
  projectIds: readonly string[];
  vaultIds: readonly string[];
  /** Narrows the role's permissions; `null` keeps the role's full set. */
  scopes: readonly Permission[] | null;
  /** Epoch ms after which the key is refused; `null` never expires. */
  expiresAt: number | null;
};
