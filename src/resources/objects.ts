/**
 * Rows to API objects (snake_case, RFC 3339 times). Values are added by the caller, and only
 * where docs/api.md §4 allows them.
 */
import { toRfc3339 } from '../db/columns.ts';
import type { KeyAlgorithm } from './material.ts';
import type { ResourceObject, VersionObject } from './schemas.ts';
import type { VaultSecretObject } from '../vaults/schemas.ts';
import type { ActiveSecret } from './store.ts';
import type { ResourceRow, ResourceVersionRow } from '../db/schema/resources.ts';

/** The API object of a resource: common fields plus those of its type; `value` when given. */
export function toResourceObject(row: ResourceRow, value?: string): ResourceObject {
  const object: ResourceObject = {
    id: row.id,
    type: row.type,
    vault_id: row.vaultId,
    project_id: row.projectId,
    name: row.name,
    description: row.description,
    tags: row.tags,
    enabled: row.enabled,
    activates_at: toRfc3339(row.activatesAt),
    expires_at: toRfc3339(row.expiresAt),
    created_at: toRfc3339(row.createdAt),
    updated_at: toRfc3339(row.updatedAt),
    created_by: row.createdBy,
  };
  switch (row.type) {
    case 'secret':
      object.content_type = row.contentType ?? 'text/plain';
      object.version = row.currentVersion;
      break;
    case 'key':
      object.algorithm = row.algorithm as KeyAlgorithm;
      object.public_key = row.publicKey;
      break;
    case 'certificate':
      object.subject = row.subject ?? '';
      object.issuer = row.issuer ?? '';
      object.serial_number = row.serialNumber ?? '';
      object.not_before = toRfc3339(row.notBefore ?? 0);
      object.not_after = toRfc3339(row.notAfter ?? 0);
      object.fingerprint_sha256 = row.fingerprintSha256 ?? '';
      object.has_private_key = row.hasPrivateKey ?? false;
      break;
  }
  if (row.deletedAt !== null) object.deleted_at = toRfc3339(row.deletedAt);
  if (value !== undefined) object.value = value;
  return object;
}

/** The API object of a version; `value` when given. */
export function toVersionObject(
  row: Pick<ResourceVersionRow, 'resourceId' | 'version' | 'createdAt' | 'createdBy'>,
  value?: string,
): VersionObject {
  const object: VersionObject = {
    resource_id: row.resourceId,
    version: row.version,
    created_at: toRfc3339(row.createdAt),
    created_by: row.createdBy,
  };
  if (value !== undefined) object.value = value;
  return object;
}

/** One entry of a vault read's `secrets` array; `value` when given. */
export function toVaultSecret(
  secret: Pick<ActiveSecret, 'id' | 'name' | 'contentType' | 'tags' | 'updatedAt'>,
  value?: string,
): VaultSecretObject {
  const object: VaultSecretObject = { id: secret.id, name: secret.name };
  if (value !== undefined) object.value = value;
  object.content_type = secret.contentType ?? 'text/plain';
  object.tags = secret.tags;
  object.updated_at = toRfc3339(secret.updatedAt);
  return object;
}
