/**
 * Webhooks end to end in process: the HTTP API (five verbs, secret once and sealed, rotation,
 * test ping, delivery log, visibility), and delivery by a real DeliveryWorker to real receivers
 * on 127.0.0.1 that verify every signature with the `standardwebhooks` package.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { eq } from 'drizzle-orm';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { manualClock } from '../src/clock.ts';
import { emitEvent } from '../src/ledger/emit.ts';
import { EVENT_TYPES } from '../src/ledger/event-types.ts';
import { insertApiKey, newApiKeyId } from '../src/keys/service.ts';
import type { LookupAll } from '../src/webhooks/outbound-guard.ts';
import { webhookSecrets } from '../src/db/schema/webhooks.ts';
import {
  api,
  createWebhookTestInstance,
  startReceiver,
  type Receiver,
  type WebhookTestInstance,
} from './fixtures/webhooks.ts';
import { DeliveryWorker } from '../src/webhooks/worker.ts';
import { tempDir } from './harness.ts';

const VALUE = 'VALUE-MARKER-7f3a9c-never-in-an-event';
const NEW_VALUE = 'VALUE-MARKER-second-7f3a9c';

type Webhook = {
  id: string;
  url: string;
  events: string[];
  project_id: string | null;
  enabled: boolean;
  description: string;
  secret?: string;
  failing_since: string | null;
  disabled_reason: string | null;
};
type Delivery = {
  id: string;
  status: string;
  attempt: number;
  response_status: number | null;
  error: string | null;
  next_attempt_at: string | null;
  event_type: string;
  attempts?: { attempt: number; started_at: string; ok: boolean; error: string | null }[];
};
type List<T> = { data: T[]; pagination: { total: number; page: number; limit: number } };

/** Hosts the tests' DNS knows; anything else does not resolve. */
const dnsAnswers = new Map<string, string[]>();
const lookup: LookupAll = async (hostname) => {
  const answers = dnsAnswers.get(hostname);
  if (!answers) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
  return answers.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};

