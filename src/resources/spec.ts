/**
 * What each `/v1/resources` route accepts and answers: the TypeBox schemas Elysia validates with
 * and the OpenAPI text `/docs` shows. The routes themselves are listed in ./routes.ts.
 */
import { listSchema } from '../http/pagination.ts';
import { docsFor } from '../http/route.ts';
import { Deleted, documentedResponse } from '../http/fields.ts';
import {
  CreateResourceBody,
  ResourceListQuery,
  ResourceParams,
  ResourceSchema,
  UpdateResourceBody,
  VersionListQuery,
  VersionParams,
  VersionSchema,
} from './schemas.ts';

const docs = docsFor('resources');

export const list = {
  query: ResourceListQuery,
  response: { 200: documentedResponse(listSchema(ResourceSchema)) },
  detail: docs(
    'List resources',
    'Newest first, metadata only (never a value), within the vaults the key reaches. ' +
      'Filters: vault_id, project_id, type, name (exact), tag (one tag, exact), enabled. ' +
      '`deleted=true` lists soft-deleted resources that can still be restored.',
  ),
};

export const create = {
  body: CreateResourceBody,
  // Declares the JSON body to the OpenAPI document; the app's own parser still reads it.
  parse: 'json' as const,
  response: { 201: ResourceSchema },
  detail: docs(
    'Create a resource',
    'secret: `value` (+ `content_type`). key: `generate: {algorithm}` or a private key ' +
      'PEM as `value`. certificate: the PEM chain as `value` (leaf first) and optionally ' +
      'its `private_key`. A value larger than resources.max_value_bytes is a 413. ' +
      'Names are unique per vault and type (409). The response never carries the value. ' +
      'Accepts an Idempotency-Key header.',
  ),
};

export const get = {
  params: ResourceParams,
  response: { 200: ResourceSchema },
  detail: docs(
    'Get a resource',
    'Adds `value` for keys with resources:reveal while the resource is enabled and ' +
      'active. An expired resource answers 410.',
  ),
};

export const update = {
  params: ResourceParams,
  body: UpdateResourceBody,
  parse: 'json' as const,
  response: { 200: ResourceSchema },
  detail: docs(
    'Update a resource',
    'Metadata changes never make a version; a new secret value does (for a key without ' +
      'resources:reveal, any `value` does, so the answer never depends on the current ' +
      'value). `If-Match: <version>` ' +
      'makes the update fail with 409 if the secret moved on. Keys and certificates are ' +
      'immutable: a `value` is a 409.',
  ),
};

export const remove = {
  params: ResourceParams,
  response: { 200: Deleted },
  detail: docs(
    'Delete a resource',
    'Soft delete: gone from reads and lists, kept (encrypted) for ' +
      'storage.deleted_retention_days, restorable until then, then purged.',
  ),
};

export const restore = {
  params: ResourceParams,
  response: { 200: ResourceSchema },
  detail: docs(
    'Restore a deleted resource',
    'Within storage.deleted_retention_days of its deletion (404 after). 409 if a live ' +
      'resource has taken its name meanwhile.',
  ),
};

export const listVersions = {
  params: ResourceParams,
  query: VersionListQuery,
  response: { 200: documentedResponse(listSchema(VersionSchema)) },
  detail: docs('List versions', 'Newest first, without values.'),
};

export const getVersion = {
  params: VersionParams,
  response: { 200: VersionSchema },
  detail: docs(
    'Get a version',
    'With `value` for keys with resources:reveal while the resource is enabled and active.',
  ),
};

export const restoreVersion = {
  params: VersionParams,
  response: { 200: ResourceSchema },
  detail: docs(
    'Restore a version',
    'Makes a new version with the value of version n (secrets only). Accepts If-Match.',
  ),
};
