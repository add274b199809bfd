/**
 * What each route of the vault read API accepts and answers: the TypeBox schemas Elysia
 * validates with and the OpenAPI text `/docs` shows. The routes are listed in ./routes.ts
 * (and `GET /v1/vaults/:id` in ../vaults/routes.ts).
 */
import { t } from 'elysia';
import { listSchema } from '../http/pagination.ts';
import { docsFor } from '../http/route.ts';
import { documentedResponse } from '../http/fields.ts';
import {
  ResourceSchema,
  VaultReadQuery,
  VaultResourceListQuery,
  VaultResourceParams,
  VaultSecretParams,
} from '../resources/schemas.ts';
import { VaultParams, VaultSecretSchema, VaultWithSecretsSchema } from '../vaults/schemas.ts';
import { pemResponses } from './pem.ts';

const docs = docsFor('vaults');

export const readVault = {
  params: VaultParams,
  query: VaultReadQuery,
  response: { 200: documentedResponse(t.Union([VaultWithSecretsSchema, ResourceSchema])) },
  detail: docs(
    'Get a vault (vault read API)',
    'The vault plus `secrets`: its enabled, active secrets by name, with values for ' +
      'keys with resources:reveal (absent for keys without resources:read). ' +
      '`?secrets=names`: only `{id, name}` per secret. `?resource=res_…`: that resource ' +
      'of the vault instead, with its value (a key or certificate: its PEM); 410 when ' +
      'expired, 404 when disabled or not active yet.',
  ),
};

export const secretByName = {
  params: VaultSecretParams,
  response: { 200: documentedResponse(VaultSecretSchema) },
  detail: docs(
    'Get a secret by name (vault read API)',
    'With its value for keys with resources:reveal. 410 when expired; 404 when ' +
      'disabled or not active yet.',
  ),
};

const resourceList = (summary: string) => ({
  params: VaultParams,
  query: VaultResourceListQuery,
  response: { 200: documentedResponse(listSchema(ResourceSchema)) },
  detail: docs(summary, 'Newest first, metadata only.'),
});

export const listKeys = resourceList('List the keys of a vault (vault read API)');

export const listCertificates = resourceList('List the certificates of a vault (vault read API)');

export const downloadKey = {
  params: VaultResourceParams,
  detail: {
    ...docs(
      'Download a key (vault read API)',
      'The private key as PEM (`application/x-pem-file`; AES keys in a SECRYN AES KEY ' +
        'block). 410 when expired; 404 when disabled or not active yet.',
    ),
    responses: pemResponses('The private key PEM'),
  },
};

export const downloadCertificate = {
  params: VaultResourceParams,
  detail: {
    ...docs(
      'Download a certificate (vault read API)',
      'The PEM chain, leaf first, followed by the private key when one was uploaded ' +
        '(`application/x-pem-file`). 410 when expired; 404 when disabled or not active yet.',
    ),
    responses: pemResponses('The certificate chain (and private key) PEM'),
  },
};
