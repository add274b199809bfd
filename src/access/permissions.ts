/**
 * THE permission model of Secryn, in one place: the permissions, what each role holds, and the
 * one declarative table that says which permission every `/v1` route needs. The access plugin
 * enforces the table before validation; handlers never check roles themselves.
 *
 * Adding a route is one line in {@link ROUTE_PERMISSIONS}, keyed exactly as Elysia registers the
 * route (`METHOD /v1/path/:param`). A `/v1` route without a line is refused (403) and fails
 * `test/permission-matrix.test.ts`. `docs/permissions.md` is generated from this file
 * (`bun src/access/permissions-doc.ts --write`) and a test keeps it in step.
 */

// The names live in the base layer (the key table stores them); this file maps them.
import { PERMISSIONS, ROLES, type Permission, type Role } from '../roles.ts';

export { PERMISSIONS, ROLES, type Permission, type Role } from '../roles.ts';

/**
 * What each role may do (before `scopes` narrow it). Project and vault limits and restricted
 * vaults are not permissions: they decide *which* objects a key reaches (see `visibility.ts`).
 */
export const ROLE_PERMISSIONS: Readonly<Record<Role, readonly Permission[]>> = {
  admin: PERMISSIONS,
  manager: [
    'projects:read',
    'vaults:read',
    'vaults:write',
    'resources:read',
    'resources:write',
    'resources:delete',
    'resources:reveal',
    'api_keys:read',
    'api_keys:write',
    'webhooks:read',
    'webhooks:write',
    'events:read',
  ],
  contributor: [
    'projects:read',
    'vaults:read',
    'resources:read',
    'resources:write',
    'resources:reveal',
  ],
  reader: ['projects:read', 'vaults:read', 'resources:read'],
  access: ['vaults:read', 'resources:read', 'resources:reveal'],
};

/** One line of the route table. */
export type RouteRule = {
  /**
   * The permission the caller's key must hold (after scopes); `null`: any valid key (a route
   * about the caller itself, such as `GET /v1/me`, which every key must be able to ask).
   */
  permission: Permission | null;
  /** The audit action, `<object>.<verb>` (e.g. `api_key.create`, `resource.reveal`). */
  action: string;
  /** What the request acts on; `idParam` names the path parameter holding its id. */
  target: { type: string; idParam?: string };
};

/** Shorthand for one table line: `rule('resources:reveal', 'resource.reveal', 'resource', 'id')`. */
export function rule(
  permission: Permission | null,
  action: string,
  targetType: string,
  idParam?: string,
): RouteRule {
  return {
    permission,
    action,
    target: idParam === undefined ? { type: targetType } : { type: targetType, idParam },
  };
}

/**
 * Which permission every authenticated route needs, keyed `METHOD /v1/path/:param` exactly as
 * the route is registered. `GET /v1/health` and `GET /v1/health/ready` are public and are not
 * listed; `GET /metrics` is the one guarded route outside `/v1`.
 */
