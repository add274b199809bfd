/**
 * The audit log end to end in process: the app with a tiny sample feature whose guard sets the
 * request meta the way the access layer does (actor, action, target, denied), the real audit
 * recorder, commitChange for writes, and the audit routes.
 */
import { Database } from 'bun:sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Elysia, t } from 'elysia';
import { TypeID } from 'typeid-js';
import { auditEntryId, seqOfAuditEntryId } from '../src/ledger/audit-entry-id.ts';
import { rejectionSummariesFor } from '../src/audit/anonymous-summary.ts';
import { auditRecorder } from '../src/audit/recorder.ts';
import { commitChange } from '../src/changes/index.ts';
import { auditRoutes } from '../src/audit/routes.ts';
import { verifyChain } from '../src/audit/verify.ts';
import { AppError, ForbiddenError, NotFoundError, UnauthorizedError } from '../src/errors.ts';
import { requestMeta } from '../src/http/request-meta.ts';
import { createInstance, type Instance } from '../src/instance.ts';
import { buildApp } from '../src/server.ts';
import { call, memoryLogger, tempDir, testConfig } from './harness.ts';

const TOKEN = 'scr_TOKENMARKER0e4c9a1b2c3d4e5f60718293a4b5c6d7e8f9';
const OTHER_TOKEN = 'scr_OTHERTOKENMARKER77aa88bb99cc';
const SECRET = 'SECRET-VALUE-MARKER-3b91f0';
const MARKERS = [TOKEN, OTHER_TOKEN, SECRET, 'TOKENMARKER', 'VALUE-MARKER', 'QUERYMARKER'];

/** Route → audit action and target, like the access layer's permission table. */
const RULES: Record<string, { action: string; type: string; idParam?: string }> = {
  'GET /v1/things/:id': { action: 'thing.reveal', type: 'thing', idParam: 'id' },
  'POST /v1/things': { action: 'thing.create', type: 'thing' },
  'GET /v1/explode': { action: 'thing.explode', type: 'thing' },
};

/** Stands in for the access plugin: authenticates, names the action, refuses on request. */
const fakeAccess = new Elysia({ name: 'fake-access' }).onBeforeHandle(
  { as: 'global' },
  ({ request, route, params }) => {
    if (!route.startsWith('/v1/') || route === '/v1/health') return;
    const meta = requestMeta(request);
    const auth = request.headers.get('authorization');
    if (auth === `Bearer ${TOKEN}`)
      meta.actor = { type: 'api_key', id: 'key_admin', name: 'admin key' };
    else if (auth === `Bearer ${OTHER_TOKEN}`)
      meta.actor = { type: 'api_key', id: 'key_reader', name: 'reader key' };
    else {
      meta.actor = { type: 'anonymous', id: null, name: null };
      throw new UnauthorizedError();
    }
    const rule =
      RULES[`${request.method} ${route}`] ??
      (route.startsWith('/v1/audit-logs')
        ? {
            action: route.endsWith(':id') ? 'audit.read' : 'audit.list',
            type: 'audit_entry',
            idParam: 'id',
          }
        : undefined);
    if (!rule) throw new ForbiddenError();
    meta.action = rule.action;
    const p = (params ?? {}) as Record<string, string | undefined>;
    meta.target = { type: rule.type, id: rule.idParam ? (p[rule.idParam] ?? null) : null };
    if (request.headers.get('x-test') === 'forbid') throw new ForbiddenError();
    if (request.headers.get('x-test') === 'throttle')
      throw new AppError('RATE_LIMITED', 'Too many requests');
  },
);

