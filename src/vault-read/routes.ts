/**
 * The vault read API (docs/api.md §4) that the `secryn` CLI, CI/CD and apps use with vault access
 * keys: a secret by name, the keys and certificates of a vault, their PEM downloads, and
 * `GET /v1/vaults/:id` (the vault with its secrets; its PUT and DELETE are in ../vaults/). Permissions come from the route
 * table; handlers check which vaults the key reaches (restricted vaults included) and, for
 * values, the reveal rules of `src/resources/reveal.ts`.
 */
import { Elysia } from 'elysia';
import type { Instance } from '../instance.ts';
import { vaultReadHandlers } from './handlers.ts';
import * as spec from './spec.ts';

export { attachment, PEM_MEDIA_TYPE } from './pem.ts';
export { VAULT_REVEAL_ACTION } from './handlers.ts';

/** The vault read routes: handlers in ./handlers.ts, schemas and OpenAPI text in ./spec.ts. */
export function vaultReadRoutes(instance: Instance) {
  const handle = vaultReadHandlers(instance);
  return new Elysia({ name: 'vault-read' })
    .get('/v1/vaults/:id', handle.readVault, spec.readVault)
    .get('/v1/vaults/:id/secrets/:name', handle.secretByName, spec.secretByName)
    .get('/v1/vaults/:id/keys', handle.listKeys, spec.listKeys)
    .get('/v1/vaults/:id/certificates', handle.listCertificates, spec.listCertificates)
    .get('/v1/vaults/:id/keys/:res_id/download', handle.downloadKey, spec.downloadKey)
    .get(
      '/v1/vaults/:id/certificates/:res_id/download',
      handle.downloadCertificate,
      spec.downloadCertificate,
    );
}
