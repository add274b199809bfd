/** Which vault a caller reaches: the lookups the vault routes and the vault read API share. */
import { assertProjectScope, assertVaultVisible } from '../access/visibility.ts';
import type { Db } from '../db/client.ts';
import { NotFoundError } from '../errors.ts';
import { findVault, vaultRefOf } from './service.ts';
import type { VaultRow } from '../db/schema/vaults.ts';

/** The vault if it exists and the caller reaches it; else a (hidden) 404. */
export function visibleVault(db: Db, request: Request, id: string): VaultRow {
  const row = findVault(db, id);
  if (!row) throw new NotFoundError('Vault');
  assertVaultVisible(request, vaultRefOf(row));
  return row;
}

/** The vault if the caller also has scope over its whole project (to change or delete it). */
export function ownedVault(db: Db, request: Request, id: string): VaultRow {
  const row = visibleVault(db, request, id);
  assertProjectScope(request, row.projectId);
  return row;
}
