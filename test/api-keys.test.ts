/**
 * `/v1/api-keys` and `secryn keys` end to end: tokens shown once and stored only as hashes,
 * validation, no escalation, pagination, updates, revocation on the very next request,
 * coalesced `last_used_at`, audit entries, and the CLI working beside a running server.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createAccessLayer, type AccessLayer } from '../src/access/plugin.ts';
import type { KeyGrant } from '../src/access/principal.ts';
import { auditRecorder } from '../src/audit/recorder.ts';
import { auditRoutes } from '../src/audit/routes.ts';
import { manualClock } from '../src/clock.ts';
import { loadConfig } from '../src/config/load.ts';
import { buildFeatures } from '../src/features.ts';
import { createInstance, openInstance, type Instance } from '../src/instance.ts';
import { apiKeyRoutes } from '../src/keys/routes.ts';
import { insertProject, newProjectId } from '../src/projects/service.ts';
import { insertVault, newVaultId } from '../src/vaults/service.ts';
import { findApiKey, insertApiKey, newApiKeyId } from '../src/keys/service.ts';
import { buildApp, startServer } from '../src/server.ts';
import { call, memoryLogger, runCli, tempDir, testConfig, writeConfig } from './harness.ts';

// Real projects and vaults, created in beforeAll: key limits must name existing ones.
let PROJECT_A: string;
let PROJECT_B: string;
/** A restricted vault in project A. */
let VAULT_1: string;
/** A vault in project B. */
let VAULT_B: string;

type ApiKey = {
  id: string;
  name: string;
  role: string;
  project_ids: string[];
  vault_ids: string[];
  scopes: string[] | null;
  expires_at: string | null;
  last_used_at: string | null;
  created_at: string;
  revoked_at: string | null;
  prefix: string;
  token?: string;
};
type ErrorBody = { error: { code: string; message: string; details?: Record<string, unknown> } };