function sampleFeature(instance: Instance) {
  instance.sqlite.run('CREATE TABLE IF NOT EXISTS things (id TEXT PRIMARY KEY, value TEXT)');
  return new Elysia({ name: 'things' })
    .get('/v1/things/:id', ({ params, request }) => {
      if (params.id === 'hidden') {
        requestMeta(request).denied = true;
        throw new NotFoundError('Thing');
      }
      const row = instance.sqlite
        .query<{ id: string; value: string }, [string]>('SELECT id, value FROM things WHERE id = ?')
        .get(params.id);
      if (!row) throw new NotFoundError('Thing');
      return row;
    })
    .post(
      '/v1/things',
      async ({ body, request, set }) => {
        const created = await commitChange(instance, request, 201, () => {
          instance.sqlite.run('INSERT INTO things (id, value) VALUES (?, ?)', [
            body.id,
            body.value,
          ]);
          requestMeta(request).target = { type: 'thing', id: body.id };
          return { body: { id: body.id } };
        });
        set.status = 201;
        return created;
      },
      { body: t.Object({ id: t.String(), value: t.String() }) },
    )
    .get('/v1/explode', () => {
      throw new Error('boom');
    });
}

type Entry = {
  id: string;
  at: string;
  actor: { type: string; id: string | null; name: string | null };
  action: string;
  target: { type: string | null; id: string | null };
  outcome: string;
  status: number | null;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  hash: string;
  prev_hash: string;
};
type Page = { data: Entry[]; pagination: { total: number; page: number; limit: number } };

const admin = { authorization: `Bearer ${TOKEN}` };

