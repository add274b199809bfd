/**
 * Who may do what: every route of the permission table × every role, plus a scoped key, a
 * project-limited key, an expired key, a revoked key and no key, asserted as exact statuses
 * through real `app.handle` requests on a real database, with the app assembled exactly as
 * `serve` assembles it (buildFeatures).
 *
 * Adding a route to `src/access/permissions.ts` makes this file fail until the route gets a
 * row in EXPECTED and a request in REQUESTS: this table is the one place that shows who may do
 * what.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Elysia } from 'elysia';
import { createAccessLayer } from '../src/access/plugin.ts';
import { ROUTE_PERMISSIONS } from '../src/access/permissions.ts';
import type { KeyGrant } from '../src/access/principal.ts';
import { manualClock } from '../src/clock.ts';
import { buildFeatures } from '../src/features.ts';
import { createInstance, type Instance } from '../src/instance.ts';
import { insertApiKey, newApiKeyId, revokeApiKey } from '../src/keys/service.ts';
import { buildApp } from '../src/server.ts';
import { call, memoryLogger, tempDir, testConfig } from './harness.ts';
import { makeTestPki } from './pki.ts';
import { generateApiToken } from '../src/crypto/api-token.ts';

/** Fresh names for objects made per request (names are unique). */
let serial = 0;
const unique = (prefix: string) => `${prefix}-${++serial}`;

const SUBJECTS = [
  'admin',
  'manager',
  'contributor',
  'reader',
  'access',
  'scoped',
  'project_limited',
  'expired',
  'revoked',
  'anonymous',
] as const;
type Subject = (typeof SUBJECTS)[number];

/** The keys behind each subject (`anonymous` sends none); `world` names their projects. */
const KEYS: Record<Exclude<Subject, 'anonymous'>, (world: World) => Partial<KeyGrant>> = {
  admin: () => ({ role: 'admin' }),
  manager: () => ({ role: 'manager' }),
  contributor: () => ({ role: 'contributor' }),
  reader: () => ({ role: 'reader' }),
  access: () => ({ role: 'access' }),
  scoped: () => ({ role: 'manager', scopes: ['api_keys:read'] }),
  project_limited: (world) => ({ role: 'manager', projectIds: [world.projectA] }),
  expired: () => ({ role: 'admin' }),
  revoked: () => ({ role: 'admin' }),
};

type Row = Record<Subject, number>;
const row = (allowed: Partial<Row>, fallback: { keyed: number } = { keyed: 403 }): Row => ({
  admin: fallback.keyed,
  manager: fallback.keyed,
  contributor: fallback.keyed,
  reader: fallback.keyed,
  access: fallback.keyed,
  scoped: fallback.keyed,
  project_limited: fallback.keyed,
  expired: 401,
  revoked: 401,
  anonymous: 401,
  ...allowed,
});

/** Every role that reads vaults and resources (all but the scoped key), with 200. */
const READ_ALL: Partial<Row> = {
  admin: 200,
  manager: 200,
  contributor: 200,
  reader: 200,
  access: 200,
  project_limited: 200,
};
/** Keys that may reveal values. */
const REVEAL: Partial<Row> = {
  admin: 200,
  manager: 200,
  contributor: 200,
  access: 200,
  project_limited: 200,
};
/** Keys that manage webhooks and read events: admins and managers. */
const MANAGE: Partial<Row> = { admin: 200, manager: 200, project_limited: 200 };
/** Keys that may write resources. */
const WRITE: Partial<Row> = { admin: 200, manager: 200, contributor: 200, project_limited: 200 };

