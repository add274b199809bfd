/**
 * What each `/v1/vaults` route accepts and answers: the TypeBox schemas Elysia validates with
 * and the OpenAPI text `/docs` shows. The routes themselves are listed in ./routes.ts; the vault
 * read API (`GET /v1/vaults/:id` included) is described in ../vault-read/spec.ts.
 */
import { listSchema } from '../http/pagination.ts';
import { docsFor } from '../http/route.ts';
import { Deleted, documentedResponse } from '../http/fields.ts';
import {
  CreateVaultBody,
  UpdateVaultBody,
  VaultListQuery,
  VaultParams,
  VaultSchema,
} from './schemas.ts';

const docs = docsFor('vaults');

export const list = {
  query: VaultListQuery,
  response: { 200: documentedResponse(listSchema(VaultSchema)) },
  detail: docs('List vaults', 'Newest first, only the vaults the key reaches.'),
};

export const create = {
  body: CreateVaultBody,
  // Declares the JSON body to the OpenAPI document; the app's own parser still reads it.
  parse: 'json' as const,
  response: { 201: VaultSchema },
  detail: docs(
    'Create a vault',
    'Names are unique within the project (409). Needs scope over the whole project. ' +
      'Accepts an Idempotency-Key header.',
  ),
};

export const update = {
  params: VaultParams,
  body: UpdateVaultBody,
  parse: 'json' as const,
  response: { 200: VaultSchema },
  detail: docs('Update a vault', 'Name, description, restricted. Needs project scope.'),
};

export const remove = {
  params: VaultParams,
  response: { 200: Deleted },
  detail: docs(
    'Delete a vault',
    'Only a vault without live resources (409 otherwise); its soft-deleted resources are ' +
      'purged with it.',
  ),
};
