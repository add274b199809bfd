/**
 * Rate limits through real requests: the X-RateLimit-* headers on every authenticated response,
 * 429 RATE_LIMITED with Retry-After, per-key and per-address buckets, X-Forwarded-For believed
 * only with server.trust_proxy, health and docs exempt, and bounded memory. The bucket maths
 * itself is unit-tested beside the limiter (src/access/*.test.ts).
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { createAccessLayer, type AccessLayer } from '../src/access/plugin.ts';
import { manualClock } from '../src/clock.ts';
import { createInstance, type Instance } from '../src/instance.ts';
import { apiKeyRoutes } from '../src/keys/routes.ts';
import { insertApiKey, newApiKeyId } from '../src/keys/service.ts';
import { buildApp, startServer } from '../src/server.ts';
import { call, memoryLogger, tempDir, testConfig } from './harness.ts';

const START = Date.UTC(2030, 0, 1);

type Setup = {
  instance: Instance;
  access: AccessLayer;
  app: ReturnType<typeof buildApp>;
  clock: ReturnType<typeof manualClock>;
  key(rateLimit?: { requestsPerMinute: number | null; burst: number | null }): string;
};

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

function setup(
  rateLimit: Record<string, number> = { burst: 3, requests_per_minute: 60 },
  server: Record<string, unknown> = {},
): Setup {
  const dir = tempDir();
  const clock = manualClock(START);
  const instance = createInstance(
    testConfig(dir.path, { rate_limit: rateLimit, server }),
    memoryLogger(),
    undefined,
    { clock },
  );
  const access = createAccessLayer(instance);
  const app = buildApp(instance, {
    features: [access.plugin, apiKeyRoutes(instance, access.lastUsed)],
  });
  cleanups.push(async () => {
    await instance.close();
    dir[Symbol.dispose]();
  });
  return {
    instance,
    access,
    app,
    clock,
    key: (rateLimitOverride) =>
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
          rateLimit: rateLimitOverride,
        },
        'test',
        clock.now(),
      ).token,
  };
}

const auth = (token: string) => ({ authorization: `Bearer ${token}` });
const limits = (response: Response) =>
  ['limit', 'remaining', 'reset'].map((h) => response.headers.get(`x-ratelimit-${h}`));

describe('rate limits over HTTP', () => {
  test('every authenticated response carries the headers; the 4th of a burst of 3 is a 429', async () => {
    const { app, clock, key } = setup();
    const token = key();
    const reset = String(START / 1000 + 1);
    const ok = await call(app, 'GET', '/v1/api-keys', { headers: auth(token) });
    expect(ok.status).toBe(200);
    expect(limits(ok)).toEqual(['3', '2', reset]);
    // Errors after authentication carry them too (400 validation, 404).
    const invalid = await call(app, 'GET', '/v1/api-keys?page=0', { headers: auth(token) });
    expect([invalid.status, ...limits(invalid)]).toEqual([400, '3', '1', String(START / 1000 + 2)]);
    const missing = await call(app, 'GET', '/v1/nothing', { headers: auth(token) });
    expect([missing.status, ...limits(missing)]).toEqual([404, '3', '0', String(START / 1000 + 3)]);
    const limited = await call(app, 'GET', '/v1/api-keys', { headers: auth(token) });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(limits(limited)).toEqual(['3', '0', String(START / 1000 + 3)]);
    expect(await limited.json()).toEqual({
      error: {
        code: 'RATE_LIMITED',
        message: 'Too many requests',
        details: { reason: 'Rate limit exceeded; retry after 1 s' },
      },
    });
    // Another key is not affected; the throttled one recovers one token per second.
    expect((await call(app, 'GET', '/v1/api-keys', { headers: auth(key()) })).status).toBe(200);
    clock.advance(1000);
    const recovered = await call(app, 'GET', '/v1/api-keys', { headers: auth(token) });
    expect([recovered.status, ...limits(recovered)]).toEqual([
      200,
      '3',
      '0',
      String(START / 1000 + 4),
    ]);
  });

  test('per-key overrides apply', async () => {
    const { app, key } = setup();
    const tight = key({ requestsPerMinute: 6, burst: 1 });
    expect(limits(await call(app, 'GET', '/v1/api-keys', { headers: auth(tight) }))).toEqual([
      '1',
      '0',
      String(START / 1000 + 10),
    ]);
    const second = await call(app, 'GET', '/v1/api-keys', { headers: auth(tight) });
    expect([second.status, second.headers.get('retry-after')]).toEqual([429, '10']);
  });

  test('guessing keys is throttled per address; a valid key from that address still works', async () => {
    const { app, key } = setup();
    const guesses = ['', 'Bearer nope', `Bearer scr_${'A'.repeat(61)}`];
    for (const header of guesses)
      expect(
        (await call(app, 'GET', '/v1/api-keys', { headers: { authorization: header } })).status,
      ).toBe(401);
    const blocked = await call(app, 'GET', '/v1/api-keys', {
      headers: { authorization: 'Bearer x' },
    });
    expect(blocked.status).toBe(429);
    expect(blocked.headers.get('retry-after')).toBe('1');
    expect((await call(app, 'GET', '/v1/api-keys', { headers: auth(key()) })).status).toBe(200);
  });

  test('X-Forwarded-For is ignored unless server.trust_proxy; then each client has its own bucket', async () => {
    const spoof = (app: Setup['app'], i: number) =>
      call(app, 'GET', '/v1/api-keys', { headers: { 'x-forwarded-for': `203.0.113.${i}` } });
    const direct = setup();
    const statuses: number[] = [];
    for (let i = 1; i <= 5; i++) statuses.push((await spoof(direct.app, i)).status);
    expect(statuses).toEqual([401, 401, 401, 429, 429]);

    const proxied = setup(undefined, { trust_proxy: true });
    const trusted: number[] = [];
    for (let i = 1; i <= 5; i++) trusted.push((await spoof(proxied.app, i)).status);
    expect(trusted).toEqual([401, 401, 401, 401, 401]);
    for (let i = 0; i < 3; i++) await spoof(proxied.app, 99);
    expect((await spoof(proxied.app, 99)).status).toBe(429);
  });

  test('over a real socket the peer address is used and X-Forwarded-For is not believed', async () => {
    const { instance, access } = setup();
    const running = startServer(instance, {
      features: [access.plugin, apiKeyRoutes(instance, access.lastUsed)],
      port: 0,
    });
    try {
      const statuses: number[] = [];
      for (let i = 1; i <= 4; i++) {
        const response = await fetch(`http://127.0.0.1:${running.server.port}/v1/api-keys`, {
          headers: { 'x-forwarded-for': `198.51.100.${i}` },
        });
        statuses.push(response.status);
      }
      expect(statuses).toEqual([401, 401, 401, 429]);
    } finally {
      await running.server.stop(true);
    }
  });

  test('health and docs are exempt', async () => {
    const { app } = setup();
    for (let i = 0; i < 4; i++) await call(app, 'GET', '/v1/api-keys');
    expect((await call(app, 'GET', '/v1/api-keys')).status).toBe(429);
    for (let i = 0; i < 5; i++) {
      for (const path of ['/health', '/v1/health', '/docs/json']) {
        const response = await call(app, 'GET', path);
        expect(`${path} ${response.status}`).toBe(`${path} 200`);
        expect(response.headers.get('x-ratelimit-limit')).toBeNull();
        await response.arrayBuffer();
      }
    }
  });

  test('memory stays bounded under a flood of distinct addresses (rate_limit.max_tracked_clients)', async () => {
    const { app, access } = setup(
      { burst: 3, requests_per_minute: 60, max_tracked_clients: 100 },
      { trust_proxy: true },
    );
    for (let i = 0; i < 1000; i++) {
      const response = await call(app, 'GET', '/v1/api-keys', {
        headers: { 'x-forwarded-for': `10.1.${i >> 8}.${i & 255}` },
      });
      expect(response.status).toBe(401);
    }
    expect(access.limiter.size.clients).toBe(100);
  });
});