describe('audit log over HTTP', () => {
  const dir = tempDir();
  let instance: Instance;
  const logger = memoryLogger();
  let app: ReturnType<typeof buildApp>;
  /** A second connection: proves entries are committed (visible outside) before the response. */
  let observer: Database;
  const entriesBy = (requestId: string) =>
    observer
      .query<Record<string, unknown>, [string]>('SELECT * FROM audit_log WHERE request_id = ?')
      .all(requestId);

  beforeAll(() => {
    instance = createInstance(testConfig(dir.path), logger);
    app = buildApp(instance, {
      features: [fakeAccess, sampleFeature(instance), auditRoutes(instance)],
      recordOutcome: auditRecorder(instance),
    });
    observer = new Database(instance.config.storage.path, { readonly: true });
  });
  afterAll(async () => {
    observer.close();
    await instance.close();
    dir[Symbol.dispose]();
  });

  test('one durable entry per request, with the outcome of its status', async () => {
    const cases: [string, string, Record<string, string>, number, string, string][] = [
      ['POST', '/v1/things', admin, 201, 'success', 'thing.create'],
      ['GET', '/v1/things/t1', admin, 200, 'success', 'thing.reveal'],
      ['GET', '/v1/things/t1', {}, 401, 'denied', 'request.rejected_summary'],
      ['GET', '/v1/things/t1', { ...admin, 'x-test': 'forbid' }, 403, 'denied', 'thing.reveal'],
      ['GET', '/v1/things/hidden', admin, 404, 'denied', 'thing.reveal'],
      ['GET', '/v1/things/t1', { ...admin, 'x-test': 'throttle' }, 429, 'denied', 'thing.reveal'],
      ['GET', '/v1/things/nope', admin, 404, 'error', 'thing.reveal'],
      ['GET', '/v1/explode', admin, 500, 'error', 'thing.explode'],
    ];
    let n = 0;
    for (const [method, path, headers, status, outcome, action] of cases) {
      const requestId = `audit-outcome-${++n}`;
      const response = await call(app, method, path, {
        headers: { ...headers, 'x-request-id': requestId, 'user-agent': 'audit-test/1.0' },
        body: method === 'POST' ? { id: 't1', value: SECRET } : undefined,
      });
      expect(response.status).toBe(status);
      // A rejected anonymous request is counted into its address's summary, written per window.
      if (status === 401) {
        expect(entriesBy(requestId)).toHaveLength(0);
        await rejectionSummariesFor(instance).flush();
      }
      const rows = entriesBy(requestId);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({
        outcome,
        action,
        status,
        user_agent: 'audit-test/1.0',
        request_id: requestId,
      });
    }
    const created = entriesBy('audit-outcome-1')[0]!;
    expect(created).toMatchObject({
      actor_type: 'api_key',
      actor_id: 'key_admin',
      actor_name: 'admin key',
      target_type: 'thing',
      target_id: 't1',
    });
    const summary = entriesBy('audit-outcome-3')[0]!;
    expect(summary).toMatchObject({ actor_type: 'anonymous', actor_id: null });
    expect(JSON.parse(summary.details as string)).toMatchObject({
      count: 1,
      first_request_id: 'audit-outcome-3',
      last_request_id: 'audit-outcome-3',
      user_agents: ['audit-test/1.0'],
    });
    expect(verifyChain(instance.sqlite).intact).toBe(true);
  });

  test('requests that never reached authentication get no entry', async () => {
    const before = instance.sqlite.query('SELECT count(*) AS n FROM audit_log').get() as {
      n: number;
    };
    expect((await call(app, 'GET', '/v1/health')).status).toBe(200);
    expect((await call(app, 'GET', '/health')).status).toBe(200);
    const after = instance.sqlite.query('SELECT count(*) AS n FROM audit_log').get() as {
      n: number;
    };
    expect(after.n).toBe(before.n);
  });

  test('no secret value, token, query string or body ever reaches the audit table', async () => {
    await call(app, 'POST', '/v1/things', {
      headers: { ...admin, 'x-request-id': 'marker-post-1' },
      body: { id: 'marker-thing', value: SECRET },
    });
    await call(app, 'GET', `/v1/things/marker-thing?token=${TOKEN}&q=QUERYMARKER`, {
      headers: admin,
    });
    await call(app, 'GET', '/v1/things/marker-thing', {
      headers: { authorization: `Bearer ${OTHER_TOKEN}x` },
    });
    await call(app, 'GET', '/v1/things/marker-thing', {
      headers: { authorization: `Bearer ${OTHER_TOKEN}` },
    });
    await call(app, 'GET', `/v1/audit-logs?action=${SECRET}`, { headers: admin });
    const dump = JSON.stringify(observer.query('SELECT * FROM audit_log').all());
    expect(dump).toContain('marker-thing');
    for (const marker of MARKERS) expect(dump).not.toContain(marker);
  });

  test('GET /v1/audit-logs: API shape, newest first, filters, pagination and Link', async () => {
    const response = await call(app, 'GET', '/v1/audit-logs?limit=2', { headers: admin });
    expect(response.status).toBe(200);
    const page = (await response.json()) as Page;
    expect(page.pagination).toMatchObject({ page: 1, limit: 2 });
    expect(page.pagination.total).toBeGreaterThan(5);
    expect(page.data).toHaveLength(2);
    const [first] = page.data;
    expect(Object.keys(first!).sort()).toEqual(
      [
        'action',
        'actor',
        'at',
        'hash',
        'id',
        'ip',
        'outcome',
        'prev_hash',
        'request_id',
        'status',
        'target',
        'user_agent',
      ].sort(),
    );
    expect(first!.id).toMatch(/^aud_[0-9a-z]{26}$/);
    expect(first!.at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    // Newest first: each entry links to the one after it in the list.
    expect(page.data[0]!.prev_hash).toBe(page.data[1]!.hash);
    const link = response.headers.get('link')!;
    expect(link).toContain('rel="next"');
    expect(link).toContain('page=2');
    expect(link).not.toContain('rel="prev"');

    const second = await call(app, 'GET', '/v1/audit-logs?limit=2&page=2', { headers: admin });
    expect(second.headers.get('link')).toContain('rel="prev"');

    const filtered = (await (
      await call(app, 'GET', '/v1/audit-logs?outcome=denied&actor_id=key_admin&limit=100', {
        headers: admin,
      })
    ).json()) as Page;
    expect(filtered.data.length).toBeGreaterThanOrEqual(3);
    for (const entry of filtered.data) {
      expect(entry.outcome).toBe('denied');
      expect(entry.actor.id).toBe('key_admin');
    }
    const byTarget = (await (
      await call(app, 'GET', '/v1/audit-logs?resource_id=t1&action=thing.create', {
        headers: admin,
      })
    ).json()) as Page;
    expect(byTarget.data).toHaveLength(1);
    expect(byTarget.data[0]!.target).toEqual({ type: 'thing', id: 't1' });

    const future = (await (
      await call(app, 'GET', '/v1/audit-logs?since=2999-01-01T00:00:00Z', { headers: admin })
    ).json()) as Page;
    expect(future.pagination.total).toBe(0);
    const past = (await (
      await call(app, 'GET', '/v1/audit-logs?until=2000-01-01', { headers: admin })
    ).json()) as Page;
    expect(past.data).toEqual([]);

    const one = await call(app, 'GET', `/v1/audit-logs/${first!.id}`, { headers: admin });
    expect(one.status).toBe(200);
    expect(await one.json()).toEqual(first);
    const missing = await call(app, 'GET', '/v1/audit-logs/aud_nope', { headers: admin });
    expect(missing.status).toBe(404);
    // An id names its row by position, but only the exact stored id finds it: the same position
    // at another time, a position past the head, or another prefix is a 404.
    const seq = seqOfAuditEntryId(first!.id)!;
    const atMs = parseInt(
      TypeID.fromString(first!.id, 'aud').toUUID().slice(0, 13).replace('-', ''),
      16,
    );
    expect(auditEntryId(seq, atMs)).toBe(first!.id);
    for (const id of [
      auditEntryId(seq, atMs + 1),
      auditEntryId(seq + 1_000_000, atMs),
      first!.id.replace('aud_', 'res_'),
    ]) {
      const other = await call(app, 'GET', `/v1/audit-logs/${id}`, { headers: admin });
      expect(other.status).toBe(404);
    }
  });

  test('bad page, limit, outcome or time is a 400 naming the field', async () => {
    for (const [query, field] of [
      ['page=0', 'page'],
      ['page=abc', 'page'],
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['outcome=maybe', 'outcome'],
      ['since=yesterday', 'since'],
      ['until=2024-13-45T99:00:00Z', 'until'],
    ] as const) {
      const response = await call(app, 'GET', `/v1/audit-logs?${query}`, { headers: admin });
      expect(response.status).toBe(400);
      const body = (await response.json()) as {
        error: { code: string; details: { field: string } };
      };
      expect(body.error.code).toBe('INVALID_REQUEST');
      expect(body.error.details.field).toBe(field);
    }
  });

  test('walking the pages by Link sees each entry once, though every list call adds one', async () => {
    for (let i = 0; i < 7; i++) {
      await call(app, 'GET', `/v1/things/walk-${i}`, { headers: admin });
    }
    for (const start of ['/v1/audit-logs?limit=3', '/v1/audit-logs?limit=2&outcome=error']) {
      const seen: string[] = [];
      let next: string | undefined = start;
      let total: number | undefined;
      for (let pages = 0; next !== undefined && pages < 1000; pages++) {
        const response = await call(app, 'GET', next, { headers: admin });
        expect(response.status).toBe(200);
        const page = (await response.json()) as Page;
        total ??= page.pagination.total;
        // The total of the walk's snapshot, not of the growing log.
        expect(page.pagination.total).toBe(total);
        seen.push(...page.data.map((entry) => entry.id));
        next = /<([^>]+)>; rel="next"/.exec(response.headers.get('link') ?? '')?.[1];
        if (next !== undefined) expect(next).toContain('max_seq=');
      }
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen.length).toBe(total!);
    }
    const bad = await call(app, 'GET', '/v1/audit-logs?max_seq=1.5', { headers: admin });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { details: unknown } }).error.details).toEqual({
      field: 'max_seq',
      reason: 'Must be a positive whole number',
    });
  });

  test('entries cannot be changed or deleted over the API (405)', async () => {
    for (const [method, path] of [
      ['DELETE', '/v1/audit-logs/aud_x'],
      ['PUT', '/v1/audit-logs/aud_x'],
      ['PATCH', '/v1/audit-logs/aud_x'],
      ['POST', '/v1/audit-logs'],
      ['DELETE', '/v1/audit-logs'],
    ] as const) {
      const response = await call(app, method, path, { headers: admin });
      expect(response.status).toBe(405);
      expect(response.headers.get('allow')).toBe('GET');
    }
  });

  test('concurrent requests share group commits and keep one intact chain', async () => {
    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        call(app, 'GET', '/v1/things/t1', {
          headers: { ...admin, 'x-request-id': `burst-${1000 + i}` },
        }),
      ),
    );
    for (const response of responses) expect(response.status).toBe(200);
    const count = observer
      .query<
        { n: number },
        []
      >("SELECT count(*) AS n FROM audit_log WHERE request_id LIKE 'burst-%'")
      .get()!.n;
    expect(count).toBe(200);
    expect(verifyChain(instance.sqlite)).toMatchObject({ intact: true });
  });
});

