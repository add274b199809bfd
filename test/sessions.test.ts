/**
 * Console sessions through real `app.handle` requests on a real database, assembled as `serve`
 * assembles it: the cookie's flags, the session acting as exactly its key, idle and absolute
 * expiry on an injected clock, revocation and key expiry ending sessions, CSRF refusals,
 * bearer requests unaffected, sign-out, and the audit entries naming the key and the console.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { KeyGrant } from '../src/access/principal.ts';
import { manualClock } from '../src/clock.ts';
import { buildFeatures } from '../src/features.ts';
import { createInstance, type Instance } from '../src/instance.ts';
import { insertApiKey, newApiKeyId } from '../src/keys/service.ts';
import { buildApp } from '../src/server.ts';
import { call, memoryLogger, tempDir, testConfig } from './harness.ts';

type Session = {
  id: string;
  csrf_token: string;
  expires_at: string;
  idle_timeout_seconds: number;
  key: { id: string; role: string; permissions: string[] };
};
type AuditEntry = {
  actor: { type: string; id: string | null; name: string | null };
  action: string;
  outcome: string;
  status: number;
  details?: Record<string, unknown>;
};

describe('console sessions', () => {
  const dir = tempDir();
  const clock = manualClock(Date.UTC(2030, 0, 1));
  let instance: Instance;
  let app: ReturnType<typeof buildApp>;
  let adminToken: string;

  const keyFor = (over: Partial<KeyGrant> & { name?: string }) =>
    insertApiKey(
      instance.db,
      newApiKeyId(),
      {
        name: 'k',
        role: 'admin',
        projectIds: [],
        vaultIds: [],
        scopes: null,
        expiresAt: null,
        ...over,
      },
      'test',
      clock.now(),
    );
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  /** Signs in with a key; returns the cookie pair to send back, the Set-Cookie and the body. */
  const signIn = async (token: string, url = 'http://localhost/v1/sessions') => {
    const response = await app.handle(new Request(url, { method: 'POST', headers: bearer(token) }));
    expect(response.status).toBe(201);
    const setCookie = response.headers.get('set-cookie') ?? '';
    const cookie = setCookie.split(';')[0]!;
    return { response, setCookie, cookie, body: (await response.json()) as Session };
  };

  const auditOf = async (action: string): Promise<AuditEntry[]> => {
    const response = await call(app, 'GET', `/v1/audit-logs?action=${action}`, {
      headers: bearer(adminToken),
    });
    return ((await response.json()) as { data: AuditEntry[] }).data;
  };

  beforeAll(() => {
    instance = createInstance(
      testConfig(dir.path, {
        rate_limit: { burst: 10_000, requests_per_minute: 10_000 },
        console: { session_idle_minutes: 30, session_max_hours: 12 },
      }),
      memoryLogger(),
      undefined,
      { clock },
    );
    const features = buildFeatures(instance);
    app = buildApp(instance, {
      features: features.features,
      recordOutcome: features.recordOutcome,
    });
    adminToken = keyFor({ name: 'admin' }).token;
  });

  afterAll(async () => {
    await instance.close();
    dir[Symbol.dispose]();
  });

  test('sign-in sets an HttpOnly SameSite=Strict cookie and returns a CSRF token, not the cookie', async () => {
    const { response, setCookie, cookie, body } = await signIn(adminToken);
    expect(setCookie).toMatch(/^secryn_session=[A-Za-z0-9_-]{43}; /);
    expect(setCookie).toContain('; Path=/');
    expect(setCookie).toContain('; HttpOnly');
    expect(setCookie).toContain('; SameSite=Strict');
    expect(setCookie).toContain(`; Max-Age=${12 * 3600}`);
    expect(setCookie).not.toContain('Secure'); // plain HTTP: a Secure cookie would be dropped
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('location')).toBe('/v1/sessions/current');
    expect(body.id).toMatch(/^ses_/);
    expect(body.csrf_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(JSON.stringify(body)).not.toContain(cookie.split('=')[1]!);
    expect(body.key.role).toBe('admin');
    expect(body.idle_timeout_seconds).toBe(1800);
    expect(body.expires_at).toBe(
      new Date(clock.now() + 12 * 3600_000).toISOString().replace('.000', ''),
    );
  });

  test('under TLS the cookie is Secure with the __Host- prefix', async () => {
    const { setCookie } = await signIn(adminToken, 'https://localhost/v1/sessions');
    expect(setCookie).toMatch(/^__Host-secryn_session=[A-Za-z0-9_-]{43}; Path=\/; /);
    expect(setCookie).toContain('; Secure');
    expect(setCookie).toContain('; HttpOnly');
  });

  test('only the hash of the session token is stored', async () => {
    const { cookie } = await signIn(adminToken);
    const token = cookie.split('=')[1]!;
    const rows = instance.sqlite.query('SELECT * FROM console_sessions').all();
    expect(JSON.stringify(rows)).not.toContain(token);
    const file = await Bun.file(instance.config.storage.path).arrayBuffer();
    expect(Buffer.from(file).includes(Buffer.from(token))).toBe(false);
  });

  test('the session acts as exactly its key: same permissions, refused where the key is', async () => {
    const reader = keyFor({ name: 'reader-key', role: 'reader' });
    const { cookie, body } = await signIn(reader.token);
    const me = await call(app, 'GET', '/v1/me', { headers: { cookie } });
    expect(me.status).toBe(200);
    const meBody = (await me.json()) as { id: string; permissions: string[] };
    expect(meBody.id).toBe(reader.row.id);
    expect(meBody.permissions).toEqual(['projects:read', 'vaults:read', 'resources:read']);
    expect(body.key.permissions).toEqual(meBody.permissions);
    // A reader may not create a project, with or without the CSRF token.
    const create = await call(app, 'POST', '/v1/projects', {
      headers: { cookie, 'x-csrf-token': body.csrf_token },
      body: { name: 'not-allowed' },
    });
    expect(create.status).toBe(403);
    expect(((await create.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
    // Nor read the audit log.
    expect((await call(app, 'GET', '/v1/audit-logs', { headers: { cookie } })).status).toBe(403);
  });

  test('state changes need the CSRF token: missing or wrong → 403, right → done', async () => {
    const { cookie, body } = await signIn(adminToken);
    const missing = await call(app, 'POST', '/v1/projects', {
      headers: { cookie },
      body: { name: 'csrf-missing' },
    });
    expect(missing.status).toBe(403);
    const missingBody = (await missing.json()) as {
      error: { code: string; details: { reason: string } };
    };
    expect(missingBody.error.code).toBe('FORBIDDEN');
    expect(missingBody.error.details.reason).toContain('x-csrf-token');
    const wrong = await call(app, 'POST', '/v1/projects', {
      headers: { cookie, 'x-csrf-token': 'A'.repeat(43) },
      body: { name: 'csrf-wrong' },
    });
    expect(wrong.status).toBe(403);
    // Another session's token does not fit this one.
    const other = await signIn(adminToken);
    const crossed = await call(app, 'POST', '/v1/projects', {
      headers: { cookie, 'x-csrf-token': other.body.csrf_token },
      body: { name: 'csrf-crossed' },
    });
    expect(crossed.status).toBe(403);
    const foreignOrigin = await call(app, 'POST', '/v1/projects', {
      headers: { cookie, 'x-csrf-token': body.csrf_token, origin: 'https://evil.example' },
      body: { name: 'csrf-origin' },
    });
    expect(foreignOrigin.status).toBe(403);
    const crossSite = await call(app, 'POST', '/v1/projects', {
      headers: { cookie, 'x-csrf-token': body.csrf_token, 'sec-fetch-site': 'cross-site' },
      body: { name: 'csrf-site' },
    });
    expect(crossSite.status).toBe(403);
    const ok = await call(app, 'POST', '/v1/projects', {
      headers: {
        cookie,
        'x-csrf-token': body.csrf_token,
        origin: 'http://localhost',
        'sec-fetch-site': 'same-origin',
      },
      body: { name: 'csrf-ok' },
    });
    expect(ok.status).toBe(201);
    // Reads need no token.
    expect((await call(app, 'GET', '/v1/projects', { headers: { cookie } })).status).toBe(200);
    // None of the refused requests changed anything.
    const list = await call(app, 'GET', '/v1/projects?limit=100', { headers: bearer(adminToken) });
    const names = ((await list.json()) as { data: { name: string }[] }).data.map((p) => p.name);
    expect(names).toContain('csrf-ok');
    expect(names.filter((n) => n.startsWith('csrf-') && n !== 'csrf-ok')).toEqual([]);
    // The refusal is audited as a denial by that key, through the console.
    const denied = (await auditOf('project.create')).filter((e) => e.status === 403);
    expect(denied.length).toBeGreaterThan(0);
    expect(denied[0]!.actor.type).toBe('api_key');
    expect(denied[0]!.details?.via).toBe('console');
  });

  test('bearer requests ignore the cookie and never need a CSRF token', async () => {
    const { cookie } = await signIn(adminToken);
    const response = await call(app, 'POST', '/v1/projects', {
      headers: { ...bearer(adminToken), cookie, origin: 'https://elsewhere.example' },
      body: { name: 'bearer-ok' },
    });
    expect(response.status).toBe(201);
    // A bad bearer key is not rescued by a good cookie.
    const bad = await call(app, 'GET', '/v1/me', {
      headers: { authorization: 'Bearer scr_nope', cookie },
    });
    expect(bad.status).toBe(401);
    // The bearer request's audit entry has no console marker.
    const entries = await auditOf('project.create');
    const bearerEntry = entries.find((e) => e.status === 201 && e.details === undefined);
    expect(bearerEntry).toBeDefined();
  });

  test('audit entries name the key and say the request came through the console', async () => {
    const key = keyFor({ name: 'console-user', role: 'manager' });
    const { cookie, body } = await signIn(key.token);
    await call(app, 'GET', '/v1/vaults', { headers: { cookie } });
    const signIns = (await auditOf('session.create')).filter((e) => e.actor.id === key.row.id);
    expect(signIns).toHaveLength(1);
    expect(signIns[0]!.actor).toEqual({ type: 'api_key', id: key.row.id, name: 'console-user' });
    expect(signIns[0]!.details).toEqual({ via: 'console', session_id: body.id });
    const lists = (await auditOf('vault.list')).filter((e) => e.actor.id === key.row.id);
    expect(lists[0]!.details).toEqual({ via: 'console', session_id: body.id });
  });

  test('a session cannot mint another session; GET /current gives the CSRF token again', async () => {
    const { cookie, body } = await signIn(adminToken);
    const again = await call(app, 'POST', '/v1/sessions', {
      headers: { cookie, 'x-csrf-token': body.csrf_token },
    });
    expect(again.status).toBe(403);
    const current = await call(app, 'GET', '/v1/sessions/current', { headers: { cookie } });
    expect(current.status).toBe(200);
    expect(current.headers.get('cache-control')).toBe('no-store');
    const currentBody = (await current.json()) as Session;
    expect(currentBody.id).toBe(body.id);
    expect(currentBody.csrf_token).toBe(body.csrf_token);
  });

  test('idle timeout: ends after session_idle_minutes without a request, activity extends it', async () => {
    const { cookie } = await signIn(adminToken);
    clock.advance(29 * 60_000);
    expect((await call(app, 'GET', '/v1/me', { headers: { cookie } })).status).toBe(200);
    clock.advance(29 * 60_000); // 58 min after sign-in, 29 after the last request
    expect((await call(app, 'GET', '/v1/me', { headers: { cookie } })).status).toBe(200);
    clock.advance(30 * 60_000);
    const ended = await call(app, 'GET', '/v1/me', { headers: { cookie } });
    expect(ended.status).toBe(401);
    expect((await call(app, 'GET', '/v1/me', { headers: { cookie } })).status).toBe(401);
  });

  test('absolute lifetime: ends session_max_hours after sign-in however busy', async () => {
    const { cookie } = await signIn(adminToken);
    for (let minutes = 0; minutes < 12 * 60 - 20; minutes += 20) {
      clock.advance(20 * 60_000);
      expect((await call(app, 'GET', '/v1/me', { headers: { cookie } })).status).toBe(200);
    }
    clock.advance(20 * 60_000);
    expect((await call(app, 'GET', '/v1/me', { headers: { cookie } })).status).toBe(401);
  });

  test('revoking the key ends its sessions at the next request', async () => {
    const key = keyFor({ name: 'to-revoke' });
    const { cookie } = await signIn(key.token);
    expect((await call(app, 'GET', '/v1/me', { headers: { cookie } })).status).toBe(200);
    const revoke = await call(app, 'DELETE', `/v1/api-keys/${key.row.id}`, {
      headers: bearer(adminToken),
    });
    expect(revoke.status).toBe(200);
    expect((await call(app, 'GET', '/v1/me', { headers: { cookie } })).status).toBe(401);
  });

  test('a session ends when its key expires, and never outlives it', async () => {
    const key = keyFor({ name: 'short', expiresAt: clock.now() + 60 * 60_000 });
    const { cookie, setCookie, body } = await signIn(key.token);
    expect(setCookie).toContain('; Max-Age=3600');
    expect(Date.parse(body.expires_at)).toBe(clock.now() + 3600_000);
    clock.advance(29 * 60_000);
    expect((await call(app, 'GET', '/v1/me', { headers: { cookie } })).status).toBe(200);
    clock.advance(29 * 60_000);
    expect((await call(app, 'GET', '/v1/me', { headers: { cookie } })).status).toBe(200);
    clock.advance(2 * 60_000);
    expect((await call(app, 'GET', '/v1/me', { headers: { cookie } })).status).toBe(401);
  });

  test('sign-out needs the CSRF token, ends the session and clears the cookie', async () => {
    const { cookie, body } = await signIn(adminToken);
    const noToken = await call(app, 'DELETE', '/v1/sessions/current', { headers: { cookie } });
    expect(noToken.status).toBe(403);
    const out = await call(app, 'DELETE', '/v1/sessions/current', {
      headers: { cookie, 'x-csrf-token': body.csrf_token },
    });
    expect(out.status).toBe(200);
    expect(await out.json()).toEqual({ id: body.id, deleted: true });
    expect(out.headers.get('set-cookie')).toMatch(/^secryn_session=; Path=\/; Max-Age=0; HttpOnly/);
    expect((await call(app, 'GET', '/v1/me', { headers: { cookie } })).status).toBe(401);
    const rows = instance.sqlite.query('SELECT id FROM console_sessions WHERE id = ?').all(body.id);
    expect(rows).toEqual([]);
  });

  test('a forged or unknown cookie is a plain 401', async () => {
    for (const cookie of ['secryn_session=' + 'x'.repeat(43), 'secryn_session=short', 'other=1']) {
      const response = await call(app, 'GET', '/v1/me', { headers: { cookie } });
      expect(response.status).toBe(401);
    }
  });
});

describe('console disabled', () => {
  test('POST /v1/sessions is 404 and cookies are not accepted', async () => {
    using dir = tempDir();
    const instance = createInstance(
      testConfig(dir.path, { console: { enabled: false } }),
      memoryLogger(),
    );
    try {
      const features = buildFeatures(instance);
      const app = buildApp(instance, { features: features.features });
      const { token } = insertApiKey(
        instance.db,
        newApiKeyId(),
        { name: 'a', role: 'admin', projectIds: [], vaultIds: [], scopes: null, expiresAt: null },
        'test',
        Date.now(),
      );
      const response = await call(app, 'POST', '/v1/sessions', {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(response.status).toBe(404);
      expect(response.headers.get('set-cookie')).toBeNull();
    } finally {
      await instance.close();
    }
  });
});