export const ROUTE_PERMISSIONS: Readonly<Record<string, RouteRule>> = {
  'GET /v1/api-keys': rule('api_keys:read', 'api_key.list', 'api_key'),
  'POST /v1/api-keys': rule('api_keys:write', 'api_key.create', 'api_key'),
  'GET /v1/api-keys/:id': rule('api_keys:read', 'api_key.read', 'api_key', 'id'),
  'PUT /v1/api-keys/:id': rule('api_keys:write', 'api_key.update', 'api_key', 'id'),
  'DELETE /v1/api-keys/:id': rule('api_keys:write', 'api_key.revoke', 'api_key', 'id'),
  'GET /v1/audit-logs': rule('audit:read', 'audit.list', 'audit_entry'),
  'GET /v1/audit-logs/:id': rule('audit:read', 'audit.read', 'audit_entry', 'id'),
  'GET /v1/audit-logs/verify': rule('audit:read', 'audit.verify', 'audit_entry'),
  // Projects, vaults, resources (docs/api.md §3, §4). Reads that return a value are recorded as
  // `resource.reveal` / `vault.reveal` by the handler, since only it knows whether one was sent.
  'GET /v1/projects': rule('projects:read', 'project.list', 'project'),
  'POST /v1/projects': rule('projects:write', 'project.create', 'project'),
  'GET /v1/projects/:id': rule('projects:read', 'project.read', 'project', 'id'),
  'PUT /v1/projects/:id': rule('projects:write', 'project.update', 'project', 'id'),
  'DELETE /v1/projects/:id': rule('projects:write', 'project.delete', 'project', 'id'),
  'GET /v1/vaults': rule('vaults:read', 'vault.list', 'vault'),
  'POST /v1/vaults': rule('vaults:write', 'vault.create', 'vault'),
  'GET /v1/vaults/:id': rule('vaults:read', 'vault.read', 'vault', 'id'),
  'PUT /v1/vaults/:id': rule('vaults:write', 'vault.update', 'vault', 'id'),
  'DELETE /v1/vaults/:id': rule('vaults:write', 'vault.delete', 'vault', 'id'),
  'GET /v1/vaults/:id/secrets/:name': rule('resources:read', 'resource.read', 'vault', 'id'),
  'POST /v1/vaults/:id/secrets/import': rule('resources:write', 'resource.import', 'vault', 'id'),
  'GET /v1/vaults/:id/keys': rule('resources:read', 'resource.list', 'vault', 'id'),
  'GET /v1/vaults/:id/certificates': rule('resources:read', 'resource.list', 'vault', 'id'),
  'GET /v1/vaults/:id/keys/:res_id/download': rule(
    'resources:reveal',
    'resource.reveal',
    'resource',
    'res_id',
  ),
  'GET /v1/vaults/:id/certificates/:res_id/download': rule(
    'resources:reveal',
    'resource.reveal',
    'resource',
    'res_id',
  ),
  'GET /v1/resources': rule('resources:read', 'resource.list', 'resource'),
  'POST /v1/resources': rule('resources:write', 'resource.create', 'resource'),
  'GET /v1/resources/:id': rule('resources:read', 'resource.read', 'resource', 'id'),
  'PUT /v1/resources/:id': rule('resources:write', 'resource.update', 'resource', 'id'),
  'DELETE /v1/resources/:id': rule('resources:delete', 'resource.delete', 'resource', 'id'),
  'POST /v1/resources/:id/restore': rule('resources:delete', 'resource.restore', 'resource', 'id'),
  'GET /v1/resources/:id/versions': rule(
    'resources:read',
    'resource.list_versions',
    'resource',
    'id',
  ),
  'GET /v1/resources/:id/versions/:n': rule(
    'resources:read',
    'resource.read_version',
    'resource',
    'id',
  ),
  'POST /v1/resources/:id/versions/:n/restore': rule(
    'resources:write',
    'resource.restore_version',
    'resource',
    'id',
  ), // Webhooks and events (docs/api.md §6).
  'GET /v1/webhooks': rule('webhooks:read', 'webhook.list', 'webhook'),
  'POST /v1/webhooks': rule('webhooks:write', 'webhook.create', 'webhook'),
  'GET /v1/webhooks/:id': rule('webhooks:read', 'webhook.read', 'webhook', 'id'),
  'PUT /v1/webhooks/:id': rule('webhooks:write', 'webhook.update', 'webhook', 'id'),
  'DELETE /v1/webhooks/:id': rule('webhooks:write', 'webhook.delete', 'webhook', 'id'),
  'POST /v1/webhooks/:id/rotate-secret': rule(
    'webhooks:write',
    'webhook.rotate_secret',
    'webhook',
    'id',
  ),
  'POST /v1/webhooks/:id/test': rule('webhooks:write', 'webhook.test', 'webhook', 'id'),
  'GET /v1/webhooks/:id/deliveries': rule(
    'webhooks:read',
    'webhook_delivery.list',
    'webhook',
    'id',
  ),
  'GET /v1/webhooks/:id/deliveries/:dlv_id': rule(
    'webhooks:read',
    'webhook_delivery.read',
    'webhook_delivery',
    'dlv_id',
  ),
  'POST /v1/webhooks/:id/deliveries/:dlv_id/retry': rule(
    'webhooks:write',
    'webhook_delivery.retry',
    'webhook_delivery',
    'dlv_id',
  ),
  'GET /v1/events': rule('events:read', 'event.list', 'event'),
  'GET /v1/events/:id': rule('events:read', 'event.read', 'event', 'id'),
  // Also for the keys that run programs (`secryn run --watch`): a key without `events:read` is
  // sent only the resource.* events of vaults it reaches (src/events/visibility.ts).
  'GET /v1/events/stream': rule('resources:read', 'event.stream', 'event'),
  // Prometheus metrics (README "Operations"): outside /v1, but guarded like it. A key for a
  // scraper is an admin key narrowed to this one scope.
  'GET /metrics': rule('metrics:read', 'metrics.read', 'metrics'),
  // The calling key itself (docs/api.md §10): any valid key, so clients can show what it may do.
  'GET /v1/me': rule(null, 'api_key.me', 'api_key'),
  // Console sessions (docs/api.md §10): any valid key may sign in to the console as itself; the
  // session then holds exactly that key's permissions.
  'POST /v1/sessions': rule(null, 'session.create', 'session'),
  'GET /v1/sessions/current': rule(null, 'session.read', 'session'),
  'DELETE /v1/sessions/current': rule(null, 'session.delete', 'session'),
};

/** Paths under `/v1` that need no key (docs/api.md §1): liveness and readiness. */
export const PUBLIC_V1_PATHS: ReadonlySet<string> = new Set(['/v1/health', '/v1/health/ready']);

/** Paths outside `/v1` that need a key all the same. */
export const GUARDED_PATHS: ReadonlySet<string> = new Set(['/metrics']);

/**
 * The rule of a registered route, or undefined when the table has none (the caller refuses).
 * HEAD is answered by the GET route, so it needs what GET needs.
 */
export function routeRule(method: string, route: string): RouteRule | undefined {
  const verb = method.toUpperCase();
  return ROUTE_PERMISSIONS[`${verb === 'HEAD' ? 'GET' : verb} ${route}`];
}

/** True for a string that names a permission. */
export function isPermission(value: string): value is Permission {
  return (PERMISSIONS as readonly string[]).includes(value);
}

/** True for a string that names a role. */
export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/**
 * What a key may do: its role's permissions, narrowed to `scopes` when it has any (`null`: the
 * role's full set). A scope the role lacks grants nothing.
 */
export function effectivePermissions(
  role: Role,
  scopes: readonly Permission[] | null,
): ReadonlySet<Permission> {
  const granted = ROLE_PERMISSIONS[role];
  if (scopes === null) return new Set(granted);
  return new Set(granted.filter((permission) => scopes.includes(permission)));
}
