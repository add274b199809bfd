/**
 * `/v1/resources` (docs/api.md §4): secrets, keys and certificates, their versions, soft delete and
 * restore. Permissions come from the route table; the handlers check *where* (the resource's
 * vault, `visibility.ts`) and *when* a value may be handed out (`reveal.ts`). Every change
 * commits with its audit entry, event and idempotent response (`commit.ts`).
 */
import { Elysia } from 'elysia';
import type { Instance } from '../instance.ts';
import { resourceHandlers } from './handlers.ts';
import * as spec from './spec.ts';

/** The `/v1/resources` routes: handlers in ./handlers.ts, schemas and OpenAPI text in ./spec.ts. */
export function resourceRoutes(instance: Instance) {
  const handle = resourceHandlers(instance);
  return new Elysia({ name: 'resources' })
    .get('/v1/resources', handle.list, spec.list)
    .post('/v1/resources', handle.create, spec.create)
    .get('/v1/resources/:id', handle.get, spec.get)
    .put('/v1/resources/:id', handle.update, spec.update)
    .delete('/v1/resources/:id', handle.remove, spec.remove)
    .post('/v1/resources/:id/restore', handle.restore, spec.restore)
    .get('/v1/resources/:id/versions', handle.listVersions, spec.listVersions)
    .get('/v1/resources/:id/versions/:n', handle.getVersion, spec.getVersion)
    .post('/v1/resources/:id/versions/:n/restore', handle.restoreVersion, spec.restoreVersion);
}