/** The exact status of every route for every subject. */
const EXPECTED: Record<string, Row> = {
  'GET /v1/api-keys': row({ admin: 200, manager: 200, scoped: 200, project_limited: 200 }),
  'POST /v1/api-keys': row({ admin: 201, manager: 201, project_limited: 201 }),
  'GET /v1/api-keys/:id': row({ admin: 200, manager: 200, scoped: 200, project_limited: 200 }),
  'PUT /v1/api-keys/:id': row({ admin: 200, manager: 200, project_limited: 200 }),
  'DELETE /v1/api-keys/:id': row({ admin: 200, manager: 200, project_limited: 200 }),
  'GET /v1/audit-logs': row({ admin: 200 }),
  'GET /v1/audit-logs/:id': row({ admin: 200 }),
  'GET /v1/audit-logs/verify': row({ admin: 200 }),
  // Projects: reading is for every role but access keys; only admins create or change them.
  'GET /v1/projects': row({
    admin: 200,
    manager: 200,
    contributor: 200,
    reader: 200,
    project_limited: 200,
  }),
  'POST /v1/projects': row({ admin: 201 }),
  'GET /v1/projects/:id': row({
    admin: 200,
    manager: 200,
    contributor: 200,
    reader: 200,
    project_limited: 200,
  }),
  'PUT /v1/projects/:id': row({ admin: 200 }),
  'DELETE /v1/projects/:id': row({ admin: 200 }),
  // Vaults: managers (of the project) manage them; every role but scoped reads them.
  'GET /v1/vaults': row({ ...READ_ALL }),
  'POST /v1/vaults': row({ admin: 201, manager: 201, project_limited: 201 }),
  'GET /v1/vaults/:id': row({ ...READ_ALL }),
  'PUT /v1/vaults/:id': row({ admin: 200, manager: 200, project_limited: 200 }),
  'DELETE /v1/vaults/:id': row({ admin: 200, manager: 200, project_limited: 200 }),
  'GET /v1/vaults/:id/secrets/:name': row({ ...READ_ALL }),
  // A bulk import writes like POST/PUT /v1/resources: contributors and up, not readers or access.
  'POST /v1/vaults/:id/secrets/import': row({ ...WRITE }),
  'GET /v1/vaults/:id/keys': row({ ...READ_ALL }),
  'GET /v1/vaults/:id/certificates': row({ ...READ_ALL }),
  // Downloads are the value itself: revealers only (not readers).
  'GET /v1/vaults/:id/keys/:res_id/download': row({ ...REVEAL }),
  'GET /v1/vaults/:id/certificates/:res_id/download': row({ ...REVEAL }),
  'GET /v1/resources': row({ ...READ_ALL }),
  'POST /v1/resources': row({ admin: 201, manager: 201, contributor: 201, project_limited: 201 }),
  'GET /v1/resources/:id': row({ ...READ_ALL }),
  'PUT /v1/resources/:id': row({ ...WRITE }),
  'DELETE /v1/resources/:id': row({ admin: 200, manager: 200, project_limited: 200 }),
  'POST /v1/resources/:id/restore': row({ admin: 200, manager: 200, project_limited: 200 }),
  'GET /v1/resources/:id/versions': row({ ...READ_ALL }),
  'GET /v1/resources/:id/versions/:n': row({ ...READ_ALL }),
  'POST /v1/resources/:id/versions/:n/restore': row({ ...WRITE }),
  // Webhooks and events: admins and managers (of the project, for a limited key).
  'GET /v1/webhooks': row({ ...MANAGE }),
  'POST /v1/webhooks': row({ admin: 201, manager: 201, project_limited: 201 }),
  'GET /v1/webhooks/:id': row({ ...MANAGE }),
  'PUT /v1/webhooks/:id': row({ ...MANAGE }),
  'DELETE /v1/webhooks/:id': row({ ...MANAGE }),
  'POST /v1/webhooks/:id/rotate-secret': row({ ...MANAGE }),
  'POST /v1/webhooks/:id/test': row({ admin: 201, manager: 201, project_limited: 201 }),
  'GET /v1/webhooks/:id/deliveries': row({ ...MANAGE }),
  'GET /v1/webhooks/:id/deliveries/:dlv_id': row({ ...MANAGE }),
  'POST /v1/webhooks/:id/deliveries/:dlv_id/retry': row({ ...MANAGE }),
  'GET /v1/events': row({ ...MANAGE }),
  // Metrics: admins (and admin keys narrowed to metrics:read, test/metrics.test.ts).
  'GET /metrics': row({ admin: 200 }),
  'GET /v1/events/:id': row({ ...MANAGE }),
  // The stream is also for the keys that run programs (resource events of their vaults only).
  'GET /v1/events/stream': row({ ...READ_ALL }),
  // About the caller itself: every valid key.
  'GET /v1/me': row({}, { keyed: 200 }),
  // Console sign-in: every valid key; the current session exists only for cookie requests
  // (test/sessions.test.ts), so a bearer key gets 404.
  'POST /v1/sessions': row({}, { keyed: 201 }),
  'GET /v1/sessions/current': row({}, { keyed: 404 }),
  'DELETE /v1/sessions/current': row({}, { keyed: 404 }),
};