describe('fail closed', () => {
  test('when the database refuses writes, requests are 503 and nothing changes', async () => {
    using dir = tempDir();
    const instance = createInstance(testConfig(dir.path), memoryLogger());
    const app = buildApp(instance, {
      features: [fakeAccess, sampleFeature(instance), auditRoutes(instance)],
      recordOutcome: auditRecorder(instance),
    });
    expect((await call(app, 'GET', '/v1/things/none', { headers: admin })).status).toBe(404);
    const count = () => ({
      audit: instance.sqlite.query<{ n: number }, []>('SELECT count(*) AS n FROM audit_log').get()!
        .n,
      things: instance.sqlite.query<{ n: number }, []>('SELECT count(*) AS n FROM things').get()!.n,
    });
    const before = count();
    expect(before).toEqual({ audit: 1, things: 0 });

    instance.sqlite.run('PRAGMA query_only = ON');
    for (const [method, path] of [
      ['GET', '/v1/things/none'],
      ['GET', '/v1/audit-logs'],
      ['POST', '/v1/things'],
      ['GET', '/v1/explode'],
      ['GET', '/v1/things/hidden'],
    ] as const) {
      const response = await call(app, method, path, {
        headers: admin,
        body: method === 'POST' ? { id: 'x', value: SECRET } : undefined,
      });
      expect(response.status).toBe(503);
      const body = (await response.json()) as { error: { code: string } };
      expect(body.error.code).toBe('SERVICE_UNAVAILABLE');
      expect(JSON.stringify(body)).not.toContain(SECRET);
    }
    instance.sqlite.run('PRAGMA query_only = OFF');
    expect(count()).toEqual(before);

    // Only the audit insert fails: the write it belongs to is rolled back with it.
    instance.sqlite.run(
      "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit storage refused'); END",
    );
    const write = await call(app, 'POST', '/v1/things', {
      headers: admin,
      body: { id: 'y', value: 'v' },
    });
    expect(write.status).toBe(503);
    expect(count()).toEqual(before);
    instance.sqlite.run('DROP TRIGGER refuse_audit');

    const recovered = await call(app, 'POST', '/v1/things', {
      headers: admin,
      body: { id: 'z', value: 'v' },
    });
    expect(recovered.status).toBe(201);
    expect(count()).toEqual({ audit: 2, things: 1 });
    expect(verifyChain(instance.sqlite).intact).toBe(true);
    await instance.close();
  });

  test('a write that waited out the busy timeout is a 503 after one timeout, not two', async () => {
    using dir = tempDir();
    const instance = createInstance(
      testConfig(dir.path, { storage: { busy_timeout_ms: 400 } }),
      memoryLogger(),
    );
    const app = buildApp(instance, {
      features: [fakeAccess, sampleFeature(instance), auditRoutes(instance)],
      recordOutcome: auditRecorder(instance),
    });
    // Another process holds the write lock throughout.
    const holder = new Database(instance.config.storage.path);
    holder.run('BEGIN IMMEDIATE');
    try {
      const started = performance.now();
      const write = await call(app, 'POST', '/v1/things', {
        headers: admin,
        body: { id: 'w', value: 'v' },
      });
      const elapsed = performance.now() - started;
      expect(write.status).toBe(503);
      // The write job gave up after 400 ms; its audit entry did not wait another 400 ms.
      expect(elapsed).toBeGreaterThanOrEqual(400);
      expect(elapsed).toBeLessThan(700);
    } finally {
      holder.run('ROLLBACK');
      holder.close();
    }
    // With the lock free again, reads and writes are audited as usual.
    const after = await call(app, 'POST', '/v1/things', {
      headers: admin,
      body: { id: 'w', value: 'v' },
    });
    expect(after.status).toBe(201);
    expect(verifyChain(instance.sqlite).intact).toBe(true);
    await instance.close();
  });
});
