/**
 * `/v1/projects` (docs/api.md §3). The permission of each route is in the permission table; here the
 * handlers only decide *which* projects the caller reaches (`visibility.ts`): a project outside
 * its reach answers 404 like one that does not exist. Names are unique (409, field `name`); a
 * project that still has vaults cannot be deleted (409).
 */
import { Elysia } from 'elysia';
import type { Instance } from '../instance.ts';
import { projectHandlers } from './handlers.ts';
import * as spec from './spec.ts';

/** The `/v1/projects` routes: handlers in ./handlers.ts, schemas and OpenAPI text in ./spec.ts. */
export function projectRoutes(instance: Instance) {
  const handle = projectHandlers(instance);
  return new Elysia({ name: 'projects' })
    .get('/v1/projects', handle.list, spec.list)
    .post('/v1/projects', handle.create, spec.create)
    .get('/v1/projects/:id', handle.get, spec.get)
    .put('/v1/projects/:id', handle.update, spec.update)
    .delete('/v1/projects/:id', handle.remove, spec.remove);
}