/** Sends a request as an unlimited admin key and returns its JSON body (throws unless 2xx). */
type AdminClient = (method: string, path: string, body?: unknown) => Promise<unknown>;

/**
 * The objects the requests act on. `projectA` is the project of the project-limited subject
 * and of every fresh target; later features add their objects (vaults, resources, webhooks).
 */
type World = { projectA: string; projectB: string; [object: string]: string };

/** Creates the world as the admin key, before the other subjects' keys exist. Extend it here. */
async function buildWorld(admin: AdminClient): Promise<World> {
  const create = async (path: string, body: unknown) =>
    ((await admin('POST', path, body)) as { id: string }).id;
  const projectA = await create('/v1/projects', { name: 'project A' });
  const projectB = await create('/v1/projects', { name: 'project B' });
  const vaultA = await create('/v1/vaults', { project_id: projectA, name: 'vault A' });
  const secretA = await create('/v1/resources', {
    type: 'secret',
    vault_id: vaultA,
    name: 'SECRET_A',
    value: 'matrix-value',
  });
  const keyA = await create('/v1/resources', {
    type: 'key',
    vault_id: vaultA,
    name: 'key A',
    generate: { algorithm: 'ed25519' },
  });
  const pki = makeTestPki(['matrix.test']);
  const certificateA = await create('/v1/resources', {
    type: 'certificate',
    vault_id: vaultA,
    name: 'certificate A',
    value: pki.leafCert + pki.caCert,
    private_key: pki.leafKey,
  });
  // A public address literal: saved without DNS, never delivered (no worker runs here).
  const webhookA = await create('/v1/webhooks', {
    url: 'https://93.184.216.34/matrix',
    events: ['*'],
    project_id: projectA,
  });
  const deliveryA = await create(`/v1/webhooks/${webhookA}/test`, {});
  const events = (await admin('GET', `/v1/events?project_id=${projectA}&limit=1`)) as {
    data: { id: string }[];
  };
  const eventA = events.data[0]!.id;
  return { projectA, projectB, vaultA, secretA, keyA, certificateA, webhookA, deliveryA, eventA };
}

type Helpers = {
  world: World;
  admin: AdminClient;
  /** A fresh reader key in project A (within every key-managing subject's reach). */
  freshKey(): string;
  /** Some audit entry id. */
  auditEntry(): string;
  /** Creates an object as the admin key and returns its id. */
  fresh(path: string, body: unknown): Promise<string>;
  /** A fresh secret in vault A, made by the admin key. */
  freshSecret(): Promise<string>;
};

type Call = { path: string; body?: unknown };

