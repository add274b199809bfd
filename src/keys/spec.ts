/**
 * What each `/v1/api-keys` route accepts and answers: the TypeBox schemas Elysia validates with
 * and the OpenAPI text `/docs` shows. The routes themselves are listed in ./routes.ts.
 */
import { listSchema, paginationQuery } from '../http/pagination.ts';
import { docsFor } from '../http/route.ts';
import { strictObject } from '../http/schemas.ts';
import {
  ApiKeyParams,
  ApiKeySchema,
  CreateApiKeyBody,
  CreatedApiKeySchema,
  UpdateApiKeyBody,
} from './schemas.ts';
import { Deleted } from '../http/fields.ts';

const docs = docsFor('api-keys');

export const ApiKeyListQuery = strictObject(paginationQuery);

export const list = {
  query: ApiKeyListQuery,
  response: { 200: listSchema(ApiKeySchema) },
  detail: docs(
    'List API keys',
    'Newest first, revoked keys included. Non-admin keys see only non-admin keys within ' +
      'their own projects and vaults.',
  ),
};

export const create = {
  body: CreateApiKeyBody,
  parse: 'json' as const,
  response: { 201: CreatedApiKeySchema },
  detail: docs(
    'Create an API key',
    'Returns the token once. The new key cannot exceed the caller: its role, scopes, ' +
      'projects, vaults and expiry must lie within the calling key’s own (403 otherwise).',
  ),
};

export const get = {
  params: ApiKeyParams,
  response: { 200: ApiKeySchema },
  detail: docs('Get an API key', 'Never includes the token.'),
};

export const update = {
  params: ApiKeyParams,
  body: UpdateApiKeyBody,
  parse: 'json' as const,
  response: { 200: ApiKeySchema },
  detail: docs(
    'Update an API key',
    'Changes name, scopes or expiry. The caller must be able to create the key both as ' +
      'it is and as it will be (its role, scopes, projects, vaults and expiry within the ' +
      'caller’s own; 403 otherwise). A revoked key cannot be changed (409).',
  ),
};

export const revoke = {
  params: ApiKeyParams,
  response: { 200: Deleted },
  detail: docs(
    'Revoke an API key',
    'Takes effect on the key’s next request. The key stays listed with revoked_at.',
  ),
};