describe('/v1/api-keys', () => {
  const dir = tempDir();
  const clock = manualClock(Date.UTC(2030, 0, 1));
  const logger = memoryLogger();
  let instance: Instance;
  let access: AccessLayer;
  let app: ReturnType<typeof buildApp>;
  let adminToken: string;

  const keyFor = (over: Partial<KeyGrant> & { name?: string }) =>
    insertApiKey(
      instance.db,
      newApiKeyId(),
      {
        name: 'k',
        role: 'reader',
        projectIds: [],
        vaultIds: [],
        scopes: null,
        expiresAt: null,
        ...over,
      },
      'test',
      clock.now(),
    );
  const as = (token: string) => ({ authorization: `Bearer ${token}` });
  const json = async <T>(response: Response) => (await response.json()) as T;

  beforeAll(() => {
    instance = createInstance(
      testConfig(dir.path, { rate_limit: { burst: 10_000, requests_per_minute: 10_000 } }),
      logger,
      undefined,
      { clock },
    );
    access = createAccessLayer(instance);
    app = buildApp(instance, {
      features: [access.plugin, apiKeyRoutes(instance, access.lastUsed), auditRoutes(instance)],
      recordOutcome: auditRecorder(instance),
    });
    adminToken = keyFor({ role: 'admin' }).token;
    const now = clock.now();
    const project = (name: string) =>
      insertProject(
        instance.db,
        { id: newProjectId(), name, description: null, createdBy: 'test' },
        now,
      ).id;
    const vault = (projectId: string, restricted: boolean) =>
      insertVault(
        instance.db,
        {
          id: newVaultId(),
          projectId,
          name: `v-${restricted}`,
          description: null,
          restricted,
          createdBy: 'test',
        },
        now,
      ).id;
    PROJECT_A = project('a');
    PROJECT_B = project('b');
    VAULT_1 = vault(PROJECT_A, true);
    VAULT_B = vault(PROJECT_B, false);
  });
  afterAll(async () => {
    await access.stop();
    await instance.close();
    dir[Symbol.dispose]();
  });

  test('create: 201 with Location and the token once; only its hash is stored; it works at once', async () => {
    const response = await call(app, 'POST', '/v1/api-keys', {
      headers: as(adminToken),
      body: {
        name: 'deploy bot',
        role: 'access',
        vault_ids: [VAULT_1],
        scopes: ['resources:read'],
        expires_at: '2030-06-01T00:00:00+02:00',
      },
    });
    expect(response.status).toBe(201);
    const created = await json<ApiKey>(response);
    expect(response.headers.get('location')).toBe(`/v1/api-keys/${created.id}`);
    // (a copy: toMatchObject may write its matchers into the object it checks)
    expect({ ...created }).toMatchObject({
      id: expect.stringMatching(/^key_[0-9a-z]{26}$/),
      name: 'deploy bot',
      role: 'access',
      project_ids: [],
      vault_ids: [VAULT_1],
      scopes: ['resources:read'],
      expires_at: '2030-05-31T22:00:00Z',
      last_used_at: null,
      created_at: '2030-01-01T00:00:00Z',
      revoked_at: null,
    });
    expect(created.token).toMatch(/^scr_[0-9A-Za-z]{61}$/);
    expect(created.token!.startsWith(created.prefix)).toBe(true);
    const fetched = await json<ApiKey>(
      await call(app, 'GET', `/v1/api-keys/${created.id}`, { headers: as(adminToken) }),
    );
    const { token: _shownOnce, ...withoutToken } = created;
    expect(fetched).toEqual(withoutToken);
    expect(JSON.stringify(fetched)).not.toContain(created.token!);
    // Stored only as a hash: the token appears nowhere in the database, logs or audit log.
    const dump = JSON.stringify(instance.sqlite.query('SELECT * FROM api_keys').all());
    expect(dump).not.toContain(created.token!.slice(16));
    expect(readFileSync(instance.config.storage.path).includes(created.token!.slice(16))).toBe(
      false,
    );
    expect(logger.lines.join('\n')).not.toContain(created.token!.slice(16));
    // It authenticates immediately (an access key cannot list keys, but it is not a 401).
    expect((await call(app, 'GET', '/v1/api-keys', { headers: as(created.token!) })).status).toBe(
      403,
    );
    const entry = instance.sqlite
      .query(
        `SELECT action, outcome, status, target_type, target_id FROM audit_log WHERE action = 'api_key.create'`,
      )
      .get();
    expect(entry).toEqual({
      action: 'api_key.create',
      outcome: 'success',
      status: 201,
      target_type: 'api_key',
      target_id: created.id,
    });
  });

  test('validation: 400 naming the field, unknown fields included', async () => {
    const cases: [unknown, string][] = [
      [{ name: 'x', role: 'reader', colour: 'red' }, 'colour'],
      [{ role: 'reader' }, 'name'],
      [{ name: 'x' }, 'role'], // never defaulted (t.UnionEnum would default to admin)
      [{ name: '', role: 'reader' }, 'name'],
      [{ name: 'x', role: 'root' }, 'role'],
      [{ name: 'x', role: 'reader', project_ids: ['nope'] }, 'project_ids.0'],
      [{ name: 'x', role: 'reader', project_ids: [PROJECT_A, PROJECT_A] }, 'project_ids'],
      [{ name: 'x', role: 'reader', scopes: ['resources:write'] }, 'scopes'],
      [{ name: 'x', role: 'reader', scopes: [] }, 'scopes'],
      [{ name: 'x', role: 'reader', scopes: ['root:all'] }, 'scopes'],
      [{ name: 'x', role: 'reader', expires_at: 'tomorrow' }, 'expires_at'],
      [{ name: 'x', role: 'reader', expires_at: '2029-01-01T00:00:00Z' }, 'expires_at'],
      [{ name: 'x', role: 'admin', project_ids: [PROJECT_A] }, 'project_ids'],
      [
        { name: 'x', role: 'reader', project_ids: ['prj_01jq3v6x1nf4r8s2k9w7y5t3zz'] },
        'project_ids',
      ],
      [{ name: 'x', role: 'reader', vault_ids: ['vlt_01jq3v6x1nf4r8s2k9w7y5t3zz'] }, 'vault_ids'],
    ];
    for (const [body, field] of cases) {
      const response = await call(app, 'POST', '/v1/api-keys', { headers: as(adminToken), body });
      const error = (await json<ErrorBody>(response)).error;
      expect(`${JSON.stringify(body)} → ${response.status} ${String(error.details?.field)}`).toBe(
        `${JSON.stringify(body)} → 400 ${field}`,
      );
      expect(error.code).toBe('INVALID_REQUEST');
    }
  });

  test('no escalation: 403 naming the field', async () => {
    const manager = keyFor({ role: 'manager' }).token;
    const limited = keyFor({ role: 'manager', projectIds: [PROJECT_A] }).token;
    const expiring = keyFor({ role: 'manager', expiresAt: Date.UTC(2030, 2, 1) }).token;
    const scoped = keyFor({ role: 'manager', scopes: ['api_keys:write', 'resources:read'] }).token;
    // Limited to one vault of project B: it cannot grant a vault of project A.
    const vaultLimited = keyFor({ role: 'manager', vaultIds: [VAULT_B] }).token;
    const cases: [string, unknown, string][] = [
      [manager, { name: 'x', role: 'admin' }, 'role'],
      [limited, { name: 'x', role: 'reader' }, 'project_ids'],
      [limited, { name: 'x', role: 'reader', project_ids: [PROJECT_A, PROJECT_B] }, 'project_ids'],
      [
        limited,
        { name: 'x', role: 'reader', project_ids: [PROJECT_A], vault_ids: [VAULT_B] },
        'vault_ids',
      ],
      [expiring, { name: 'x', role: 'reader' }, 'expires_at'],
      [expiring, { name: 'x', role: 'reader', expires_at: '2030-03-01T00:00:01Z' }, 'expires_at'],
      [scoped, { name: 'x', role: 'contributor' }, 'role'],
      [scoped, { name: 'x', role: 'reader', scopes: ['resources:read', 'vaults:read'] }, 'scopes'],
      // A vault outside its projects, even one that does not exist: the same 403.
      [limited, { name: 'x', role: 'access', vault_ids: [VAULT_B] }, 'vault_ids'],
      [
        limited,
        { name: 'x', role: 'access', vault_ids: ['vlt_01jq3v6x1nf4r8s2k9w7y5t3zz'] },
        'vault_ids',
      ],
      [vaultLimited, { name: 'x', role: 'access', vault_ids: [VAULT_1] }, 'vault_ids'],
    ];
    for (const [token, body, field] of cases) {
      const response = await call(app, 'POST', '/v1/api-keys', { headers: as(token), body });
      const error = (await json<ErrorBody>(response)).error ?? {};
      expect(`${JSON.stringify(body)} → ${response.status} ${String(error.details?.field)}`).toBe(
        `${JSON.stringify(body)} → 403 ${field}`,
      );
    }
    const allowed: [string, unknown][] = [
      [limited, { name: 'ok', role: 'manager', project_ids: [PROJECT_A] }],
      [expiring, { name: 'ok', role: 'reader', expires_at: '2030-03-01T00:00:00Z' }],
      [scoped, { name: 'ok', role: 'reader', scopes: ['resources:read'] }],
      // A manager of project A sees its restricted vault, so it may grant it.
      [limited, { name: 'ok', role: 'access', vault_ids: [VAULT_1] }],
    ];
    for (const [token, body] of allowed)
      expect((await call(app, 'POST', '/v1/api-keys', { headers: as(token), body })).status).toBe(
        201,
      );
  });

  test('list: paginated newest first, revoked keys included, Link header, page/limit validated', async () => {
    const limited = keyFor({ role: 'manager', projectIds: [PROJECT_B] }).token;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      clock.advance(1000);
      ids.unshift(
        keyFor({ role: 'reader', projectIds: [PROJECT_B], name: `b${i}` } as Partial<KeyGrant>).row
          .id,
      );
    }
    const page1 = await call(app, 'GET', '/v1/api-keys?limit=2', { headers: as(limited) });
    const body1 = await json<{ data: ApiKey[]; pagination: Record<string, number> }>(page1);
    // 5 readers, itself, and the earlier key limited to a vault of project B (seen via lookup)
    expect(body1.pagination).toEqual({ total: 7, page: 1, limit: 2 });
    expect(body1.data.map((k) => k.id)).toEqual(ids.slice(0, 2));
    expect(page1.headers.get('link')).toBe('</v1/api-keys?limit=2&page=2>; rel="next"');
    const page4 = await call(app, 'GET', '/v1/api-keys?page=4&limit=2', { headers: as(limited) });
    expect(page4.headers.get('link')).toBe('</v1/api-keys?page=3&limit=2>; rel="prev"');
    await call(app, 'DELETE', `/v1/api-keys/${ids[0]}`, { headers: as(limited) });
    const afterRevoke = await json<{ data: ApiKey[] }>(
      await call(app, 'GET', '/v1/api-keys?limit=1', { headers: as(limited) }),
    );
    expect(afterRevoke.data[0]).toMatchObject({ id: ids[0], revoked_at: '2030-01-01T00:00:05Z' });
    for (const [query, field] of [
      ['page=0', 'page'],
      ['page=x', 'page'],
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['limit=2.5', 'limit'],
    ]) {
      const response = await call(app, 'GET', `/v1/api-keys?${query}`, { headers: as(limited) });
      expect(
        `${query}: ${response.status} ${(await json<ErrorBody>(response)).error.details?.field}`,
      ).toBe(`${query}: 400 ${field}`);
    }
  });

  test('update: name, scopes and expiry within limits; revoked keys cannot change', async () => {
    const expiring = keyFor({ role: 'manager', expiresAt: Date.UTC(2030, 2, 1) }).token;
    // Expires before the editor: it could have created it.
    const target = keyFor({ role: 'contributor', expiresAt: Date.UTC(2030, 1, 15) }).row.id;
    const put = (token: string, body: unknown, id = target) =>
      call(app, 'PUT', `/v1/api-keys/${id}`, { headers: as(token), body });
    const renamed = await put(expiring, { name: 'renamed', scopes: ['resources:read'] });
    expect(renamed.status).toBe(200);
    expect(await json<ApiKey>(renamed)).toMatchObject({
      name: 'renamed',
      scopes: ['resources:read'],
    });
    expect(
      (await json<ErrorBody>(await put(expiring, { expires_at: null }))).error.details,
    ).toMatchObject({ field: 'expires_at' });
    expect((await put(expiring, { expires_at: '2030-02-01T00:00:00Z' })).status).toBe(200);
    expect((await put(adminToken, { scopes: null })).status).toBe(200);
    expect((await put(adminToken, { scopes: ['resources:delete'] })).status).toBe(400);
    expect((await json<ErrorBody>(await put(adminToken, { role: 'admin' }))).error.details).toEqual(
      {
        field: 'role',
        reason: 'Unknown field',
      },
    );
    const scoped = keyFor({ role: 'manager', scopes: ['api_keys:write', 'resources:read'] }).token;
    expect((await put(scoped, { scopes: null })).status).toBe(403);
    expect(
      (await call(app, 'DELETE', `/v1/api-keys/${target}`, { headers: as(adminToken) })).status,
    ).toBe(200);
    const conflict = await put(adminToken, { name: 'again' });
    expect(conflict.status).toBe(409);
    expect(findApiKey(instance.db, target)?.name).toBe('renamed');
    // An empty body on a revoked key is the same conflict (it was a 500, "No values to set").
    const empty = await put(adminToken, {});
    expect(empty.status).toBe(409);
    expect((await json<ErrorBody>(empty)).error.code).toBe('CONFLICT');
    // On a live key it is a no-op answered with the key as it is.
    const live = keyFor({ role: 'reader', expiresAt: Date.UTC(2030, 1, 1) }).row.id;
    const unchanged = await put(adminToken, {}, live);
    expect(unchanged.status).toBe(200);
    expect(await json<ApiKey>(unchanged)).toMatchObject({ id: live, name: 'k' });
  });

  test('update follows the creation rules against the key as it is and as it will be', async () => {
    const put = (token: string, id: string, body: unknown) =>
      call(app, 'PUT', `/v1/api-keys/${id}`, { headers: as(token), body });
    const fullManager = keyFor({ role: 'manager', name: 'full', expiresAt: Date.UTC(2030, 5, 1) });
    // The review's case: a manager narrowed to key management extended a full manager's life.
    const keyAdmin = keyFor({ role: 'manager', scopes: ['api_keys:read', 'api_keys:write'] }).token;
    const extended = await put(keyAdmin, fullManager.row.id, { expires_at: null });
    expect(extended.status).toBe(403);
    expect((await json<ErrorBody>(extended)).error.details).toMatchObject({ field: 'role' });
    // Least privilege: not even a rename, or a narrowing, of a key it could not have created.
    expect((await put(keyAdmin, fullManager.row.id, { name: 'x' })).status).toBe(403);
    expect((await put(keyAdmin, fullManager.row.id, {})).status).toBe(403);
    expect((await put(keyAdmin, fullManager.row.id, { scopes: ['api_keys:read'] })).status).toBe(
      403,
    );
    const stored = findApiKey(instance.db, fullManager.row.id)!;
    expect(stored).toMatchObject({ name: 'full', scopes: null, expiresAt: Date.UTC(2030, 5, 1) });
    // It can still see it, and revoke it (revoking only takes access away).
    expect(
      (await call(app, 'GET', `/v1/api-keys/${fullManager.row.id}`, { headers: as(keyAdmin) }))
        .status,
    ).toBe(200);
    // A key it could create it may change, but only into one it could create.
    const narrow = keyFor({ role: 'manager', scopes: ['api_keys:read'] }).row.id;
    expect((await put(keyAdmin, narrow, { name: 'renamed' })).status).toBe(200);
    const widened = await put(keyAdmin, narrow, { scopes: null });
    expect(widened.status).toBe(403);
    expect((await json<ErrorBody>(widened)).error.details).toMatchObject({ field: 'role' });
    // An expiring editor: not onto a key that outlives it, not beyond its own expiry.
    const expiring = keyFor({ role: 'manager', expiresAt: Date.UTC(2030, 2, 1) }).token;
    const forever = keyFor({ role: 'reader' }).row.id;
    const renamed = await put(expiring, forever, { name: 'x' });
    expect(renamed.status).toBe(403);
    expect((await json<ErrorBody>(renamed)).error.details).toMatchObject({ field: 'expires_at' });
    expect((await put(expiring, forever, { expires_at: '2030-02-01T00:00:00Z' })).status).toBe(403);
    const shortLived = keyFor({ role: 'reader', expiresAt: Date.UTC(2030, 1, 1) }).row.id;
    expect((await put(expiring, shortLived, { expires_at: '2030-02-15T00:00:00Z' })).status).toBe(
      200,
    );
    expect((await put(expiring, shortLived, { expires_at: '2030-04-01T00:00:00Z' })).status).toBe(
      403,
    );
    // A project manager and a key reaching a vault of another project: hidden, as before.
    const projectManager = keyFor({ role: 'manager', projectIds: [PROJECT_A] }).token;
    const crossing = keyFor({ role: 'reader', projectIds: [PROJECT_A], vaultIds: [VAULT_B] });
    expect((await put(projectManager, crossing.row.id, { name: 'x' })).status).toBe(404);
    const revoked = await call(app, 'DELETE', `/v1/api-keys/${fullManager.row.id}`, {
      headers: as(keyAdmin),
    });
    expect(revoked.status).toBe(200);
  });

  test('revoke: effective on the very next request; idempotent; audited', async () => {
    const { row, token } = keyFor({ role: 'manager' });
    expect((await call(app, 'GET', '/v1/api-keys?limit=1', { headers: as(token) })).status).toBe(
      200,
    );
    const response = await call(app, 'DELETE', `/v1/api-keys/${row.id}`, { headers: as(token) });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ id: row.id, deleted: true });
    expect((await call(app, 'GET', '/v1/api-keys?limit=1', { headers: as(token) })).status).toBe(
      401,
    );
    const again = await call(app, 'DELETE', `/v1/api-keys/${row.id}`, { headers: as(adminToken) });
    expect(again.status).toBe(200);
    expect(findApiKey(instance.db, row.id)?.revokedAt).toBe(clock.now());
    const actions = instance.sqlite
      .query(`SELECT action, outcome, actor_id FROM audit_log WHERE target_id = ? ORDER BY seq`)
      .all(row.id);
    expect(actions).toEqual([
      { action: 'api_key.revoke', outcome: 'success', actor_id: row.id },
      { action: 'api_key.revoke', outcome: 'success', actor_id: expect.stringMatching(/^key_/) },
    ]);
    expect(
      (
        await call(app, 'GET', `/v1/api-keys/key_01jq3v6x1nf4r8s2k9w7y5t3zz`, {
          headers: as(adminToken),
        })
      ).status,
    ).toBe(404);
  });

  test('creating and revoking emit api_key.created / api_key.revoked with metadata only', async () => {
    const created = await call(app, 'POST', '/v1/api-keys', {
      headers: as(adminToken),
      body: { name: 'evented', role: 'reader', project_ids: [PROJECT_B] },
    });
    expect(created.status).toBe(201);
    const key = await json<ApiKey>(created);
    expect(
      (await call(app, 'DELETE', `/v1/api-keys/${key.id}`, { headers: as(adminToken) })).status,
    ).toBe(200);
    expect(
      (await call(app, 'DELETE', `/v1/api-keys/${key.id}`, { headers: as(adminToken) })).status,
    ).toBe(200);
    const events = instance.sqlite
      .query<
        { type: string; project_id: string | null; payload: string },
        [string]
      >(`SELECT type, project_id, payload FROM events WHERE payload LIKE '%' || ? || '%' ORDER BY rowid`)
      .all(key.id);
    expect(events.map((e) => [e.type, e.project_id])).toEqual([
      ['api_key.created', PROJECT_B],
      ['api_key.revoked', PROJECT_B],
    ]);
    for (const event of events) {
      expect(event.payload).not.toContain(key.token!);
      expect(event.payload).not.toContain('token');
    }
  });

  test('last_used_at: shown at once, written in a batch later, no write per request', async () => {
    const { row, token } = keyFor({ role: 'manager' });
    clock.advance(60_000);
    await call(app, 'GET', '/v1/api-keys?limit=1', { headers: as(token) });
    expect(findApiKey(instance.db, row.id)?.lastUsedAt).toBeNull();
    const shown = await json<ApiKey>(
      await call(app, 'GET', `/v1/api-keys/${row.id}`, { headers: as(adminToken) }),
    );
    expect(shown.last_used_at).toBe(new Date(clock.now()).toISOString().replace('.000', ''));
    await access.lastUsed.flush();
    expect(findApiKey(instance.db, row.id)?.lastUsedAt).toBe(clock.now());
  });
});