describe('webhooks API', () => {
  const dir = tempDir();
  const clock = manualClock(Date.now());
  let t: WebhookTestInstance;
  let rx: Receiver;
  let projectA: string;
  let projectB: string;

  beforeAll(async () => {
    t = createWebhookTestInstance(dir.path, clock, {}, { lookup });
    rx = startReceiver();
    projectA = (await api(t, 'POST', '/v1/projects', { name: 'alpha' })).body.id as string;
    projectB = (await api(t, 'POST', '/v1/projects', { name: 'beta' })).body.id as string;
  });
  afterAll(async () => {
    rx.stop();
    await t.close();
    dir[Symbol.dispose]();
  });

  test('POST returns the whsec_ secret once, sealed at rest; GET and lists never show it', async () => {
    const created = await api<Webhook>(t, 'POST', '/v1/webhooks', {
      url: `${rx.url}/hook`,
      events: ['resource.created', 'resource.deleted'],
      description: 'ops',
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe(`/v1/webhooks/${created.body.id}`);
    expect(created.body).toMatchObject({
      url: `${rx.url}/hook`,
      events: ['resource.created', 'resource.deleted'],
      project_id: null,
      enabled: true,
      description: 'ops',
      failing_since: null,
      disabled_reason: null,
    });
    expect(created.body.id).toMatch(/^whk_/);
    const secret = created.body.secret!;
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);

    const read = await api<Webhook>(t, 'GET', `/v1/webhooks/${created.body.id}`);
    expect(read.status).toBe(200);
    expect(read.body.secret).toBeUndefined();
    const list = await api<List<Webhook>>(t, 'GET', '/v1/webhooks');
    expect(JSON.stringify(list.body)).not.toContain(secret.slice(6));

    const stored = t.instance.db
      .select()
      .from(webhookSecrets)
      .where(eq(webhookSecrets.webhookId, created.body.id))
      .all();
    expect(stored).toHaveLength(1);
    const raw = Buffer.from(stored[0]!.secret);
    expect(raw.includes(Buffer.from(secret))).toBe(false);
    expect(raw.includes(Buffer.from(secret.slice(6), 'base64'))).toBe(false);
  });

  test('bad input is a 400 naming the field', async () => {
    const cases: [unknown, string][] = [
      [{ url: 'ftp://example.com/x', events: ['*'] }, 'url'],
      [{ url: 'https://user:pw@example.com/x', events: ['*'] }, 'url'],
      [{ url: 'not a url', events: ['*'] }, 'url'],
      [{ url: `${rx.url}/x`, events: [] }, 'events'],
      [{ url: `${rx.url}/x`, events: ['resource.create'] }, 'events'],
      [{ url: `${rx.url}/x`, events: ['*', 'resource.created'] }, 'events'],
      [{ url: `${rx.url}/x`, events: ['*'], project_id: 'nope' }, 'project_id'],
      [{ url: `${rx.url}/x`, events: ['*'], secret: 'whsec_mine' }, 'secret'],
      [{ events: ['*'] }, 'url'],
    ];
    for (const [body, field] of cases) {
      const response = await api<{ error: { code: string; details: { field: string } } }>(
        t,
        'POST',
        '/v1/webhooks',
        body,
      );
      expect(
        `${JSON.stringify(body)}: ${response.status} ${response.body.error?.details?.field}`,
      ).toBe(`${JSON.stringify(body)}: 400 ${field}`);
    }
    const unknownProject = await api(t, 'POST', '/v1/webhooks', {
      url: `${rx.url}/x`,
      events: ['*'],
      project_id: 'prj_01jq3v6x1nf4r8s2k9w7y5t3mz',
    });
    expect(unknownProject.status).toBe(404);
  });

  test('forbidden destinations are refused at save: link-local, metadata, private unless allow-listed', async () => {
    dnsAnswers.set('internal.corp.test', ['10.20.30.40']);
    dnsAnswers.set('meta.corp.test', ['169.254.169.254']);
    dnsAnswers.set('mixed.corp.test', ['93.184.216.34', '192.168.1.9']);
    dnsAnswers.set('loop.corp.test', ['127.0.0.1']);
    const refused = [
      'http://169.254.169.254/latest/meta-data',
      'http://169.254.10.1/',
      'http://[fe80::1]/',
      'http://[fd00:ec2::254]/',
      'http://10.0.0.1/',
      'http://192.168.0.10:8080/',
      'http://[::ffff:10.0.0.1]/',
      'http://internal.corp.test/',
      'http://meta.corp.test/',
      'http://mixed.corp.test/',
    ];
    for (const url of refused) {
      const response = await api<{ error: { details: { field: string; reason: string } } }>(
        t,
        'POST',
        '/v1/webhooks',
        { url, events: ['*'] },
      );
      expect(`${url}: ${response.status} ${response.body.error.details.field}`).toBe(
        `${url}: 400 url`,
      );
      // The reason names the class, never the address.
      expect(response.body.error.details.reason).toMatch(/^destination is a /);
      expect(response.body.error.details.reason).not.toContain('10.20.30.40');
    }
    // Loopback is allow-listed in this instance (webhooks.allowed_cidrs = ["127.0.0.0/8"]); a
    // name that does not resolve now is left to the delivery-time check.
    for (const url of [
      'http://127.0.0.1:9/x',
      'http://loop.corp.test/x',
      'http://nowhere.corp.test/x',
    ]) {
      const response = await api(t, 'POST', '/v1/webhooks', { url, events: ['*'], enabled: false });
      expect(`${url}: ${response.status}`).toBe(`${url}: 201`);
    }
  });

  test('PUT changes fields; DELETE removes the webhook with its secrets and deliveries', async () => {
    const created = (
      await api<Webhook>(t, 'POST', '/v1/webhooks', { url: `${rx.url}/a`, events: ['*'] })
    ).body;
    const updated = await api<Webhook>(t, 'PUT', `/v1/webhooks/${created.id}`, {
      events: ['vault.created'],
      project_id: projectA,
      enabled: false,
      description: 'changed',
    });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({
      events: ['vault.created'],
      project_id: projectA,
      enabled: false,
      description: 'changed',
    });
    expect(
      (await api(t, 'PUT', `/v1/webhooks/${created.id}`, { url: 'http://10.0.0.1/' })).status,
    ).toBe(400);
    await t.instance.writes.run(() =>
      emitEvent(
        t.instance.db,
        clock,
        { type: 'ping', projectId: null, object: {} },
        {
          onlyWebhookId: created.id,
        },
      ),
    );
    const deleted = await api(t, 'DELETE', `/v1/webhooks/${created.id}`);
    expect(deleted).toMatchObject({ status: 200, body: { id: created.id, deleted: true } });
    expect((await api(t, 'GET', `/v1/webhooks/${created.id}`)).status).toBe(404);
    const left = t.instance.sqlite
      .query(
        `SELECT (SELECT count(*) FROM webhook_secrets WHERE webhook_id = ?1) +
                (SELECT count(*) FROM webhook_deliveries WHERE webhook_id = ?1) AS n`,
      )
      .get(created.id) as { n: number };
    expect(left.n).toBe(0);
  });

  test('lists: newest first, filters, pagination with Link', async () => {
    const inA = await api<Webhook>(t, 'POST', '/v1/webhooks', {
      url: `${rx.url}/pa`,
      events: ['*'],
      project_id: projectA,
    });
    expect(inA.status).toBe(201);
    const all = await api<List<Webhook>>(t, 'GET', '/v1/webhooks?limit=2');
    expect(all.body.data[0]!.id).toBe(inA.body.id);
    expect(all.body.pagination.limit).toBe(2);
    expect(all.headers.get('link')).toContain('rel="next"');
    const filtered = await api<List<Webhook>>(t, 'GET', `/v1/webhooks?project_id=${projectA}`);
    expect(filtered.body.data.every((w) => w.project_id === projectA)).toBe(true);
    expect(filtered.body.data.map((w) => w.id)).toContain(inA.body.id);
    const disabled = await api<List<Webhook>>(t, 'GET', '/v1/webhooks?enabled=false&limit=100');
    expect(disabled.body.data.length).toBeGreaterThan(0);
    expect(disabled.body.data.every((w) => !w.enabled)).toBe(true);
    const enabled = await api<List<Webhook>>(t, 'GET', '/v1/webhooks?enabled=true&limit=100');
    expect(enabled.body.pagination.total + disabled.body.pagination.total).toBe(
      (await api<List<Webhook>>(t, 'GET', '/v1/webhooks')).body.pagination.total,
    );
    expect((await api(t, 'GET', '/v1/webhooks?enabled=yes')).status).toBe(400);
  });

  test('a manager limited to a project reaches only that project’s webhooks', async () => {
    const { token } = insertApiKey(
      t.instance.db,
      newApiKeyId(),
      {
        name: 'm',
        role: 'manager',
        projectIds: [projectA],
        vaultIds: [],
        scopes: null,
        expiresAt: null,
      },
      'test',
      clock.now(),
    );
    const manager = { authorization: `Bearer ${token}` };
    const inB = (
      await api<Webhook>(t, 'POST', '/v1/webhooks', {
        url: `${rx.url}/b`,
        events: ['*'],
        project_id: projectB,
      })
    ).body;
    const global = (
      await api<Webhook>(t, 'POST', '/v1/webhooks', { url: `${rx.url}/g`, events: ['*'] })
    ).body;

    const own = await api<Webhook>(
      t,
      'POST',
      '/v1/webhooks',
      { url: `${rx.url}/m`, events: ['*'], project_id: projectA },
      manager,
    );
    expect(own.status).toBe(201);
    expect(
      (await api(t, 'POST', '/v1/webhooks', { url: `${rx.url}/m`, events: ['*'] }, manager)).status,
    ).toBe(403);
    expect(
      (
        await api(
          t,
          'POST',
          '/v1/webhooks',
          { url: `${rx.url}/m`, events: ['*'], project_id: projectB },
          manager,
        )
      ).status,
    ).toBe(404);
    for (const id of [inB.id, global.id]) {
      expect((await api(t, 'GET', `/v1/webhooks/${id}`, undefined, manager)).status).toBe(404);
      expect((await api(t, 'PUT', `/v1/webhooks/${id}`, { enabled: false }, manager)).status).toBe(
        404,
      );
      expect((await api(t, 'DELETE', `/v1/webhooks/${id}`, undefined, manager)).status).toBe(404);
      expect(
        (await api(t, 'POST', `/v1/webhooks/${id}/rotate-secret`, undefined, manager)).status,
      ).toBe(404);
      expect(
        (await api(t, 'GET', `/v1/webhooks/${id}/deliveries`, undefined, manager)).status,
      ).toBe(404);
    }
    // Moving its webhook to another project is refused the same way.
    expect(
      (await api(t, 'PUT', `/v1/webhooks/${own.body.id}`, { project_id: projectB }, manager))
        .status,
    ).toBe(404);
    const list = await api<List<Webhook>>(t, 'GET', '/v1/webhooks?limit=100', undefined, manager);
    expect(list.body.data.length).toBeGreaterThan(0);
    expect(list.body.data.every((w) => w.project_id === projectA)).toBe(true);
    expect(
      (await api(t, 'GET', `/v1/webhooks?project_id=${projectB}`, undefined, manager)).status,
    ).toBe(404);
  });

  test('every event type of docs/api.md §6 is accepted in a subscription', async () => {
    const response = await api<Webhook>(t, 'POST', '/v1/webhooks', {
      url: `${rx.url}/all`,
      events: [...EVENT_TYPES],
      enabled: false,
    });
    expect(response.status).toBe(201);
    expect(response.body.events).toEqual([...EVENT_TYPES]);
  });
});

describe('delivery', () => {
  const dir = tempDir();
  const clock = manualClock(Date.now());
  let t: WebhookTestInstance;
  let worker: DeliveryWorker;
  const receivers: Receiver[] = [];
  const receiver = (options?: Parameters<typeof startReceiver>[0]) => {
    const r = startReceiver(options);
    receivers.push(r);
    return r;
  };
  const createHook = async (rx: Receiver, body: Record<string, unknown>): Promise<Webhook> => {
    const created = await api<Webhook>(t, 'POST', '/v1/webhooks', {
      url: `${rx.url}/hook`,
      ...body,
    });
    expect(created.status).toBe(201);
    rx.setSecrets([created.body.secret!]);
    return created.body;
  };

  beforeAll(() => {
    t = createWebhookTestInstance(dir.path, clock, { webhooks: { timeout_ms: 1000 } });
    worker = new DeliveryWorker(t.instance, { random: () => 1 });
  });
  afterAll(async () => {
    for (const r of receivers) r.stop();
    await t.close();
    dir[Symbol.dispose]();
  });

  test('a scenario through the API: every event delivered, every signature verified, no value anywhere', async () => {
    const everything = receiver();
    const hook = await createHook(everything, { events: ['*'] });
    const project = (await api(t, 'POST', '/v1/projects', { name: 'scenario' })).body.id as string;
    await api(t, 'PUT', `/v1/projects/${project}`, { description: 'changed' });
    const vault = (await api(t, 'POST', '/v1/vaults', { project_id: project, name: 'v' })).body
      .id as string;
    await api(t, 'PUT', `/v1/vaults/${vault}`, { description: 'changed' });
    const created = await api(t, 'POST', '/v1/resources', {
      type: 'secret',
      vault_id: vault,
      name: 'db-password',
      value: VALUE,
    });
    expect(created.status).toBe(201);
    const resource = created.body.id as string;
    expect((await api(t, 'PUT', `/v1/resources/${resource}`, { value: NEW_VALUE })).status).toBe(
      200,
    );
    expect((await api(t, 'DELETE', `/v1/resources/${resource}`)).status).toBe(200);
    expect((await api(t, 'POST', `/v1/resources/${resource}/restore`)).status).toBe(200);
    expect((await api(t, 'DELETE', `/v1/resources/${resource}`)).status).toBe(200);
    const ping = await api<Delivery>(t, 'POST', `/v1/webhooks/${hook.id}/test`);
    expect(ping.status).toBe(201);
    expect(ping.body).toMatchObject({ status: 'pending', attempt: 0, event_type: 'ping' });
    expect(ping.headers.get('location')).toBe(`/v1/webhooks/${hook.id}/deliveries/${ping.body.id}`);
    // Events show a webhook's origin only: its path may hold the receiver's token.
    const pings = await api<{ data: { data: { object: { url: string } } }[] }>(
      t,
      'GET',
      '/v1/events?type=ping',
    );
    expect(pings.body.data.map((e) => e.data.object.url)).toContain(new URL(hook.url).origin);
    expect(JSON.stringify(pings.body)).not.toContain(hook.url);

    await worker.drain();
    const types = everything.received.map((r) => r.payload.type);
    expect(types.sort()).toEqual(
      [
        'project.created',
        'project.updated',
        'vault.created',
        'vault.updated',
        'resource.created',
        'resource.updated',
        'resource.deleted',
        'resource.restored',
        'resource.deleted',
        'ping',
      ].sort(),
    );
    expect(everything.unverified).toEqual([]);
    for (const r of everything.received) {
      expect(r.verifiedWith).toEqual([0]);
      expect(r.webhookId).toBe(r.payload.id);
      expect(r.payload.id).toMatch(/^evt_/);
      expect(r.payload.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      expect(Object.keys(r.payload).sort()).toEqual(['created_at', 'data', 'id', 'type']);
      expect(Object.keys(r.payload.data)).toEqual(['object']);
    }
    const resourceEvent = everything.received.find((r) => r.payload.type === 'resource.created')!;
    expect(resourceEvent.payload.data.object).toMatchObject({
      id: resource,
      name: 'db-password',
      vault_id: vault,
    });
    expect(resourceEvent.payload.data.object.value).toBeUndefined();

    // What receivers got is what GET /v1/events lists, byte for byte in content.
    const listed = await api<List<{ id: string }>>(t, 'GET', '/v1/events?limit=100');
    for (const r of everything.received) {
      expect(listed.body.data).toContainEqual(r.payload);
    }
    // No value in any payload, in the events table, or in any delivery record.
    const dump = JSON.stringify([
      everything.received.map((r) => r.body),
      t.instance.sqlite.query('SELECT * FROM events').all(),
      t.instance.sqlite.query('SELECT * FROM webhook_deliveries').all(),
      t.instance.sqlite.query('SELECT * FROM webhook_delivery_attempts').all(),
    ]);
    for (const marker of [VALUE, NEW_VALUE, 'VALUE-MARKER']) expect(dump).not.toContain(marker);

    const deliveries = await api<List<Delivery>>(
      t,
      'GET',
      `/v1/webhooks/${hook.id}/deliveries?limit=100`,
    );
    expect(deliveries.body.pagination.total).toBe(10);
    for (const d of deliveries.body.data) {
      expect(d).toMatchObject({
        status: 'succeeded',
        attempt: 1,
        response_status: 200,
        error: null,
        next_attempt_at: null,
      });
    }
    const succeeded = await api<List<Delivery>>(
      t,
      'GET',
      `/v1/webhooks/${hook.id}/deliveries?status=failed`,
    );
    expect(succeeded.body.pagination.total).toBe(0);
    await api(t, 'PUT', `/v1/webhooks/${hook.id}`, { enabled: false });
  });

  test('subscriptions filter by exact type and by project; instance-wide events skip project webhooks', async () => {
    const typed = receiver();
    const scoped = receiver();
    const p1 = (await api(t, 'POST', '/v1/projects', { name: 'one' })).body.id as string;
    const p2 = (await api(t, 'POST', '/v1/projects', { name: 'two' })).body.id as string;
    await createHook(typed, { events: ['vault.created'] });
    await createHook(scoped, { events: ['*'], project_id: p1 });
    await api(t, 'POST', '/v1/vaults', { project_id: p1, name: 'a' });
    await api(t, 'POST', '/v1/vaults', { project_id: p2, name: 'b' });
    await api(t, 'PUT', `/v1/projects/${p1}`, { description: 'x' });
    await t.instance.writes.run(() =>
      emitEvent(t.instance.db, clock, { type: 'master_key.rotated', projectId: null, object: {} }),
    );
    await worker.drain();
    expect(typed.received.map((r) => r.payload.type)).toEqual(['vault.created', 'vault.created']);
    expect(
      scoped.received
        .map(
          (r) =>
            `${r.payload.type}:${r.payload.data.object.project_id ?? r.payload.data.object.id}`,
        )
        .sort(),
    ).toEqual([`project.updated:${p1}`, `vault.created:${p1}`].sort());
    expect([...typed.unverified, ...scoped.unverified]).toEqual([]);
  });

  test('an event commits with its change or not at all; outside a transaction emitEvent refuses', async () => {
    const count = () =>
      (t.instance.sqlite.query('SELECT count(*) AS n FROM events').get() as { n: number }).n;
    const before = count();
    const failing = t.instance.writes.run(() => {
      emitEvent(t.instance.db, clock, { type: 'ping', projectId: null, object: {} });
      throw new Error('the change failed');
    });
    await expect(failing).rejects.toThrow('the change failed');
    expect(count()).toBe(before);
    await t.instance.writes.run(() =>
      emitEvent(t.instance.db, clock, { type: 'ping', projectId: null, object: {} }),
    );
    expect(count()).toBe(before + 1);
    expect(() =>
      emitEvent(t.instance.db, clock, { type: 'ping', projectId: null, object: {} }),
    ).toThrow('inside the write transaction');
  });

  test('secret-bearing keys are stripped from event objects at any depth', async () => {
    const rx = receiver();
    await createHook(rx, { events: ['resource.updated'] });
    await t.instance.writes.run(() =>
      emitEvent(t.instance.db, clock, {
        type: 'resource.updated',
        projectId: null,
        object: {
          id: 'res_x',
          value: VALUE,
          Private_Key: VALUE,
          nested: { token: VALUE, secret: VALUE, keep: 'yes', list: [{ password: VALUE, ok: 1 }] },
        },
      }),
    );
    await worker.drain();
    expect(rx.received).toHaveLength(1);
    expect(rx.received[0]!.payload.data.object).toEqual({
      id: 'res_x',
      nested: { keep: 'yes', list: [{ ok: 1 }] },
    });
    expect(rx.received[0]!.body).not.toContain('VALUE-MARKER');
  });

  test('retries: fails N times then succeeds, spaced by backoff on the injected clock, same id, fresh timestamps', async () => {
    const flaky = receiver({
      behaviour: (n) => new Response(n < 3 ? 'down' : 'ok', { status: n < 3 ? 503 : 200 }),
      strict: false, // the injected clock runs 42 min ahead of the real one
    });
    const hook = await createHook(flaky, { events: ['ping'] });
    await api(t, 'POST', `/v1/webhooks/${hook.id}/test`);
    const start = clock.now();
    // random = 1: the top of each ±20 % range of the schedule (5 s, 5 min, 30 min).
    const expectedGaps = [6_000, 360_000, 2_160_000];
    const offsets = [0, 6_000, 366_000, 2_526_000];
    expect(await worker.tick()).toBe(1);
    for (const gap of expectedGaps) {
      clock.advance(gap - 1);
      expect(await worker.tick()).toBe(0); // not due yet
      clock.advance(1);
      expect(await worker.tick()).toBe(1);
    }
    expect(flaky.received.map((r) => r.status)).toEqual([503, 503, 503, 200]);
    expect(new Set(flaky.received.map((r) => r.webhookId)).size).toBe(1);
    expect(flaky.received.map((r) => r.timestamp)).toEqual(
      offsets.map((offset) => Math.floor((start + offset) / 1000)),
    );
    expect(flaky.unverified).toEqual([]);

    const list = await api<List<Delivery>>(t, 'GET', `/v1/webhooks/${hook.id}/deliveries`);
    const delivery = list.body.data[0]!;
    expect(delivery).toMatchObject({ status: 'succeeded', attempt: 4, response_status: 200 });
    const detail = await api<Delivery>(
      t,
      'GET',
      `/v1/webhooks/${hook.id}/deliveries/${delivery.id}`,
    );
    expect(detail.body.attempts!.map((a) => [a.attempt, a.ok, a.error])).toEqual([
      [1, false, 'receiver answered HTTP 503'],
      [2, false, 'receiver answered HTTP 503'],
      [3, false, 'receiver answered HTTP 503'],
      [4, true, null],
    ]);
    const startedAt = detail.body.attempts!.map(
      (a) => Date.parse(a.started_at) - Math.floor(start / 1000) * 1000,
    );
    expect(startedAt).toEqual(offsets);
  });

  test('max_attempts exhausted: failed; a manual retry queues it again with a fresh budget', async () => {
    let up = false;
    const down = receiver({ behaviour: () => new Response('', { status: up ? 204 : 500 }) });
    const hook = await createHook(down, { events: ['ping'] });
    const queued = (await api<Delivery>(t, 'POST', `/v1/webhooks/${hook.id}/test`)).body;
    for (let attempt = 1; attempt <= 10; attempt++) {
      expect(await worker.tick()).toBe(1);
      const state = (
        await api<Delivery>(t, 'GET', `/v1/webhooks/${hook.id}/deliveries/${queued.id}`)
      ).body;
      if (attempt < 10) {
        expect(state.status).toBe('pending');
        expect(Date.parse(state.next_attempt_at!)).toBeGreaterThan(clock.now() - 1000);
        clock.set(Date.parse(state.next_attempt_at!) + 999);
      } else {
        expect(state).toMatchObject({
          status: 'failed',
          attempt: 10,
          next_attempt_at: null,
          response_status: 500,
        });
      }
    }
    clock.advance(86_400_000);
    expect(await worker.tick()).toBe(0);
    up = true;
    const retried = await api<Delivery>(
      t,
      'POST',
      `/v1/webhooks/${hook.id}/deliveries/${queued.id}/retry`,
    );
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ status: 'pending', attempt: 10 });
    await worker.drain();
    const final = (await api<Delivery>(t, 'GET', `/v1/webhooks/${hook.id}/deliveries/${queued.id}`))
      .body;
    expect(final).toMatchObject({ status: 'succeeded', attempt: 11, response_status: 204 });
    expect(down.received).toHaveLength(11);
    expect(
      (
        await api(
          t,
          'POST',
          `/v1/webhooks/${hook.id}/deliveries/dlv_01jq3v6x1nf4r8s2k9w7y5t3m0/retry`,
        )
      ).status,
    ).toBe(404);
  });

  test('an endpoint failing for disable_after_hours is disabled with a webhook.disabled event', async () => {
    const local = tempDir();
    const c = manualClock(Date.now());
    const inst = createWebhookTestInstance(local.path, c, {
      webhooks: { disable_after_hours: 1, max_attempts: 50 },
    });
    const w = new DeliveryWorker(inst.instance, { random: () => 1 });
    const broken = receiver({ behaviour: () => new Response('no', { status: 500 }) });
    const watcher = receiver({ strict: false });
    const bad = (
      await api<Webhook>(inst, 'POST', '/v1/webhooks', {
        url: `${broken.url}/hooks/T0-TOKEN-MARKER?key=QUERY-MARKER`,
        events: ['ping'],
      })
    ).body;
    const watch = (
      await api<Webhook>(inst, 'POST', '/v1/webhooks', {
        url: `${watcher.url}/x`,
        events: ['webhook.disabled'],
      })
    ).body;
    watcher.setSecrets([watch.secret!]);
    await api(inst, 'POST', `/v1/webhooks/${bad.id}/test`);
    const started = c.now();
    for (let i = 0; i < 50; i++) {
      await w.tick();
      const row = (await api<Webhook>(inst, 'GET', `/v1/webhooks/${bad.id}`)).body;
      if (!row.enabled) break;
      expect(row.failing_since).toBe(
        new Date(Math.floor(started / 1000) * 1000).toISOString().replace('.000', ''),
      );
      const next = inst.instance.sqlite
        .query(`SELECT next_attempt_at AS n FROM webhook_deliveries WHERE webhook_id = ?`)
        .get(bad.id) as { n: number };
      c.set(next.n);
    }
    const disabled = (await api<Webhook>(inst, 'GET', `/v1/webhooks/${bad.id}`)).body;
    expect(disabled.enabled).toBe(false);
    // Disabled by the first failed attempt an hour or more after the first failure: with the
    // top of the jitter range the attempts run 6 s, 6 min, 36 min and 2.4 h apart.
    const elapsed = c.now() - started;
    expect(elapsed).toBe(6_000 + 360_000 + 2_160_000 + 8_640_000);
    expect(disabled.disabled_reason).toContain('failed for 3 hours (since');
    await w.drain();
    expect(watcher.received.map((r) => r.payload.type)).toEqual(['webhook.disabled']);
    expect(watcher.received[0]!.payload.data.object).toMatchObject({
      id: bad.id,
      enabled: false,
      url: new URL(broken.url).origin, // the path and query may hold the receiver's token
    });
    const listed = await api<{ data: unknown[] }>(inst, 'GET', '/v1/events?type=webhook.disabled');
    for (const seen of [JSON.stringify(watcher.received), JSON.stringify(listed.body)]) {
      expect(seen).toContain(bad.id);
      expect(seen).not.toContain('TOKEN-MARKER');
      expect(seen).not.toContain('QUERY-MARKER');
    }
    expect(watcher.unverified).toEqual([]);
    // Disabled: its pending delivery is held, not attempted.
    const attemptsBefore = broken.received.length;
    c.advance(86_400_000);
    await w.drain();
    expect(broken.received.length).toBe(attemptsBefore);
    // A test ping on a disabled webhook is refused; enabling clears the failure record.
    expect((await api(inst, 'POST', `/v1/webhooks/${bad.id}/test`)).status).toBe(409);
    const enabled = (await api<Webhook>(inst, 'PUT', `/v1/webhooks/${bad.id}`, { enabled: true }))
      .body;
    expect(enabled).toMatchObject({ enabled: true, failing_since: null, disabled_reason: null });
    await inst.close();
    local[Symbol.dispose]();
  });

  test('the receiver URL, token included, is sealed at rest and still reached', async () => {
    const local = tempDir();
    const inst = createWebhookTestInstance(local.path, manualClock(Date.now()));
    const w = new DeliveryWorker(inst.instance, { random: () => 1 });
    const rx = receiver({ strict: false });
    const hook = (
      await api<Webhook>(inst, 'POST', '/v1/webhooks', {
        url: `${rx.url}/services/PATH-TOKEN-MARKER-1?token=QUERY-TOKEN-MARKER-1`,
        events: ['ping'],
      })
    ).body;
    const moved = await api<Webhook>(inst, 'PUT', `/v1/webhooks/${hook.id}`, {
      url: `${rx.url}/services/PATH-TOKEN-MARKER-2?token=QUERY-TOKEN-MARKER-2`,
    });
    expect(moved.body.url).toBe(
      `${rx.url}/services/PATH-TOKEN-MARKER-2?token=QUERY-TOKEN-MARKER-2`,
    );
    expect((await api<Webhook>(inst, 'GET', `/v1/webhooks/${hook.id}`)).body.url).toBe(
      moved.body.url,
    );
    expect((await api(inst, 'POST', `/v1/webhooks/${hook.id}/test`)).status).toBe(201);
    await w.drain();
    // The worker opened the sealed URL: the delivery reached its path.
    expect(rx.received.map((r) => r.path)).toEqual(['/services/PATH-TOKEN-MARKER-2']);

    const files = () =>
      readdirSync(local.path, { recursive: true, withFileTypes: true })
        .filter((entry) => entry.isFile())
        .map((entry) => join(entry.parentPath, entry.name));
    const leaks = () =>
      files().filter((path) => {
        const bytes = readFileSync(path);
        return ['TOKEN-MARKER', 'services/PATH'].some((marker) => bytes.includes(marker));
      });
    expect(files().some((path) => path.endsWith('-wal'))).toBe(true);
    expect(leaks()).toEqual([]);
    inst.instance.sqlite.run('PRAGMA wal_checkpoint(TRUNCATE)');
    expect(leaks()).toEqual([]);
    await inst.close();
    expect(leaks()).toEqual([]);
    local[Symbol.dispose]();
  });

  test('redirects are not followed and slow receivers time out', async () => {
    const target = receiver();
    const redirecting = receiver({
      behaviour: () =>
        new Response(null, { status: 307, headers: { location: `${target.url}/stolen` } }),
    });
    const sleepy = receiver({
      behaviour: async () => (await Bun.sleep(1_500), new Response('late')),
    });
    const r = await createHook(redirecting, { events: ['ping'] });
    const s = await createHook(sleepy, { events: ['ping'] });
    const d1 = (await api<Delivery>(t, 'POST', `/v1/webhooks/${r.id}/test`)).body;
    const d2 = (await api<Delivery>(t, 'POST', `/v1/webhooks/${s.id}/test`)).body;
    await worker.tick();
    const redirected = (await api<Delivery>(t, 'GET', `/v1/webhooks/${r.id}/deliveries/${d1.id}`))
      .body;
    expect(redirected).toMatchObject({
      status: 'pending',
      response_status: 307,
      error: 'redirect not followed (HTTP 307)',
    });
    expect(target.received).toHaveLength(0);
    const timedOut = (await api<Delivery>(t, 'GET', `/v1/webhooks/${s.id}/deliveries/${d2.id}`))
      .body;
    expect(timedOut).toMatchObject({
      status: 'pending',
      response_status: null,
      error: 'timeout after 1000 ms',
    });
    await api(t, 'PUT', `/v1/webhooks/${r.id}`, { enabled: false });
    await api(t, 'PUT', `/v1/webhooks/${s.id}`, { enabled: false });
  });
  test('rotate-secret: both secrets sign for 24 h, then only the new one', async () => {
    // The injected clock ran ahead in earlier tests: check signatures without the tolerance.
    const rx = receiver({ strict: false });
    const hook = await createHook(rx, { events: ['ping'] });
    const oldSecret = hook.secret!;
    const rotated = await api<{ id: string; secret: string; previous_secret_expires_at: string }>(
      t,
      'POST',
      `/v1/webhooks/${hook.id}/rotate-secret`,
    );
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(oldSecret);
    expect(Date.parse(rotated.body.previous_secret_expires_at)).toBe(
      Math.floor((clock.now() + 86_400_000) / 1000) * 1000,
    );
    rx.setSecrets([oldSecret, rotated.body.secret]);
    await api(t, 'POST', `/v1/webhooks/${hook.id}/test`);
    await worker.drain();
    expect(rx.received).toHaveLength(1);
    expect(rx.received[0]!.signatures).toHaveLength(2);
    // A receiver that knows only one of the two secrets verifies the delivery either way.
    expect(rx.received[0]!.verifiedWith).toEqual([0, 1]);

    const later = startReceiver({ strict: false, secrets: [oldSecret, rotated.body.secret] });
    receivers.push(later);
    await api(t, 'PUT', `/v1/webhooks/${hook.id}`, { url: `${later.url}/hook` });
    clock.advance(86_400_000 + 1000);
    await api(t, 'POST', `/v1/webhooks/${hook.id}/test`);
    await worker.drain();
    expect(later.received).toHaveLength(1);
    expect(later.received[0]!.signatures).toHaveLength(1);
    expect(later.received[0]!.verifiedWith).toEqual([1]);
  });
});
