/**
 * `Idempotency-Key` on POST (docs/api.md §1) over HTTP: replay of the first response, 409 for a
 * different request, per-API-key scope, concurrent retries, 24 h expiry, errors not stored, and
 * the stored response sealed at rest (it can hold a token).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { REPLAYED_HEADER } from '../src/idempotency/plugin.ts';
import { purgeExpired } from '../src/resources/purge.ts';
import { errorOf, filesContaining, openWorld, type World } from './resources-harness.ts';

const DAY = 86_400_000;

describe('Idempotency-Key', () => {
  let w: World;
  let project: string;
  let vault: string;
  beforeAll(async () => {
    w = openWorld();
    project = (await w.send(w.admin, 'POST', '/v1/projects', { name: 'idem' })).json.id;
    vault = (await w.send(w.admin, 'POST', '/v1/vaults', { project_id: project, name: 'v' })).json
      .id;
  });
  afterAll(async () => w.close());

  const post = (path: string, body: unknown, key: string, token = w.admin) =>
    w.send(token, 'POST', path, body, { 'idempotency-key': key });

  test('a retry with the same key and body gets the first response; nothing is created twice', async () => {
    const body = {
      type: 'secret',
      vault_id: vault,
      name: 'once',
      value: 'VALUE-MARKER-idem',
      tags: ['a', 'b'],
    };
    const first = await post('/v1/resources', body, 'create-once');
    expect(first.status).toBe(201);
    expect(first.headers.get(REPLAYED_HEADER)).toBeNull();
    const count = w.count('resources');
    // Key order does not matter: the body is compared as canonical JSON.
    const reordered = {
      tags: ['a', 'b'],
      value: 'VALUE-MARKER-idem',
      name: 'once',
      vault_id: vault,
      type: 'secret',
    };
    const second = await post('/v1/resources', reordered, 'create-once');
    expect(second.status).toBe(201);
    expect(second.headers.get(REPLAYED_HEADER)).toBe('true');
    expect(second.headers.get('location')).toBe(first.headers.get('location'));
    expect(second.headers.get('content-type')).toStartWith('application/json');
    expect(second.headers.get('x-request-id')).toBeTruthy();
    expect(second.text).toBe(first.text);
    expect(w.count('resources')).toBe(count);
    expect(w.count('resource_versions')).toBe(count);
    const replayAudit = w.instance.sqlite
      .query("SELECT target_id, outcome FROM audit_log WHERE action = 'idempotency.replay'")
      .all();
    expect(replayAudit).toEqual([{ target_id: first.json.id, outcome: 'success' }]);
  });

  test('the same key with another body, path or id is a 409 naming the header', async () => {
    const first = await post('/v1/projects', { name: 'p-1' }, 'conflict');
    expect(first.status).toBe(201);
    const projects = w.count('projects');
    for (const [path, body] of [
      ['/v1/projects', { name: 'p-2' }],
      ['/v1/projects', { name: 'p-1', description: 'x' }],
      ['/v1/vaults', { project_id: project, name: 'p-1' }],
    ] as const) {
      const reply = await post(path, body, 'conflict');
      expect(`${path} ${reply.status}`).toBe(`${path} 409`);
      expect(reply.json).toMatchObject(errorOf('CONFLICT', 'Idempotency-Key'));
    }
    expect(w.count('projects')).toBe(projects);
    expect(w.count('vaults')).toBe(1);
  });

  test('keys are scoped per API key', async () => {
    const other = w.key({ role: 'admin' }).token;
    await post('/v1/projects', { name: 'scoped-1' }, 'shared-key');
    const mine = await post('/v1/projects', { name: 'scoped-2' }, 'shared-key', other);
    expect(mine.status).toBe(201);
    expect(mine.headers.get(REPLAYED_HEADER)).toBeNull();
    expect(mine.json.name).toBe('scoped-2');
  });

  test('errors are not stored: a retry runs again', async () => {
    await w.send(w.admin, 'POST', '/v1/projects', { name: 'taken' });
    const failed = await post('/v1/projects', { name: 'taken' }, 'retry-after-error');
    expect(failed.status).toBe(409);
    const again = await post('/v1/projects', { name: 'taken' }, 'retry-after-error');
    expect(again.status).toBe(409);
    expect(again.headers.get(REPLAYED_HEADER)).toBeNull();
    const fixed = await post('/v1/projects', { name: 'not-taken' }, 'retry-after-error');
    expect(fixed.status).toBe(201);
  });

  test('concurrent requests with one key run once; the others get the replay', async () => {
    const secret = (
      await w.send(w.admin, 'POST', '/v1/resources', {
        type: 'secret',
        vault_id: vault,
        name: 'conc',
        value: 'one',
      })
    ).json.id;
    await w.send(w.admin, 'PUT', `/v1/resources/${secret}`, { value: 'two' });
    const path = `/v1/resources/${secret}/versions/1/restore`;
    const replies = await Promise.all(
      Array.from({ length: 5 }, () => post(path, undefined, 'parallel-restore')),
    );
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(replies.filter((r) => r.headers.get(REPLAYED_HEADER) === 'true')).toHaveLength(4);
    expect(new Set(replies.map((r) => r.json.version))).toEqual(new Set([3]));
    const read = await w.send(w.admin, 'GET', `/v1/resources/${secret}`);
    expect(read.json.version).toBe(3);

    // Kept for 24 hours: after that the same key runs the request again, and the purge loop
    // drops the expired records.
    w.clock.advance(DAY - 1);
    expect((await post(path, undefined, 'parallel-restore')).json.version).toBe(3);
    w.clock.advance(2);
    expect((await post(path, undefined, 'parallel-restore')).json.version).toBe(4);
    w.clock.advance(DAY + 1);
    const purged = await purgeExpired(w.instance);
    expect(purged.idempotencyKeys).toBeGreaterThan(3);
    expect(w.count('idempotency_keys')).toBe(0);
  });

  test('a malformed key is a 400 naming the header; GET ignores the header', async () => {
    for (const key of ['a'.repeat(256), 'has space']) {
      const reply = await post('/v1/projects', { name: 'bad-key' }, key);
      expect(reply.json).toMatchObject(errorOf('INVALID_REQUEST', 'Idempotency-Key'));
    }
    expect(
      (await w.send(w.admin, 'GET', '/v1/projects', undefined, { 'idempotency-key': 'x y' }))
        .status,
    ).toBe(200);
  });

  test('a stored response holding a token is sealed at rest, and replayed intact', async () => {
    const body = { name: 'ci', role: 'reader', project_ids: [project] };
    const first = await post('/v1/api-keys', body, 'new-api-key');
    expect(first.status).toBe(201);
    const token: string = first.json.token;
    expect(token).toStartWith('scr_');
    const replay = await post('/v1/api-keys', body, 'new-api-key');
    expect(replay.headers.get(REPLAYED_HEADER)).toBe('true');
    expect(replay.json.token).toBe(token);
    expect(w.count('api_keys')).toBe(3); // admin, the other admin, this one
    w.instance.sqlite.run('PRAGMA wal_checkpoint(TRUNCATE)');
    expect(filesContaining(w.dir, [token, token.slice(4), 'VALUE-MARKER-idem'])).toEqual([]);
  });
});
