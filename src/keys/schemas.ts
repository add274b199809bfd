/**
 * The TypeBox schemas of `/v1/api-keys`: the single source of truth for validation, the
 * OpenAPI document and the TypeScript types (`typeof X.static`).
 */
import { t } from 'elysia';
import { PERMISSIONS, ROLES } from '../access/permissions.ts';
import { ProjectId, Timestamp, VaultId, strictObject } from '../http/schemas.ts';

/**
 * One of the five roles (docs/api.md §5). `default: undefined` matters: `t.UnionEnum` otherwise
 * defaults to its first member, and Elysia would quietly turn a body without `role` into an
 * admin key request.
 */
export const RoleSchema = t.UnionEnum(ROLES, {
  default: undefined,
  error: `Must be one of: ${ROLES.join(', ')}`,
  description: 'Role of the key (docs/api.md §5)',
});

/** One permission, `<collection>:<verb>` (see `src/access/permissions.ts`). */
export const PermissionSchema = t.UnionEnum(PERMISSIONS, {
  default: undefined, // see RoleSchema
  error: `Must be one of: ${PERMISSIONS.join(', ')}`,
});

const NameSchema = t.String({
  minLength: 1,
  maxLength: 100,
  // No control characters (C0, DEL, C1: U+009B starts escape sequences in some terminals):
  // names end up in terminals and logs.
  pattern: '^[^\\u0000-\\u001f\\u007f-\\u009f]+$',
  error: 'Must be 1 to 100 characters without control characters',
});

const ScopesSchema = t.Array(PermissionSchema, {
  minItems: 1,
  uniqueItems: true,
  error: 'Must be a non-empty list of distinct permissions (omit or null: all of the role)',
  description: "Narrows the role's permissions; null means all of them",
});

/** An API key as the API shows it; never the token or its hash. */
export const ApiKeySchema = t.Object(
  {
    id: t.String({ examples: ['key_01jq3v6x1nf4r8s2k9w7y5t3m0'] }),
    name: t.String(),
    role: RoleSchema,
    project_ids: t.Array(t.String(), { description: 'Projects it is limited to; [] = all' }),
    vault_ids: t.Array(t.String(), { description: 'Vaults granted explicitly' }),
    scopes: t.Nullable(t.Array(PermissionSchema)),
    expires_at: t.Nullable(t.String()),
    last_used_at: t.Nullable(t.String({ description: 'Updated within a few seconds of use' })),
    created_at: t.String(),
    revoked_at: t.Nullable(t.String()),
    prefix: t.String({ description: 'The public start of the token, e.g. scr_AbC123xYz789' }),
  },
  { description: 'An API key (its token is shown only once, when it is created)' },
);

/** The answer of `POST /v1/api-keys`: the key plus its token, shown this once. */
export const CreatedApiKeySchema = t.Composite([
  ApiKeySchema,
  t.Object({ token: t.String({ description: 'The bearer token; it is never shown again' }) }),
]);

/** `POST /v1/api-keys`; unknown fields are refused. */
export const CreateApiKeyBody = strictObject({
  name: NameSchema,
  role: RoleSchema,
  project_ids: t.Optional(
    t.Array(ProjectId, { maxItems: 100, uniqueItems: true, error: 'Must be distinct ids' }),
  ),
  vault_ids: t.Optional(
    t.Array(VaultId, { maxItems: 100, uniqueItems: true, error: 'Must be distinct ids' }),
  ),
  scopes: t.Optional(t.Nullable(ScopesSchema)),
  expires_at: t.Optional(t.Nullable(Timestamp)),
});

/** `PUT /v1/api-keys/:id`: name, scopes and expiry only (role and reach are fixed). */
export const UpdateApiKeyBody = strictObject({
  name: t.Optional(NameSchema),
  scopes: t.Optional(t.Nullable(ScopesSchema)),
  expires_at: t.Optional(t.Nullable(Timestamp)),
});

/** Path parameters of `/v1/api-keys/:id`. */
export const ApiKeyParams = t.Object({ id: t.String({ maxLength: 64 }) });

/** Types derived from the schemas (no parallel interfaces). */
export type ApiKeyObject = typeof ApiKeySchema.static;
export type CreatedApiKeyObject = typeof CreatedApiKeySchema.static;
export type CreateApiKeyInput = typeof CreateApiKeyBody.static;
export type UpdateApiKeyInput = typeof UpdateApiKeyBody.static;
