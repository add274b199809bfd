/**
 * `/v1/vaults` (API.md §3). Permissions come from the route table; handlers check which vaults
 * the key reaches (`visibility.ts`, restricted vaults included). `GET /v1/vaults/:id` is also
 * the entry of the vault read API, whose handlers live in ../vault-read/.
 */
import { Elysia } from 'elysia';
import type { Instance } from '../instance.ts';
import { vaultReadHandlers } from '../vault-read/handlers.ts';
import * as readSpec from '../vault-read/spec.ts';
import { vaultHandlers } from './handlers.ts';
import * as spec from './spec.ts';

/** The `/v1/vaults` routes: handlers in ./handlers.ts, schemas and OpenAPI text in ./spec.ts. */
export function vaultRoutes(instance: Instance) {
  const handle = vaultHandlers(instance);
  const read = vaultReadHandlers(instance);
  return new Elysia({ name: 'vaults' })
    .get('/v1/vaults', handle.list, spec.list)
    .post('/v1/vaults', handle.create, spec.create)
    .get('/v1/vaults/:id', read.readVault, readSpec.readVault)
    .put('/v1/vaults/:id', handle.update, spec.update)
    .delete('/v1/vaults/:id', handle.remove, spec.remove);
}