/** How to call each route: its concrete path and body (a fresh target where it is consumed). */
const REQUESTS: Record<string, (h: Helpers) => Call | Promise<Call>> = {
  'GET /v1/api-keys': () => ({ path: '/v1/api-keys' }),
  'POST /v1/api-keys': (h) => ({
    path: '/v1/api-keys',
    body: { name: 'made', role: 'reader', project_ids: [h.world.projectA] },
  }),
  'GET /v1/api-keys/:id': (h) => ({ path: `/v1/api-keys/${h.freshKey()}` }),
  'PUT /v1/api-keys/:id': (h) => ({
    path: `/v1/api-keys/${h.freshKey()}`,
    body: { name: 'renamed', scopes: ['resources:read'] },
  }),
  'DELETE /v1/api-keys/:id': (h) => ({ path: `/v1/api-keys/${h.freshKey()}` }),
  'GET /v1/audit-logs': () => ({ path: '/v1/audit-logs' }),
  'GET /v1/audit-logs/:id': (h) => ({ path: `/v1/audit-logs/${h.auditEntry()}` }),
  'GET /v1/audit-logs/verify': () => ({ path: '/v1/audit-logs/verify' }),
  'GET /v1/projects': () => ({ path: '/v1/projects' }),
  'POST /v1/projects': () => ({ path: '/v1/projects', body: { name: unique('project') } }),
  'GET /v1/projects/:id': (h) => ({ path: `/v1/projects/${h.world.projectA}` }),
  'PUT /v1/projects/:id': (h) => ({
    path: `/v1/projects/${h.world.projectA}`,
    body: { description: unique('described') },
  }),
  'DELETE /v1/projects/:id': async (h) => ({
    path: `/v1/projects/${await h.fresh('/v1/projects', { name: unique('doomed') })}`,
  }),
  'GET /v1/vaults': () => ({ path: '/v1/vaults' }),
  'POST /v1/vaults': (h) => ({
    path: '/v1/vaults',
    body: { project_id: h.world.projectA, name: unique('vault') },
  }),
  'GET /v1/vaults/:id': (h) => ({ path: `/v1/vaults/${h.world.vaultA}` }),
  'PUT /v1/vaults/:id': (h) => ({
    path: `/v1/vaults/${h.world.vaultA}`,
    body: { description: unique('described') },
  }),
  'DELETE /v1/vaults/:id': async (h) => ({
    path: `/v1/vaults/${await h.fresh('/v1/vaults', { project_id: h.world.projectA, name: unique('doomed') })}`,
  }),
  'GET /v1/vaults/:id/secrets/:name': (h) => ({
    path: `/v1/vaults/${h.world.vaultA}/secrets/SECRET_A`,
  }),
  'POST /v1/vaults/:id/secrets/import': (h) => ({
    path: `/v1/vaults/${h.world.vaultA}/secrets/import`,
    body: { secrets: [{ name: unique('imported'), value: 'v' }] },
  }),
  'GET /v1/vaults/:id/keys': (h) => ({ path: `/v1/vaults/${h.world.vaultA}/keys` }),
  'GET /v1/vaults/:id/certificates': (h) => ({ path: `/v1/vaults/${h.world.vaultA}/certificates` }),
  'GET /v1/vaults/:id/keys/:res_id/download': (h) => ({
    path: `/v1/vaults/${h.world.vaultA}/keys/${h.world.keyA}/download`,
  }),
  'GET /v1/vaults/:id/certificates/:res_id/download': (h) => ({
    path: `/v1/vaults/${h.world.vaultA}/certificates/${h.world.certificateA}/download`,
  }),
  'GET /v1/resources': () => ({ path: '/v1/resources' }),
  'POST /v1/resources': (h) => ({
    path: '/v1/resources',
    body: { type: 'secret', vault_id: h.world.vaultA, name: unique('secret'), value: 'v' },
  }),
  'GET /v1/resources/:id': (h) => ({ path: `/v1/resources/${h.world.secretA}` }),
  'PUT /v1/resources/:id': (h) => ({
    path: `/v1/resources/${h.world.secretA}`,
    body: { description: unique('described') },
  }),
  'DELETE /v1/resources/:id': async (h) => ({
    path: `/v1/resources/${await h.freshSecret()}`,
  }),
  'POST /v1/resources/:id/restore': async (h) => {
    const id = await h.freshSecret();
    await h.admin('DELETE', `/v1/resources/${id}`);
    return { path: `/v1/resources/${id}/restore` };
  },
  'GET /v1/resources/:id/versions': (h) => ({ path: `/v1/resources/${h.world.secretA}/versions` }),
  'GET /v1/resources/:id/versions/:n': (h) => ({
    path: `/v1/resources/${h.world.secretA}/versions/1`,
  }),
  'POST /v1/resources/:id/versions/:n/restore': (h) => ({
    path: `/v1/resources/${h.world.secretA}/versions/1/restore`,
  }),
  'GET /v1/webhooks': () => ({ path: '/v1/webhooks' }),
  'POST /v1/webhooks': (h) => ({ path: '/v1/webhooks', body: freshWebhook(h) }),
  'GET /v1/webhooks/:id': (h) => ({ path: `/v1/webhooks/${h.world.webhookA}` }),
  'PUT /v1/webhooks/:id': (h) => ({
    path: `/v1/webhooks/${h.world.webhookA}`,
    body: { description: unique('described') },
  }),
  'DELETE /v1/webhooks/:id': async (h) => ({
    path: `/v1/webhooks/${await h.fresh('/v1/webhooks', freshWebhook(h))}`,
  }),
  'POST /v1/webhooks/:id/rotate-secret': (h) => ({
    path: `/v1/webhooks/${h.world.webhookA}/rotate-secret`,
  }),
  'POST /v1/webhooks/:id/test': (h) => ({ path: `/v1/webhooks/${h.world.webhookA}/test` }),
  'GET /v1/webhooks/:id/deliveries': (h) => ({
    path: `/v1/webhooks/${h.world.webhookA}/deliveries`,
  }),
  'GET /v1/webhooks/:id/deliveries/:dlv_id': (h) => ({
    path: `/v1/webhooks/${h.world.webhookA}/deliveries/${h.world.deliveryA}`,
  }),
  'POST /v1/webhooks/:id/deliveries/:dlv_id/retry': (h) => ({
    path: `/v1/webhooks/${h.world.webhookA}/deliveries/${h.world.deliveryA}/retry`,
  }),
  'GET /v1/events': () => ({ path: '/v1/events' }),
  'GET /metrics': () => ({ path: '/metrics' }),
  'GET /v1/events/:id': (h) => ({ path: `/v1/events/${h.world.eventA}` }),
  'GET /v1/events/stream': () => ({ path: '/v1/events/stream' }),
  'GET /v1/me': () => ({ path: '/v1/me' }),
  'POST /v1/sessions': () => ({ path: '/v1/sessions' }),
  'GET /v1/sessions/current': () => ({ path: '/v1/sessions/current' }),
  'DELETE /v1/sessions/current': () => ({ path: '/v1/sessions/current' }),
};