describe('/v1/api-keys with Idempotency-Key (the app as serve assembles it)', () => {
  test('a retry gets the first response (same key, same token) and creates nothing', async () => {
    using dir = tempDir();
    const instance = createInstance(testConfig(dir.path), memoryLogger());
    try {
      const features = buildFeatures(instance);
      const app = buildApp(instance, {
        features: features.features,
        recordOutcome: features.recordOutcome,
      });
      const admin = insertApiKey(
        instance.db,
        newApiKeyId(),
        { name: 'a', role: 'admin', projectIds: [], vaultIds: [], scopes: null, expiresAt: null },
        'test',
        Date.now(),
      ).token;
      const post = (body: unknown) =>
        call(app, 'POST', '/v1/api-keys', {
          body,
          headers: { authorization: `Bearer ${admin}`, 'idempotency-key': 'create-ci-key-1' },
        });
      const first = await post({ name: 'ci', role: 'reader' });
      expect(first.status).toBe(201);
      const created = (await first.json()) as ApiKey;
      const retry = await post({ role: 'reader', name: 'ci' });
      expect(retry.status).toBe(201);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(retry.headers.get('location')).toBe(`/v1/api-keys/${created.id}`);
      expect(((await retry.json()) as ApiKey).token).toBe(created.token!);
      expect((await post({ name: 'other', role: 'reader' })).status).toBe(409);
      const count = instance.sqlite
        .query(`SELECT count(*) AS n FROM api_keys WHERE name = 'ci'`)
        .get();
      expect(count).toEqual({ n: 1 });
    } finally {
      await instance.close();
    }
  });
});

