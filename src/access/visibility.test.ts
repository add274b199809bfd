import { Database } from 'bun:sqlite';
import { describe, expect, test } from 'bun:test';
import { and } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/bun-sqlite';
import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import fc from 'fast-check';
import { NotFoundError } from '../errors.ts';
import { requestMeta, setRequestMeta } from '../http/request-meta.ts';
import { ROLES } from './permissions.ts';
import { principalFor, setPrincipal, type KeyGrant } from './principal.ts';
import {
  assertVaultVisible,
  canSeeProject,
  canSeeVault,
  hasProjectScope,
  projectScopeFilter,
  visibleProjectFilter,
  visibleVaultFilter,
  type VaultRef,
} from './visibility.ts';

const key = (over: Partial<KeyGrant> = {}): KeyGrant => ({
  role: 'contributor',
  projectIds: [],
  vaultIds: [],
  scopes: null,
  expiresAt: null,
  ...over,
});
const open: VaultRef = { id: 'vlt_open', projectId: 'prj_a', restricted: false };
const closed: VaultRef = { id: 'vlt_closed', projectId: 'prj_a', restricted: true };
const elsewhere: VaultRef = { id: 'vlt_b', projectId: 'prj_b', restricted: false };

describe('project and vault reach', () => {
  test('restricted vaults: admins, managers of the project, explicit grants only', () => {
    expect(canSeeVault(key({ role: 'admin' }), closed)).toBe(true);
    expect(canSeeVault(key({ role: 'manager', projectIds: ['prj_a'] }), closed)).toBe(true);
    expect(canSeeVault(key({ role: 'manager', projectIds: ['prj_b'] }), closed)).toBe(false);
    for (const role of ['contributor', 'reader', 'access'] as const) {
      expect(canSeeVault(key({ role }), closed)).toBe(false);
      expect(canSeeVault(key({ role }), open)).toBe(true);
      expect(canSeeVault(key({ role, vaultIds: [closed.id] }), closed)).toBe(true);
    }
  });

  test('project limits and vault grants', () => {
    const limited = key({ projectIds: ['prj_a'] });
    expect(canSeeVault(limited, open)).toBe(true);
    expect(canSeeVault(limited, elsewhere)).toBe(false);
    const vaultOnly = key({ role: 'access', vaultIds: [elsewhere.id] });
    expect(canSeeVault(vaultOnly, elsewhere)).toBe(true);
    expect(canSeeVault(vaultOnly, open)).toBe(false);
    expect(hasProjectScope(vaultOnly, 'prj_b')).toBe(false);
    expect(canSeeProject(vaultOnly, 'prj_b', ['prj_b'])).toBe(true);
    expect(canSeeProject(vaultOnly, 'prj_a', ['prj_b'])).toBe(false);
    const both = key({ projectIds: ['prj_a'], vaultIds: [elsewhere.id] });
    expect([open, closed, elsewhere].map((v) => canSeeVault(both, v))).toEqual([true, false, true]);
  });

  test('assertVaultVisible answers a 404 and marks the request as a denial', () => {
    const request = new Request('http://localhost/v1/vaults/vlt_closed');
    setRequestMeta(request, { requestId: 'req_test_0001', startedAt: 0, clientIp: '127.0.0.1' });
    setPrincipal(request, principalFor({ ...key(), keyId: 'key_x', name: 'x' }));
    expect(() => assertVaultVisible(request, open)).not.toThrow();
    expect(requestMeta(request).denied).toBeUndefined();
    expect(() => assertVaultVisible(request, closed)).toThrow(NotFoundError);
    expect(requestMeta(request).denied).toBe(true);
  });

  test('property: the SQL filters select exactly what the predicates allow', () => {
    const sqlite = new Database(':memory:');
    sqlite.run(
      'CREATE TABLE v (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, restricted INTEGER NOT NULL)',
    );
    const vaults = sqliteTable('v', {
      id: text('id').primaryKey(),
      projectId: text('project_id').notNull(),
      restricted: integer('restricted', { mode: 'boolean' }).notNull(),
    });
    const db = drizzle({ client: sqlite });
    const all: VaultRef[] = [];
    for (const projectId of ['prj_a', 'prj_b', 'prj_c'])
      for (const restricted of [false, true])
        for (let i = 0; i < 2; i++)
          all.push({ id: `vlt_${projectId}_${restricted}_${i}`, projectId, restricted });
    db.insert(vaults).values(all).run();
    const ids = (pool: string[]) => fc.uniqueArray(fc.constantFrom(...pool), { maxLength: 3 });
    const grant = fc.record({
      role: fc.constantFrom(...ROLES),
      projectIds: ids(['prj_a', 'prj_b', 'prj_c', 'prj_none']),
      vaultIds: ids([...all.map((v) => v.id), 'vlt_none']),
    });
    fc.assert(
      fc.property(grant, ({ role, projectIds, vaultIds }) => {
        const k = key({ role, projectIds, vaultIds });
        const viaSql = db
          .select({ id: vaults.id })
          .from(vaults)
          .where(and(visibleVaultFilter(k, vaults)))
          .all()
          .map((r) => r.id)
          .sort();
        expect(viaSql).toEqual(
          all
            .filter((v) => canSeeVault(k, v))
            .map((v) => v.id)
            .sort(),
        );
        const projects = ['prj_a', 'prj_b', 'prj_c'];
        const granted = all.filter((v) => vaultIds.includes(v.id)).map((v) => v.projectId);
        const visibleProjects = db
          .selectDistinct({ p: vaults.projectId })
          .from(vaults)
          .where(and(visibleProjectFilter(k, vaults.projectId, granted)))
          .all()
          .map((r) => r.p)
          .sort();
        expect(visibleProjects).toEqual(projects.filter((p) => canSeeProject(k, p, granted)));
        const scoped = db
          .selectDistinct({ p: vaults.projectId })
          .from(vaults)
          .where(and(projectScopeFilter(k, vaults.projectId)))
          .all()
          .map((r) => r.p)
          .sort();
        expect(scoped).toEqual(projects.filter((p) => hasProjectScope(k, p)));
      }),
      { numRuns: 500 },
    );
    sqlite.close();
  });
});
