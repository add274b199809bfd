import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { canManageKey, grantProblem } from './grants.ts';
import { effectivePermissions, PERMISSIONS, ROLES, type Permission } from './permissions.ts';
import type { KeyGrant } from './principal.ts';
import { canSeeVault, hasProjectScope, type VaultRef } from './visibility.ts';

const A = 'prj_a';
const B = 'prj_b';
const V1 = 'vlt_1';
const V2 = 'vlt_2';
const T = Date.UTC(2030, 0, 1);

const key = (over: Partial<KeyGrant> = {}): KeyGrant => ({
  role: 'manager',
  projectIds: [],
  vaultIds: [],
  scopes: null,
  expiresAt: null,
  ...over,
});

describe('no escalation', () => {
  test('role and scopes: never more permissions than the grantor holds', () => {
    expect(grantProblem(key(), key({ role: 'admin' }))?.field).toBe('role');
    expect(grantProblem(key({ role: 'admin' }), key({ role: 'admin' }))).toBeUndefined();
    expect(grantProblem(key(), key({ role: 'contributor' }))).toBeUndefined();
    const scoped = key({ scopes: ['api_keys:write', 'resources:read'] });
    expect(grantProblem(scoped, key({ role: 'contributor' }))).toMatchObject({
      field: 'role',
      reason: expect.stringContaining('resources:write'),
    });
    expect(
      grantProblem(scoped, key({ role: 'contributor', scopes: ['resources:read'] })),
    ).toBeUndefined();
    expect(
      grantProblem(scoped, key({ role: 'reader', scopes: ['resources:read', 'vaults:read'] }))
        ?.field,
    ).toBe('scopes');
    // An admin scoped down cannot mint an unscoped admin either.
    expect(
      grantProblem(key({ role: 'admin', scopes: ['api_keys:write'] }), key({ role: 'admin' }))
        ?.field,
    ).toBe('role');
    // Restricted-vault reach comes with the manager role: lesser roles cannot hand it out.
    expect(
      grantProblem(
        key({ role: 'contributor' }),
        key({ role: 'manager', scopes: ['resources:read'] }),
      )?.field,
    ).toBe('role');
  });

  test('projects and vaults: only within the grantor’s own', () => {
    const limited = key({ projectIds: [A] });
    expect(grantProblem(limited, key({ role: 'reader' }))?.field).toBe('project_ids');
    expect(grantProblem(limited, key({ role: 'reader', projectIds: [A, B] }))?.field).toBe(
      'project_ids',
    );
    expect(grantProblem(limited, key({ role: 'reader', projectIds: [A] }))).toBeUndefined();
    expect(
      grantProblem(limited, key({ role: 'reader', projectIds: [A], vaultIds: [V1] }))?.field,
    ).toBe('vault_ids');
    const vaultOnly = key({ vaultIds: [V1] });
    expect(grantProblem(vaultOnly, key({ role: 'access', projectIds: [A] }))?.field).toBe(
      'project_ids',
    );
    expect(grantProblem(vaultOnly, key({ role: 'access' }))?.field).toBe('vault_ids');
    expect(grantProblem(vaultOnly, key({ role: 'access', vaultIds: [V1, V2] }))?.field).toBe(
      'vault_ids',
    );
    expect(grantProblem(vaultOnly, key({ role: 'access', vaultIds: [V1] }))).toBeUndefined();
  });

  test('expiry: a key that expires cannot mint one that outlives it', () => {
    const expiring = key({ expiresAt: T });
    expect(grantProblem(expiring, key({ role: 'reader' }))?.field).toBe('expires_at');
    expect(grantProblem(expiring, key({ role: 'reader', expiresAt: T + 1 }))?.field).toBe(
      'expires_at',
    );
    expect(grantProblem(expiring, key({ role: 'reader', expiresAt: T }))).toBeUndefined();
    expect(grantProblem(key(), key({ role: 'reader', expiresAt: T }))).toBeUndefined();
  });

  test('who sees which keys: admins all; others only non-admin keys within their reach', () => {
    const limited = key({ projectIds: [A] });
    expect(canManageKey(key({ role: 'admin' }), key({ role: 'admin' }))).toBe(true);
    expect(canManageKey(key(), key({ role: 'admin' }))).toBe(false);
    expect(canManageKey(key(), key({ role: 'reader', projectIds: [B] }))).toBe(true);
    expect(canManageKey(limited, key({ role: 'reader', projectIds: [A] }))).toBe(true);
    expect(canManageKey(limited, key({ role: 'manager', projectIds: [A] }))).toBe(true);
    expect(canManageKey(limited, key({ role: 'reader' }))).toBe(false);
    expect(canManageKey(limited, key({ role: 'reader', projectIds: [A, B] }))).toBe(false);
  });

  test('property: a permitted grant never reaches a vault or permission the grantor lacks', () => {
    const ids = <T extends string>(pool: T[]) =>
      fc.uniqueArray(fc.constantFrom(...pool), { maxLength: 2 });
    const grant = fc.record({
      role: fc.constantFrom(...ROLES),
      projectIds: ids([A, B]),
      vaultIds: ids([V1, V2, 'vlt_3']),
      scopes: fc.option(
        fc.uniqueArray(fc.constantFrom(...PERMISSIONS), { minLength: 1, maxLength: 6 }),
        {
          nil: null,
        },
      ),
      expiresAt: fc.option(fc.constantFrom(T - 1, T, T + 1), { nil: null }),
    });
    // Admin keys cannot be limited (the service refuses); model that.
    const valid = grant.map((g) =>
      g.role === 'admin' ? { ...g, projectIds: [], vaultIds: [] } : g,
    );
    const vault = fc.record({
      id: fc.constantFrom(V1, V2, 'vlt_3', 'vlt_4'),
      projectId: fc.constantFrom(A, B, 'prj_c'),
      restricted: fc.boolean(),
    });
    fc.assert(
      fc.property(valid, valid, fc.array(vault, { maxLength: 8 }), (grantor, requested, vaults) => {
        if (grantProblem(grantor, requested) !== undefined) return;
        const held = effectivePermissions(grantor.role, grantor.scopes);
        for (const p of effectivePermissions(
          requested.role,
          requested.scopes as Permission[] | null,
        ))
          expect(held.has(p)).toBe(true);
        for (const v of vaults as VaultRef[])
          if (canSeeVault(requested, v)) expect(canSeeVault(grantor, v)).toBe(true);
        for (const project of [A, B, 'prj_c'])
          if (hasProjectScope(requested, project))
            expect(hasProjectScope(grantor, project)).toBe(true);
        if (grantor.expiresAt !== null) expect(requested.expiresAt).not.toBeNull();
      }),
      { numRuns: 5000 },
    );
  });

  test('property: the same holds when granted vaults are looked up (project, restricted)', () => {
    const universe: VaultRef[] = [];
    for (const projectId of [A, B, 'prj_c'])
      for (const restricted of [false, true])
        universe.push({ id: `vlt_${projectId}_${restricted}`, projectId, restricted });
    const resolve = (id: string) => universe.find((v) => v.id === id);
    const ids = (pool: string[]) => fc.uniqueArray(fc.constantFrom(...pool), { maxLength: 2 });
    const grant = fc
      .record({
        role: fc.constantFrom(...ROLES),
        projectIds: ids([A, B, 'prj_c']),
        vaultIds: ids([...universe.map((v) => v.id), 'vlt_missing']),
        scopes: fc.constant(null),
        expiresAt: fc.constant(null),
      })
      .map((g): KeyGrant => (g.role === 'admin' ? { ...g, projectIds: [], vaultIds: [] } : g));
    let permitted = 0;
    fc.assert(
      fc.property(grant, grant, (grantor, requested) => {
        if (grantProblem(grantor, requested, resolve) !== undefined) return;
        permitted++;
        for (const v of universe)
          if (canSeeVault(requested, v)) expect(canSeeVault(grantor, v)).toBe(true);
        for (const project of [A, B, 'prj_c'])
          if (hasProjectScope(requested, project))
            expect(hasProjectScope(grantor, project)).toBe(true);
      }),
      { numRuns: 5000 },
    );
    expect(permitted).toBeGreaterThan(100); // the property is not vacuous
  });
});
