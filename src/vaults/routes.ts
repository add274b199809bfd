/**
 * `/v1/vaults` (docs/api.md §3). Permissions come from the route table; handlers check which vaults
 * the key reaches (`visibility.ts`, restricted vaults included). `GET /v1/vaults/:id` is the
 * entry of the vault read API and lives with it in ../vault-read/.
 */
import { Elysia } from 'elysia';
import type { Instance } from '../instance.ts';
import { vaultHandlers } from './handlers.ts';
import * as spec from './spec.ts';

/** The `/v1/vaults` routes: handlers in ./handlers.ts, schemas and OpenAPI text in ./spec.ts. */
export function vaultRoutes(instance: Instance) {
  const handle = vaultHandlers(instance);
  return new Elysia({ name: 'vaults' })
    .get('/v1/vaults', handle.list, spec.list)
    .post('/v1/vaults', handle.create, spec.create)
    .put('/v1/vaults/:id', handle.update, spec.update)
    .delete('/v1/vaults/:id', handle.remove, spec.remove);
}