/** A webhook body in project A (within every webhook-managing subject's reach). */
function freshWebhook(h: Helpers) {
  return {
    url: `https://93.184.216.34/${unique('hook')}`,
    events: ['resource.created'],
    project_id: h.world.projectA,
  };
}

const grant = (over: Partial<KeyGrant>): KeyGrant => ({
  role: 'reader',
  projectIds: [],
  vaultIds: [],
  scopes: null,
  expiresAt: null,
  ...over,
});

describe('permission matrix', () => {
  const dir = tempDir();
  const clock = manualClock();
  let instance: Instance;
  let app: ReturnType<typeof buildApp>;
  const tokens = {} as Record<Exclude<Subject, 'anonymous'>, string>;
  let helpers: Helpers;

  const keyFor = (over: Partial<KeyGrant>) =>
    insertApiKey(instance.db, newApiKeyId(), { name: 'k', ...grant(over) }, 'test', clock.now());

  beforeAll(async () => {
    instance = createInstance(
      testConfig(dir.path, { rate_limit: { burst: 100_000, requests_per_minute: 100_000 } }),
      memoryLogger(),
      undefined,
      { clock },
    );
    const features = buildFeatures(instance);
    app = buildApp(instance, {
      features: features.features,
      recordOutcome: features.recordOutcome,
    });
    const worldBuilder = keyFor({ role: 'admin' }).token;
    const admin: AdminClient = async (method, path, body) => {
      const response = await call(app, method, path, {
        body,
        headers: { authorization: `Bearer ${worldBuilder}` },
      });
      const text = await response.text();
      if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
      return text ? JSON.parse(text) : undefined;
    };
    const world = await buildWorld(admin);
    for (const subject of Object.keys(KEYS) as (keyof typeof KEYS)[]) {
      const over = KEYS[subject](world);
      if (subject === 'expired') over.expiresAt = clock.now() + 1000;
      const { row, token } = keyFor(over);
      if (subject === 'revoked') revokeApiKey(instance.db, row.id, clock.now());
      tokens[subject] = token;
    }
    clock.advance(1000); // the expired key expires now
    helpers = {
      world,
      admin,
      freshKey: () => keyFor({ role: 'reader', projectIds: [world.projectA] }).row.id,
      auditEntry: () =>
        (instance.sqlite.query('SELECT id FROM audit_log LIMIT 1').get() as { id: string }).id,
      fresh: async (path, body) => ((await admin('POST', path, body)) as { id: string }).id,
      freshSecret: async () =>
        (
          (await admin('POST', '/v1/resources', {
            type: 'secret',
            vault_id: world.vaultA,
            name: unique('fresh'),
            value: 'v',
          })) as { id: string }
        ).id,
    };
    // Leave at least one audit entry behind.
    await admin('GET', '/v1/api-keys');
  });
  afterAll(async () => {
    await instance.close();
    dir[Symbol.dispose]();
  });

  const send = (subject: Subject, method: string, path: string, body?: unknown) =>
    call(app, method, path, {
      body,
      headers: subject === 'anonymous' ? {} : { authorization: `Bearer ${tokens[subject]}` },
    });

  test('the matrix covers exactly the routes of the permission table', () => {
    expect(Object.keys(EXPECTED).sort()).toEqual(Object.keys(ROUTE_PERMISSIONS).sort());
    expect(Object.keys(REQUESTS).sort()).toEqual(Object.keys(ROUTE_PERMISSIONS).sort());
  });

  test('every registered /v1 route has a table entry and is guarded; every entry is a route', () => {
    const access = createAccessLayer(instance);
    const features = buildFeatures(instance);
    // Rebuild with a visible access layer: same order as buildFeatures, first the plugin.
    const [, ...rest] = features.features;
    const assembled = buildApp(instance, { features: [access.plugin, ...rest] });
    expect(access.unguardedRoutes(assembled.routes)).toEqual([]);
    const registered = new Set(assembled.routes.map((r) => `${r.method} ${r.path}`));
    for (const route of Object.keys(ROUTE_PERMISSIONS)) expect(registered).toContain(route);
  });

  for (const route of Object.keys(ROUTE_PERMISSIONS)) {
    test(route, async () => {
      const method = route.split(' ')[0]!;
      const expected = EXPECTED[route];
      if (!expected || !REQUESTS[route]) {
        throw new Error(
          `${route}: add its row to EXPECTED and its request to REQUESTS (this file)`,
        );
      }
      const seen: string[] = [];
      for (const subject of SUBJECTS) {
        const { path, body } = await REQUESTS[route]!(helpers);
        const response = await send(subject, method, path, body);
        seen.push(`${subject}: ${response.status}`);
        if (response.status !== 401 && response.status !== 429) {
          expect(response.headers.get('x-ratelimit-limit')).toBe('100000');
          expect(response.headers.get('x-ratelimit-remaining')).toMatch(/^\d+$/);
        }
        // An event stream never ends by itself: hang up (which frees its slot).
        if (response.headers.get('content-type')?.startsWith('text/event-stream')) {
          await response.body?.cancel();
        } else await response.arrayBuffer();
      }
      expect(seen).toEqual(SUBJECTS.map((subject) => `${subject}: ${expected[subject]}`));
    });
  }

  test('every kind of bad key gets the very same 401', async () => {
    const bodies = new Set<string>();
    const headers: Record<string, string>[] = [
      {},
      { authorization: 'Bearer not-a-token' },
      // bad checksum: a last character that differs from the real one
      {
        authorization: `Bearer ${tokens.admin.slice(0, -1)}${tokens.admin.endsWith('x') ? 'y' : 'x'}`,
      },
      // Well-formed, valid checksum, never stored: an unknown key. (Editing a character of a real
      // token instead left it unchanged whenever that character already was the replacement.)
      { authorization: `Bearer ${generateApiToken().token}` },
      { authorization: `Bearer ${tokens.expired}` },
      { authorization: `Bearer ${tokens.revoked}` },
      { authorization: `Basic ${tokens.admin}` },
    ];
    for (const h of headers) {
      const response = await call(app, 'GET', '/v1/api-keys', { headers: h });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toContain('Bearer');
      bodies.add(await response.text());
    }
    expect([...bodies]).toEqual([
      JSON.stringify({
        error: {
          code: 'UNAUTHORIZED',
          message: 'Authentication required',
          details: { reason: 'A valid API key is required' },
        },
      }),
    ]);
  });

  test('without a key, routes, bodies and validation cannot be probed: 401 before 400/404/405/415', async () => {
    const probes: [string, string, Parameters<typeof call>[3]][] = [
      ['GET', '/v1/no-such-route', {}],
      ['PATCH', '/v1/api-keys', {}],
      [
        'POST',
        '/v1/api-keys',
        { rawBody: '{"name": ', headers: { 'content-type': 'application/json' } },
      ],
      ['POST', '/v1/api-keys', { rawBody: 'name=x', headers: { 'content-type': 'text/plain' } }],
      ['POST', '/v1/api-keys', { body: { nope: true } }],
      ['GET', '/v1/api-keys?limit=1000', {}],
      ['GET', '/v1', {}],
    ];
    for (const [method, path, options] of probes) {
      expect(`${method} ${path}: ${(await call(app, method, path, options)).status}`).toBe(
        `${method} ${path}: 401`,
      );
    }
    const admin = { authorization: `Bearer ${tokens.admin}` };
    expect((await call(app, 'GET', '/v1/no-such-route', { headers: admin })).status).toBe(404);
    expect((await call(app, 'PATCH', '/v1/api-keys', { headers: admin })).status).toBe(405);
    expect((await call(app, 'GET', '/v1/api-keys?limit=1000', { headers: admin })).status).toBe(
      400,
    );
    // Public paths need no key.
    for (const path of ['/health', '/v1/health', '/docs', '/docs/json'])
      expect(`${path}: ${(await call(app, 'GET', path)).status}`).toBe(`${path}: 200`);
  });

  test('outside its projects a key gets 404 (a denial in the audit log), not 403', async () => {
    const limited = { authorization: `Bearer ${tokens.project_limited}` };
    const inB = keyFor({ role: 'reader', projectIds: [helpers.world.projectB] }).row.id;
    const adminKey = keyFor({ role: 'admin' }).row.id;
    for (const [method, path, body] of [
      ['GET', `/v1/api-keys/${inB}`, undefined],
      ['PUT', `/v1/api-keys/${inB}`, { name: 'x' }],
      ['DELETE', `/v1/api-keys/${inB}`, undefined],
      ['GET', `/v1/api-keys/${adminKey}`, undefined],
    ] as const) {
      const response = await call(app, method, path, { headers: limited, body });
      expect(`${method} ${path}: ${response.status}`).toBe(`${method} ${path}: 404`);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    }
    const denied = instance.sqlite
      .query(`SELECT outcome, status, action FROM audit_log WHERE target_id = ? ORDER BY seq`)
      .all(inB);
    expect(denied).toEqual([
      { outcome: 'denied', status: 404, action: 'api_key.read' },
      { outcome: 'denied', status: 404, action: 'api_key.update' },
      { outcome: 'denied', status: 404, action: 'api_key.revoke' },
    ]);
    // Unmanaged keys do not show up in its list either.
    const list = (await (
      await call(app, 'GET', '/v1/api-keys?limit=100', { headers: limited })
    ).json()) as {
      data: { id: string; project_ids: string[] }[];
    };
    expect(list.data.length).toBeGreaterThan(0);
    for (const key of list.data) expect(key.project_ids).toEqual([helpers.world.projectA]);
  });

  test('a /v1 route missing from the table is refused (fail closed), and the server will not start', async () => {
    const access = createAccessLayer(instance);
    const unlisted = new Elysia({ name: 'unlisted' }).get('/v1/unlisted', () => ({ leaked: true }));
    const failClosed = buildApp(instance, { features: [access.plugin, unlisted] });
    const response = await call(failClosed, 'GET', '/v1/unlisted', {
      headers: { authorization: `Bearer ${tokens.admin}` },
    });
    expect(response.status).toBe(403);
    expect(await response.text()).not.toContain('leaked');
    expect(access.unguardedRoutes(failClosed.routes)).toEqual([
      'GET /v1/unlisted: no permission-table entry',
    ]);
    // Mounted before the plugin, a route would bypass authorization: refuse to start.
    const early = new Elysia({ name: 'early' }).get('/v1/api-keys/:id', () => 'x');
    const misordered = buildApp(instance, {
      features: [early, createAccessLayer(instance).plugin],
    });
    expect(() => misordered.listen({ hostname: '127.0.0.1', port: 0 })).toThrow(
      'routes outside the access layer (refusing to start): GET /v1/api-keys/:id: mounted before the access plugin',
    );
    await misordered.stop(true);
  });
});
