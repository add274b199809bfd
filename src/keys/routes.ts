/**
 * `/v1/api-keys` (docs/api.md §5). The permission of each route is in the permission table; here the
 * handlers only apply the no-escalation rules (`grants.ts`) and hide keys outside the caller's
 * reach. Revoked keys stay listed, with `revoked_at`; revoking twice is a no-op success.
 * Every change is committed together with its audit entry before the response is sent.
 */
import { Elysia } from 'elysia';
import type { LastUsedTracker } from '../access/authenticate.ts';
import type { Instance } from '../instance.ts';
import { apiKeyHandlers } from './handlers.ts';
import * as spec from './spec.ts';

/**
 * The `/v1/api-keys` routes: handlers in ./handlers.ts, schemas and OpenAPI text in ./spec.ts.
 * `lastUsed` lets reads show uses not yet flushed.
 */
export function apiKeyRoutes(instance: Instance, lastUsed: Pick<LastUsedTracker, 'pending'>) {
  const handle = apiKeyHandlers(instance, lastUsed);
  return new Elysia({ name: 'api-keys' })
    .get('/v1/api-keys', handle.list, spec.list)
    .post('/v1/api-keys', handle.create, spec.create)
    .get('/v1/api-keys/:id', handle.get, spec.get)
    .put('/v1/api-keys/:id', handle.update, spec.update)
    .delete('/v1/api-keys/:id', handle.revoke, spec.revoke);
}
