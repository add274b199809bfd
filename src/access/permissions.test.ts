import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PERMISSIONS_DOC_PATH, renderPermissionsDoc } from './permissions-doc.ts';
import {
  effectivePermissions,
  PERMISSIONS,
  ROLE_PERMISSIONS,
  ROLES,
  ROUTE_PERMISSIONS,
  routeRule,
} from './permissions.ts';

describe('permission model', () => {
  test('the role map matches docs/api.md §5', () => {
    expect([...ROLE_PERMISSIONS.admin]).toEqual([...PERMISSIONS]);
    const has = (role: (typeof ROLES)[number], permission: string) =>
      (ROLE_PERMISSIONS[role] as readonly string[]).includes(permission);
    // Only admins: system endpoints, the audit log, creating projects.
    for (const permission of ['system:admin', 'audit:read', 'projects:write'])
      expect(ROLES.filter((role) => has(role, permission))).toEqual(['admin']);
    // Managers manage vaults, resources (incl. reveal), webhooks and keys.
    for (const permission of [
      'vaults:write',
      'resources:delete',
      'webhooks:write',
      'api_keys:write',
    ])
      expect(ROLES.filter((role) => has(role, permission))).toEqual(['admin', 'manager']);
    // Readers never see values; nobody but admins and managers writes keys or webhooks.
    expect(has('reader', 'resources:reveal')).toBe(false);
    expect(ROLE_PERMISSIONS.reader).toEqual(['projects:read', 'vaults:read', 'resources:read']);
    // Access keys: list and reveal in their vaults, no writes.
    expect(ROLE_PERMISSIONS.access).toEqual(['vaults:read', 'resources:read', 'resources:reveal']);
    expect(ROLE_PERMISSIONS.contributor).toContain('resources:write');
    expect(ROLE_PERMISSIONS.contributor).not.toContain('resources:delete');
    for (const role of ROLES)
      for (const permission of ROLE_PERMISSIONS[role]) expect(PERMISSIONS).toContain(permission);
  });

  test('scopes narrow a role and never widen it', () => {
    expect([...effectivePermissions('manager', null)]).toEqual([...ROLE_PERMISSIONS.manager]);
    expect([...effectivePermissions('manager', ['resources:read', 'system:admin'])]).toEqual([
      'resources:read',
    ]);
    expect(effectivePermissions('reader', ['resources:reveal']).size).toBe(0);
  });

  test('route lookup is by exact registered pattern; HEAD needs what GET needs', () => {
    expect(routeRule('GET', '/v1/api-keys/:id')?.permission).toBe('api_keys:read');
    expect(routeRule('HEAD', '/v1/api-keys/:id')?.permission).toBe('api_keys:read');
    expect(routeRule('get', '/v1/api-keys')?.action).toBe('api_key.list');
    expect(routeRule('GET', '/v1/api-keys/key_123')).toBeUndefined();
    expect(routeRule('PATCH', '/v1/api-keys/:id')).toBeUndefined();
    for (const [key, rule] of Object.entries(ROUTE_PERMISSIONS)) {
      expect(key).toMatch(/^(GET|POST|PUT|DELETE|PATCH) \/(v1\/[a-z0-9/:_-]+|metrics)$/);
      expect(rule.action).toMatch(/^[a-z_]+\.[a-z_]+$/);
      if (rule.target.idParam) expect(key).toContain(`:${rule.target.idParam}`);
    }
  });

  test(`${PERMISSIONS_DOC_PATH} is generated from the table (run permissions-doc.ts --write)`, () => {
    const onDisk = readFileSync(join(import.meta.dir, '../..', PERMISSIONS_DOC_PATH), 'utf8');
    expect(onDisk).toBe(renderPermissionsDoc());
  });
});
