/**
 * The event log: `GET /v1/events` (filters, pagination, visibility), retention, and the expiry
 * notices the worker's housekeeping emits (`resource.expiring` at each threshold and
 * `resource.expired`, once each), all on an injected clock.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { manualClock } from '../src/clock.ts';
import { emitEvent } from '../src/ledger/emit.ts';
import { insertApiKey, newApiKeyId } from '../src/keys/service.ts';
import { api, createWebhookTestInstance, type WebhookTestInstance } from './fixtures/webhooks.ts';
import { DeliveryWorker } from '../src/webhooks/worker.ts';
import { tempDir } from './harness.ts';
import { openWorld } from './resources-harness.ts';

const DAY = 86_400_000;

type Event = {
  id: string;
  type: string;
  created_at: string;
  data: { object: Record<string, unknown> };
};
type List<T> = { data: T[]; pagination: { total: number; page: number; limit: number } };

describe('GET /v1/events', () => {
  const dir = tempDir();
  const clock = manualClock(Date.UTC(2030, 0, 1));
  let t: WebhookTestInstance;
  let projectA: string;
  let projectB: string;
  let midpoint: number;

  beforeAll(async () => {
    t = createWebhookTestInstance(dir.path, clock);
    projectA = (await api(t, 'POST', '/v1/projects', { name: 'a' })).body.id as string;
    clock.advance(60_000);
    midpoint = clock.now();
    projectB = (await api(t, 'POST', '/v1/projects', { name: 'b' })).body.id as string;
    await api(t, 'POST', '/v1/vaults', { project_id: projectA, name: 'va' });
    await api(t, 'POST', '/v1/vaults', { project_id: projectB, name: 'vb' });
    await t.instance.writes.run(() =>
      emitEvent(t.instance.db, clock, { type: 'master_key.rotated', projectId: null, object: {} }),
    );
  });
  afterAll(async () => {
    await t.close();
    dir[Symbol.dispose]();
  });

  test('lists newest first with the delivered payload shape', async () => {
    const list = await api<List<Event>>(t, 'GET', '/v1/events');
    expect(list.status).toBe(200);
    expect(list.body.data.map((e) => e.type)).toEqual([
      'master_key.rotated',
      'vault.created',
      'vault.created',
      'project.created',
      'project.created',
    ]);
    expect(list.body.pagination).toEqual({ total: 5, page: 1, limit: 50 });
    const one = list.body.data[1]!;
    expect(Object.keys(one).sort()).toEqual(['created_at', 'data', 'id', 'type']);
    expect((await api<Event>(t, 'GET', `/v1/events/${one.id}`)).body).toEqual(one);
    expect((await api(t, 'GET', '/v1/events/evt_01jq3v6x1nf4r8s2k9w7y5t3m0')).status).toBe(404);
  });

  test('filters: type (exact or object.*), since, project_id; pagination with Link', async () => {
    const types = async (query: string) =>
      (await api<List<Event>>(t, 'GET', `/v1/events?${query}`)).body.data.map((e) => e.type);
    expect(await types('type=vault.created')).toEqual(['vault.created', 'vault.created']);
    expect(await types('type=project.*')).toEqual(['project.created', 'project.created']);
    expect(await types('type=resource.created')).toEqual([]);
    const since = new Date(midpoint).toISOString();
    expect(await types(`since=${since}`)).toEqual([
      'master_key.rotated',
      'vault.created',
      'vault.created',
      'project.created',
    ]);
    expect(await types(`project_id=${projectA}`)).toEqual(['vault.created', 'project.created']);
    const page = await api<List<Event>>(t, 'GET', '/v1/events?limit=2&page=2');
    expect(page.body.data.map((e) => e.type)).toEqual(['vault.created', 'project.created']);
    expect(page.headers.get('link')).toContain('rel="next"');
    expect(page.headers.get('link')).toContain('rel="prev"');
    for (const bad of ['since=yesterday', 'limit=0', 'project_id=nope']) {
      expect(`${bad}: ${(await api(t, 'GET', `/v1/events?${bad}`)).status}`).toBe(`${bad}: 400`);
    }
  });

  test('a key limited to a project sees that project’s events only', async () => {
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
    const list = await api<List<Event>>(t, 'GET', '/v1/events', undefined, manager);
    expect(list.body.data.map((e) => e.type)).toEqual(['vault.created', 'project.created']);
    expect(
      (await api(t, 'GET', `/v1/events?project_id=${projectB}`, undefined, manager)).status,
    ).toBe(404);
    const foreign = (await api<List<Event>>(t, 'GET', `/v1/events?project_id=${projectB}`)).body
      .data[0]!;
    expect((await api(t, 'GET', `/v1/events/${foreign.id}`, undefined, manager)).status).toBe(404);
    const global = (await api<List<Event>>(t, 'GET', '/v1/events?type=master_key.rotated')).body
      .data[0]!;
    expect((await api(t, 'GET', `/v1/events/${global.id}`, undefined, manager)).status).toBe(404);
  });

  test('retention: events older than events.retention_days go, with their deliveries', async () => {
    const hook = await api<{ id: string }>(t, 'POST', '/v1/webhooks', {
      url: 'http://127.0.0.1:9/unused',
      events: ['*'],
      enabled: false,
    });
    await t.instance.writes.run(() =>
      emitEvent(
        t.instance.db,
        clock,
        { type: 'ping', projectId: null, object: {} },
        { onlyWebhookId: hook.body.id },
      ),
    );
    const worker = new DeliveryWorker(t.instance);
    await worker.tick();
    expect((await api<List<Event>>(t, 'GET', '/v1/events')).body.pagination.total).toBe(6);
    clock.advance(90 * DAY - 120_000);
    await t.instance.writes.run(() =>
      emitEvent(t.instance.db, clock, { type: 'ping', projectId: null, object: { fresh: true } }),
    );
    clock.advance(60_000 + 1); // the first project.created is now older than 90 days
    const later = new DeliveryWorker(t.instance);
    await later.tick();
    const left = (await api<List<Event>>(t, 'GET', '/v1/events')).body.data;
    expect(left).toHaveLength(6);
    expect(left.filter((e) => e.type === 'project.created')).toHaveLength(1);
    clock.advance(DAY);
    await new DeliveryWorker(t.instance).tick();
    const last = (await api<List<Event>>(t, 'GET', '/v1/events')).body.data;
    expect(last.map((e) => e.data.object)).toEqual([{ fresh: true }]);
    const orphans = t.instance.sqlite
      .query('SELECT count(*) AS n FROM webhook_deliveries')
      .get() as { n: number };
    expect(orphans.n).toBe(0);
  });
});

describe('expiry notices', () => {
  const dir = tempDir();
  const clock = manualClock(Date.UTC(2030, 0, 1));
  let t: WebhookTestInstance;
  let vault: string;
  let worker: DeliveryWorker;

  const notices = async () =>
    (await api<List<Event>>(t, 'GET', '/v1/events?type=resource.*&limit=100')).body.data
      .filter((e) => e.type === 'resource.expiring' || e.type === 'resource.expired')
      .reverse()
      .map((e) => `${e.type}:${e.data.object.name}:${e.data.object.days_before_expiry ?? '-'}`);
  const scanAt = async (ms: number) => {
    clock.set(ms);
    await worker.tick();
  };

  beforeAll(async () => {
    t = createWebhookTestInstance(dir.path, clock, {
      notifications: { expiring_days: [30, 7, 1] },
    });
    const project = (await api(t, 'POST', '/v1/projects', { name: 'p' })).body.id as string;
    vault = (await api(t, 'POST', '/v1/vaults', { project_id: project, name: 'v' })).body
      .id as string;
    worker = new DeliveryWorker(t.instance, { expiryScanIntervalMs: 0 });
  });
  afterAll(async () => {
    await t.close();
    dir[Symbol.dispose]();
  });

  const create = async (name: string, expiresAt: number) => {
    const response = await api(t, 'POST', '/v1/resources', {
      type: 'secret',
      vault_id: vault,
      name,
      value: 'VALUE-MARKER-expiry',
      expires_at: new Date(expiresAt).toISOString(),
    });
    expect(response.status).toBe(201);
    return response.body.id as string;
  };

  test('each threshold once, then expired once; a scan that crosses several announces the tightest', async () => {
    const start = clock.now();
    await create('forty', start + 40 * DAY);
    await create('three', start + 3 * DAY);
    await create('never', start + 400 * DAY);
    await scanAt(start);
    // "three" is already inside 30 and 7 days: one notice, at 7.
    expect(await notices()).toEqual(['resource.expiring:three:7']);
    await scanAt(start + 1 * DAY); // nothing new
    expect(await notices()).toEqual(['resource.expiring:three:7']);
    // A scan after a long pause: "three" expired meanwhile (its 1-day notice is skipped, the
    // expired one sent); "forty" is now within 30 days. Repeated scans add nothing.
    await scanAt(start + 10 * DAY + 1);
    await scanAt(start + 10 * DAY + 2);
    expect(await notices()).toEqual([
      'resource.expiring:three:7',
      'resource.expired:three:-',
      'resource.expiring:forty:30',
    ]);
    await scanAt(start + 33 * DAY); // forty: 7 days left
    await scanAt(start + 39 * DAY + 1); // forty: < 1 day
    await scanAt(start + 40 * DAY); // forty: expired
    await scanAt(start + 41 * DAY);
    await scanAt(start + 60 * DAY);
    expect(await notices()).toEqual([
      'resource.expiring:three:7',
      'resource.expired:three:-',
      'resource.expiring:forty:30',
      'resource.expiring:forty:7',
      'resource.expiring:forty:1',
      'resource.expired:forty:-',
    ]);
    const event = (await api<List<Event>>(t, 'GET', '/v1/events?type=resource.expired')).body
      .data[0]!;
    expect(event.data.object).toMatchObject({ name: 'forty', vault_id: vault, type: 'secret' });
    expect(JSON.stringify(event)).not.toContain('VALUE-MARKER');
  });

  test('a renewed resource gets a fresh set; a deleted one gets none', async () => {
    const start = clock.now();
    const renewed = await create('renewed', start + 5 * DAY);
    const deleted = await create('deleted', start + 5 * DAY);
    expect((await api(t, 'DELETE', `/v1/resources/${deleted}`)).status).toBe(200);
    await scanAt(start + 1);
    const before = (await notices()).length;
    expect((await notices()).slice(before - 1)).toEqual(['resource.expiring:renewed:7']);
    const put = await api(t, 'PUT', `/v1/resources/${renewed}`, {
      expires_at: new Date(start + 20 * DAY).toISOString(),
    });
    expect(put.status).toBe(200);
    await scanAt(start + 2);
    await scanAt(start + 13 * DAY + 1);
    await scanAt(start + 20 * DAY);
    expect((await notices()).slice(before)).toEqual([
      'resource.expiring:renewed:30',
      'resource.expiring:renewed:7',
      'resource.expired:renewed:-',
    ]);
    expect((await notices()).some((n) => n.includes(':deleted:'))).toBe(false);
  });
});

describe('events follow the visibility of the object they describe', () => {
  test('an admin key’s events are hidden from managers, in the list, by id and in deliveries', async () => {
    const w = openWorld();
    try {
      const manager = w.key({ role: 'manager' }).token;
      const project = await w.send(w.admin, 'POST', '/v1/projects', { name: 'p' });
      const projectManager = w.key({ role: 'manager', projectIds: [project.json.id] }).token;
      // Instance-wide and project webhooks, made by a manager and by an admin: each one's
      // audience is the weakest key that reaches it, whoever created it.
      const hook = async (token: string, body: Record<string, unknown>) => {
        const created = await w.send(token, 'POST', '/v1/webhooks', {
          url: 'https://93.184.216.34/hook',
          events: ['api_key.created', 'api_key.revoked'],
          ...body,
        });
        expect(created.status).toBe(201);
        return created.json.id as string;
      };
      const managerHook = await hook(manager, {});
      const adminHook = await hook(w.admin, {});
      const projectHook = await hook(w.admin, { project_id: project.json.id });

      const adminKey = await w.send(w.admin, 'POST', '/v1/api-keys', {
        name: 'root',
        role: 'admin',
      });
      expect(adminKey.status).toBe(201);
      expect((await w.send(w.admin, 'DELETE', `/v1/api-keys/${adminKey.json.id}`)).status).toBe(
        200,
      );
      const readerKey = await w.send(manager, 'POST', '/v1/api-keys', {
        name: 'ci',
        role: 'reader',
        project_ids: [project.json.id],
      });
      expect(readerKey.status).toBe(201);

      const listed = async (token: string) =>
        ((await w.send(token, 'GET', '/v1/events?type=api_key.*')).json.data as Event[]).map(
          (event) => [event.type, event.data.object.id],
        );
      expect(await listed(w.admin)).toEqual([
        ['api_key.created', readerKey.json.id],
        ['api_key.revoked', adminKey.json.id],
        ['api_key.created', adminKey.json.id],
      ]);
      const managerList = await w.send(manager, 'GET', '/v1/events');
      expect(managerList.json.data.map((event: Event) => event.type)).toEqual([
        'api_key.created',
        'project.created',
      ]);
      expect(managerList.json.pagination.total).toBe(2);
      expect(managerList.text).not.toContain(adminKey.json.id);
      expect(managerList.text).not.toContain(adminKey.json.prefix);
      expect(await listed(projectManager)).toEqual([['api_key.created', readerKey.json.id]]);
      const adminEvents = (await w.send(w.admin, 'GET', '/v1/events?type=api_key.*')).json
        .data as Event[];
      for (const event of adminEvents.filter((e) => e.data.object.id === adminKey.json.id)) {
        expect((await w.send(w.admin, 'GET', `/v1/events/${event.id}`)).status).toBe(200);
        expect((await w.send(manager, 'GET', `/v1/events/${event.id}`)).status).toBe(404);
      }

      const delivered = (webhookId: string) =>
        (
          w.instance.sqlite
            .query(
              `SELECT json_extract(e.payload, '$.data.object.id') AS id FROM webhook_deliveries d
               JOIN events e ON e.id = d.event_id WHERE d.webhook_id = ? ORDER BY e.seq`,
            )
            .all(webhookId) as { id: string }[]
        ).map((row) => row.id);
      // Not even the admin's own instance-wide webhook: any unlimited manager may repoint it.
      expect(delivered(managerHook)).toEqual([readerKey.json.id]);
      expect(delivered(adminHook)).toEqual([readerKey.json.id]);
      expect(delivered(projectHook)).toEqual([readerKey.json.id]);
    } finally {
      await w.close();
    }
  });

  test('a key with a vault outside the project is not sent to that project’s webhooks', async () => {
    const w = openWorld();
    try {
      const a = (await w.send(w.admin, 'POST', '/v1/projects', { name: 'a' })).json.id;
      const b = (await w.send(w.admin, 'POST', '/v1/projects', { name: 'b' })).json.id;
      const vaultB = (await w.send(w.admin, 'POST', '/v1/vaults', { project_id: b, name: 'v' }))
        .json.id;
      const projectManager = w.key({ role: 'manager', projectIds: [a] }).token;
      const hook = await w.send(projectManager, 'POST', '/v1/webhooks', {
        url: 'https://93.184.216.34/hook',
        events: ['*'],
        project_id: a,
      });
      expect(hook.status).toBe(201);
      const crossing = await w.send(w.admin, 'POST', '/v1/api-keys', {
        name: 'crossing',
        role: 'reader',
        project_ids: [a],
        vault_ids: [vaultB],
      });
      expect(crossing.status).toBe(201);
      // The project manager cannot see that key, so neither its list nor its webhook does.
      expect((await w.send(projectManager, 'GET', `/v1/api-keys/${crossing.json.id}`)).status).toBe(
        404,
      );
      expect((await w.send(projectManager, 'GET', '/v1/events')).text).not.toContain(
        crossing.json.id,
      );
      expect(w.count('webhook_deliveries')).toBe(0);
    } finally {
      await w.close();
    }
  });
});
