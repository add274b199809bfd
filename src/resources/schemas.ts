/**
 * The TypeBox schemas of `/v1/resources` and the vault read API (docs/api.md §4): the single source
 * of truth for validation, the OpenAPI document and the TypeScript types.
 *
 * One object schema per body (rather than a union per type) so that a bad field is reported by
 * its own name; the rules that depend on `type` are checked by the service, naming the field.
 */
import { t } from 'elysia';
import { paginationQuery } from '../http/pagination.ts';
import { ResponseInteger } from '../http/schemas.ts';
import { KEY_ALGORITHMS } from './material.ts';
import { ResourceName, Tag, Tags } from '../http/names.ts';
import {
  Description,
  IdParam,
  oneOf,
  ProjectId,
  QueryBoolean,
  queryEnum,
  strictObject,
  Timestamp,
  VaultId,
} from '../http/fields.ts';
import { RESOURCE_TYPES } from '../db/schema/resources.ts';

/** Default `content_type` of a secret. */
export const DEFAULT_CONTENT_TYPE = 'text/plain';

export const ResourceTypeSchema = oneOf(
  RESOURCE_TYPES,
  `Must be one of: ${RESOURCE_TYPES.join(', ')}`,
);

export const KeyAlgorithmSchema = oneOf(
  KEY_ALGORITHMS,
  `Must be one of: ${KEY_ALGORITHMS.join(', ')}`,
);

/** A media type such as `application/json; charset=utf-8` (RFC 6838 names, simple parameters). */
export const ContentType = t.String({
  maxLength: 255,
  pattern:
    '^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*' +
    '( *; *[A-Za-z0-9!#$&^_.+-]+=([A-Za-z0-9!#$&^_.+-]+|"[^"\\\\\\u0000-\\u001f\\u007f]*"))*$',
  error: 'Must be a media type such as text/plain or application/json (at most 255 characters)',
  examples: [DEFAULT_CONTENT_TYPE, 'application/json'],
});

const Value = t.String({
  description:
    'secret: the value (UTF-8 text). key: a private key PEM (instead of generate). ' +
    'certificate: the X.509 PEM chain, leaf first.',
  error: 'Must be a string',
});

/** A resource as the API shows it. Type-specific fields are present on their type only. */
export const ResourceSchema = t.Object(
  {
    id: t.String({ examples: ['res_01jq3v6x1nf4r8s2k9w7y5t3m0'] }),
    type: ResourceTypeSchema,
    vault_id: t.String(),
    project_id: t.String(),
    name: t.String(),
    description: t.Nullable(t.String()),
    tags: t.Array(t.String()),
    enabled: t.Boolean(),
    activates_at: t.Nullable(t.String()),
    expires_at: t.Nullable(t.String()),
    created_at: t.String(),
    updated_at: t.String(),
    created_by: t.String({ description: 'The API key that created it' }),
    content_type: t.Optional(t.String({ description: 'secret' })),
    version: t.Optional(ResponseInteger({ minimum: 1, description: 'secret: current version' })),
    algorithm: t.Optional(KeyAlgorithmSchema),
    public_key: t.Optional(
      t.Nullable(t.String({ description: 'key: SPKI PEM (null for aes-256)' })),
    ),
    subject: t.Optional(t.String({ description: 'certificate (leaf)' })),
    issuer: t.Optional(t.String()),
    serial_number: t.Optional(t.String()),
    not_before: t.Optional(t.String()),
    not_after: t.Optional(t.String()),
    fingerprint_sha256: t.Optional(t.String()),
    has_private_key: t.Optional(t.Boolean({ description: 'certificate: a private key is stored' })),
    deleted_at: t.Optional(t.String({ description: 'Only on deleted resources (?deleted=true)' })),
    value: t.Optional(
      t.String({
        description:
          'Only in single reads, for keys with resources:reveal, when the resource is enabled ' +
          'and active. key: private key PEM; certificate: chain PEM then private key PEM.',
      }),
    ),
  },
  { description: 'A secret, key or certificate' },
);

export const CreateResourceBody = strictObject({
  type: ResourceTypeSchema,
  vault_id: VaultId,
  name: ResourceName,
  description: t.Optional(t.Nullable(Description)),
  tags: t.Optional(Tags),
  enabled: t.Optional(t.Boolean({ error: 'Must be true or false' })),
  activates_at: t.Optional(t.Nullable(Timestamp)),
  expires_at: t.Optional(t.Nullable(Timestamp)),
  content_type: t.Optional(ContentType),
  value: t.Optional(Value),
  generate: t.Optional(
    strictObject(
      { algorithm: KeyAlgorithmSchema },
      'key only: have the server generate the key (instead of value)',
    ),
  ),
  private_key: t.Optional(
    t.String({
      description: 'certificate only: the private key PEM of the leaf certificate',
      error: 'Must be a string',
    }),
  ),
});

export const UpdateResourceBody = strictObject({
  name: t.Optional(ResourceName),
  description: t.Optional(t.Nullable(Description)),
  tags: t.Optional(Tags),
  enabled: t.Optional(t.Boolean({ error: 'Must be true or false' })),
  activates_at: t.Optional(t.Nullable(Timestamp)),
  expires_at: t.Optional(t.Nullable(Timestamp)),
  content_type: t.Optional(ContentType),
  value: t.Optional(
    t.String({
      description: 'secret only: a new value makes a new version',
      error: 'Must be a string',
    }),
  ),
});

export const ResourceParams = t.Object({ id: IdParam });

const VersionNumber = t.String({
  pattern: '^[1-9][0-9]{0,8}$',
  error: 'Must be a version number (an integer ≥ 1)',
});

export const VersionParams = t.Object({ id: IdParam, n: VersionNumber });

export const ResourceListQuery = strictObject({
  ...paginationQuery,
  vault_id: t.Optional(VaultId),
  project_id: t.Optional(ProjectId),
  type: t.Optional(queryEnum(RESOURCE_TYPES)),
  name: t.Optional(ResourceName),
  tag: t.Optional(Tag),
  enabled: t.Optional(QueryBoolean),
  deleted: t.Optional(QueryBoolean),
});

/** A version of a resource's value; `value` only for revealers (see ResourceSchema.value). */
export const VersionSchema = t.Object(
  {
    resource_id: t.String(),
    version: ResponseInteger({ minimum: 1 }),
    created_at: t.String(),
    created_by: t.String(),
    value: t.Optional(t.String()),
  },
  { description: 'An immutable version of a resource value' },
);

export const VersionListQuery = strictObject({ ...paginationQuery });

// --- vault read API ----------------------------------------------------------------------

export const VaultReadQuery = strictObject({
  secrets: t.Optional(queryEnum(['names'], 'Must be names (or omit it for values)')),
  resource: t.Optional(IdParam),
});

export const VaultSecretParams = t.Object({
  id: IdParam,
  // Looked up as stored: in NFC (names.ts). Not checked against the name rules: a name that
  // cannot exist is simply not found.
  name: t
    .Transform(t.String({ maxLength: 1024 }))
    .Decode((value) => value.normalize('NFC'))
    .Encode((value) => value),
});

export const VaultResourceParams = t.Object({ id: IdParam, res_id: IdParam });

export const VaultResourceListQuery = strictObject({ ...paginationQuery });

export type ResourceObject = typeof ResourceSchema.static;
export type VersionObject = typeof VersionSchema.static;
export type CreateResourceInput = typeof CreateResourceBody.static;
export type UpdateResourceInput = typeof UpdateResourceBody.static;
export type ResourceListInput = typeof ResourceListQuery.static;
