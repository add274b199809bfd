/**
 * `GET /v1/me` (API.md §10): the calling key itself, for any valid key, so that a client (the
 * `secryn` CLI, the console) can say who it is and offer only what the key may do. Audited as
 * `api_key.me` with the key as target; never returns the token or anything else secret.
 */
import { Elysia } from 'elysia';
import { PERMISSIONS } from '../access/permissions.ts';
import { principalOf, type Principal } from '../access/principal.ts';
import { toRfc3339 } from '../db/columns.ts';
import { requestMeta } from '../http/request-meta.ts';
import { MeSchema, type MeObject } from './schemas.ts';

/** The `/v1/me` route. */
export function meRoutes() {
  return new Elysia({ name: 'me' }).get('/v1/me', getMe, {
    response: { 200: MeSchema },
    detail: {
      summary: 'The calling API key',
      description:
        'Any valid key may call it: its id, name, role, scopes, project and vault limits, ' +
        'expiry, and the permissions it holds (role narrowed by scopes).',
      tags: ['api-keys'],
    },
  });
}

function getMe({ request }: { request: Request }): MeObject {
  const key = principalOf(request);
  requestMeta(request).target = { type: 'api_key', id: key.keyId };
  return toMeObject(key);
}

/** The caller as `GET /v1/me` shows it; permissions in the table's order, for stable output. */
export function toMeObject(key: Principal): MeObject {
  return {
    id: key.keyId,
    name: key.name,
    role: key.role,
    project_ids: [...key.projectIds],
    vault_ids: [...key.vaultIds],
    scopes: key.scopes === null ? null : [...key.scopes],
    expires_at: toRfc3339(key.expiresAt),
    permissions: PERMISSIONS.filter((permission) => key.permissions.has(permission)),
  };
}