describe('secryn keys (CLI) beside a running server', () => {
  test('init prints the first admin key once; keys create/list/revoke act on the live server', async () => {
    using dir = tempDir();
    const configPath = writeConfig(dir.path);
    const init = await runCli(['init', '--config', configPath, '--json']);
    expect(init.exitCode).toBe(0);
    const { admin_key } = JSON.parse(init.stdout) as { admin_key: { id: string; token: string } };
    expect(admin_key.token).toMatch(/^scr_/);

    const { config } = loadConfig({ path: configPath });
    const instance = openInstance(config, memoryLogger());
    const features = buildFeatures(instance);
    const running = startServer(instance, { features: features.features, port: 0 });
    await features.start();
    const base = `http://127.0.0.1:${running.server.port}`;
    const get = (token: string, path = '/v1/api-keys') =>
      fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
    try {
      expect((await get(admin_key.token)).status).toBe(200);
      const newProject = async (name: string) => {
        const response = await fetch(`${base}/v1/projects`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${admin_key.token}`,
            'content-type': 'application/json',
          },
          body: JSON.stringify({ name }),
        });
        expect(response.status).toBe(201);
        return ((await response.json()) as { id: string }).id;
      };
      const projectA = await newProject('a');
      const projectB = await newProject('b');

      const created = await runCli([
        'keys',
        'create',
        '--config',
        configPath,
        '--name',
        'ci',
        '--role',
        'manager',
        '--project',
        projectA,
        '--project=' + projectB,
        '--scope',
        'api_keys:read,resources:read',
        '--expires-in',
        '90d',
        '--json',
      ]);
      expect(created.stderr).toBe('');
      expect(created.exitCode).toBe(0);
      const key = JSON.parse(created.stdout) as ApiKey;
      expect({ ...key }).toMatchObject({
        role: 'manager',
        project_ids: [projectA, projectB],
        scopes: ['api_keys:read', 'resources:read'],
      });
      expect(Date.parse(key.expires_at!) - Date.now()).toBeGreaterThan(89 * 86_400_000);
      expect((await get(key.token!)).status).toBe(200); // the running server sees it at once

      const text = await runCli([
        'keys',
        'create',
        '--config',
        configPath,
        '--name',
        'r',
        '--role',
        'reader',
      ]);
      expect(text.exitCode).toBe(0);
      const textToken = /token: (scr_\S+)/.exec(text.stdout)?.[1];
      expect(textToken).toBeDefined();
      expect(text.stdout.match(/scr_[0-9A-Za-z]{61}/g)).toHaveLength(1); // printed once

      const list = await runCli(['keys', 'list', '--config', configPath, '--json']);
      const listed = JSON.parse(list.stdout) as ApiKey[];
      expect(listed.map((k) => k.name)).toEqual(['r', 'ci', 'initial admin']);
      expect(list.stdout).not.toContain('scr_' + key.token!.slice(4, 30));
      const table = await runCli(['keys', 'list', '--config', configPath]);
      expect(table.stdout).toContain('initial admin');
      expect(table.stdout).toContain('active');

      const revoked = await runCli(['keys', 'revoke', key.id, '--config', configPath]);
      expect(revoked.exitCode).toBe(0);
      expect(revoked.stdout).toContain(`revoked API key ${key.id}`);
      expect((await get(key.token!)).status).toBe(401); // the very next request
      const twice = await runCli(['keys', 'revoke', key.id, '--config', configPath]);
      expect(twice.exitCode).toBe(0);
      expect(twice.stdout).toContain('already revoked');

      const missing = await runCli([
        'keys',
        'revoke',
        'key_01jq3v6x1nf4r8s2k9w7y5t3zz',
        '--config',
        configPath,
      ]);
      expect(missing.exitCode).toBe(1);
      expect(missing.stderr.trim()).toBe('secryn: no API key key_01jq3v6x1nf4r8s2k9w7y5t3zz');
      for (const [args, message] of [
        [['--role', 'root'], '--role must be one of'],
        [
          ['--role', 'reader', '--scope', 'resources:write'],
          '--scope: Not permissions of the reader role',
        ],
        [['--role', 'reader', '--scope', 'nope'], '--scope: unknown permission "nope"'],
        [['--role', 'reader', '--expires-in', '3 days'], '--expires-in must be a duration'],
        [['--role', 'admin', '--project', projectA], '--project: An admin key'],
      ] as const) {
        const bad = await runCli([
          'keys',
          'create',
          '--config',
          configPath,
          '--name',
          'x',
          ...args,
        ]);
        expect(`${bad.exitCode} ${bad.stderr.trim()}`).toStartWith(`2 secryn: ${message}`);
      }

      const entries = instance.sqlite
        .query(
          `SELECT action, actor_type, target_id FROM audit_log WHERE actor_type = 'local_user' ORDER BY seq`,
        )
        .all();
      expect(entries).toEqual([
        { action: 'api_key.create', actor_type: 'local_user', target_id: admin_key.id },
        { action: 'api_key.create', actor_type: 'local_user', target_id: key.id },
        {
          action: 'api_key.create',
          actor_type: 'local_user',
          target_id: expect.stringMatching(/^key_/),
        },
        { action: 'api_key.revoke', actor_type: 'local_user', target_id: key.id },
      ]);
    } finally {
      await features.stop();
      await running.stop();
    }
    // last_used_at of the admin key was flushed on stop.
    const reopened = openInstance(config, memoryLogger());
    expect(findApiKey(reopened.db, admin_key.id)?.lastUsedAt).toBeNumber();
    await reopened.close();
    expect(readFileSync(join(dir.path, 'data/secryn.db')).includes(admin_key.token.slice(16))).toBe(
      false,
    );
  }, 60_000);
});
