/**
 * The TypeBox schemas of `/v1/vaults` (docs/api.md §3 and the vault read API of §4): validation,
 * OpenAPI document and types.
 */
import { t } from 'elysia';
import { paginationQuery } from '../http/pagination.ts';
import { ResourceName } from '../http/names.ts';
import { Description, IdParam, ProjectId, strictObject } from '../http/fields.ts';

const vaultFields = {
  id: t.String({ examples: ['vlt_01jq3v6x1nf4r8s2k9w7y5t3m0'] }),
  project_id: t.String(),
  name: t.String(),
  description: t.Nullable(t.String()),
  restricted: t.Boolean({
    description: 'Reachable only by admins, managers of its project and keys granted it',
  }),
  created_at: t.String(),
  updated_at: t.String(),
};

/**
 * One secret of a vault read (`GET /v1/vaults/:id`, the vault read API): `{id, name}` only with
 * `?secrets=names`.
 */
export const VaultSecretSchema = t.Object({
  id: t.String(),
  name: t.String(),
  value: t.Optional(t.String({ description: 'Only for keys with resources:reveal' })),
  content_type: t.Optional(t.String()),
  tags: t.Optional(t.Array(t.String())),
  updated_at: t.Optional(t.String()),
});

export type VaultSecretObject = typeof VaultSecretSchema.static;

/** A vault as the API shows it. */
export const VaultSchema = t.Object(vaultFields, { description: 'A vault: a set of resources' });

/**
 * `GET /v1/vaults/:id`: the vault plus its active, enabled secrets (for keys that may read
 * resources; values only for keys that may reveal them).
 */
export const VaultWithSecretsSchema = t.Object(
  { ...vaultFields, secrets: t.Optional(t.Array(VaultSecretSchema)) },
  { description: 'A vault with its active, enabled secrets' },
);

export const CreateVaultBody = strictObject({
  project_id: ProjectId,
  name: ResourceName,
  description: t.Optional(t.Nullable(Description)),
  restricted: t.Optional(t.Boolean({ error: 'Must be true or false' })),
});

export const UpdateVaultBody = strictObject({
  name: t.Optional(ResourceName),
  description: t.Optional(t.Nullable(Description)),
  restricted: t.Optional(t.Boolean({ error: 'Must be true or false' })),
});

export const VaultParams = t.Object({ id: IdParam });

export const VaultListQuery = strictObject({
  ...paginationQuery,
  project_id: t.Optional(ProjectId),
});

export type VaultObject = typeof VaultSchema.static;
export type VaultWithSecretsObject = typeof VaultWithSecretsSchema.static;
export type CreateVaultInput = typeof CreateVaultBody.static;
export type UpdateVaultInput = typeof UpdateVaultBody.static;
