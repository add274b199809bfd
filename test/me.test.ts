/**
 * `GET /v1/me`: any valid key sees itself (role, limits, scopes, expiry, and the permissions it
 * holds after scopes), the request is audited with the key as target, and nothing secret (the
 * token, its hash) is in the answer.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { manualClock } from '../src/clock.ts';
import { buildFeatures } from '../src/features.ts';
import { createInstance, type Instance } from '../src/instance.ts';
import { insertApiKey, newApiKeyId } from '../src/keys/service.ts';
import { buildApp } from '../src/server.ts';
import { call, memoryLogger, tempDir, testConfig } from './harness.ts';

describe('GET /v1/me', () => {
  const dir = tempDir();
  const clock = manualClock();
  let instance: Instance;
  let app: ReturnType<typeof buildApp>;

  beforeAll(() => {
    instance = createInstance(testConfig(dir.path), memoryLogger(), undefined, { clock });
    const features = buildFeatures(instance);
    app = buildApp(instance, {
      features: features.features,
      recordOutcome: features.recordOutcome,
    });
  });
  afterAll(async () => {
    await instance.close();
    dir[Symbol.dispose]();
  });

  const me = (token: string) =>
    call(app, 'GET', '/v1/me', { headers: { authorization: `Bearer ${token}` } });

  test('a scoped, limited, expiring key sees its own grant and what it may do', async () => {
    const expiresAt = clock.now() + 86_400_000;
    const { row, token } = insertApiKey(
      instance.db,
      newApiKeyId(),
      {
        name: 'ci deploy',
        role: 'access',
        projectIds: [],
        vaultIds: ['vlt_0000000000000000000000000a'],
        scopes: ['resources:read', 'resources:reveal', 'api_keys:write'],
        expiresAt,
      },
      'test',
      clock.now(),
    );
    const response = await me(token);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({
      id: row.id,
      name: 'ci deploy',
      role: 'access',
      project_ids: [],
      vault_ids: ['vlt_0000000000000000000000000a'],
      scopes: ['resources:read', 'resources:reveal', 'api_keys:write'],
      expires_at: new Date(expiresAt).toISOString().replace('.000Z', 'Z'),
      // The scope the role lacks (api_keys:write) grants nothing.
      permissions: ['resources:read', 'resources:reveal'],
    });
    expect(text).not.toContain(token);
    expect(text).not.toContain(token.slice(4, 20));
  });

  test('an admin key holds every permission; the call is audited with the key as target', async () => {
    const { row, token } = insertApiKey(
      instance.db,
      newApiKeyId(),
      { name: 'root', role: 'admin', projectIds: [], vaultIds: [], scopes: null, expiresAt: null },
      'test',
      clock.now(),
    );
    const body = (await (await me(token)).json()) as { permissions: string[]; expires_at: null };
    expect(body.expires_at).toBeNull();
    expect(body.permissions).toContain('system:admin');
    expect(body.permissions).toContain('audit:read');
    const audit = await call(app, 'GET', '/v1/audit-logs?action=api_key.me', {
      headers: { authorization: `Bearer ${token}` },
    });
    const entries = ((await audit.json()) as { data: Record<string, unknown>[] }).data;
    expect(entries.length).toBeGreaterThanOrEqual(1);
    expect(entries[0]).toMatchObject({
      action: 'api_key.me',
      actor: { type: 'api_key', id: row.id },
      target: { type: 'api_key', id: row.id },
      outcome: 'success',
      status: 200,
    });
  });

  test('no key or a bad key: 401 in the standard error shape', async () => {
    const response = await call(app, 'GET', '/v1/me');
    expect(response.status).toBe(401);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
      'UNAUTHORIZED',
    );
    expect((await me('scr_nope')).status).toBe(401);
  });
});
