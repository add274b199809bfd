/**
 * Single reads come from a record cache (src/resources/record-cache.ts): these tests change what
 * it holds in every way a record can change and check that the very next read sees it — and that
 * a change rolled back leaves no trace.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { NotFoundError } from '../src/errors.ts';
import { prepareNewResource } from '../src/resources/input.ts';
import {
  findResource,
  insertResource,
  newResourceId,
  updateResource,
} from '../src/resources/store.ts';
import { recordCacheOf } from '../src/resources/store/records.ts';
import { openWorld, type World } from './resources-harness.ts';

describe('single reads after changes (record cache)', () => {
  let w: World;
  let vault: string;
  let secret: string;
  let reader: string;

  beforeAll(async () => {
    w = openWorld();
    const project = (await w.send(w.admin, 'POST', '/v1/projects', { name: 'p' })).json.id;
    vault = (await w.send(w.admin, 'POST', '/v1/vaults', { project_id: project, name: 'v' })).json
      .id;
    secret = (
      await w.send(w.admin, 'POST', '/v1/resources', {
        type: 'secret',
        vault_id: vault,
        name: 'db-password',
        value: 'first',
      })
    ).json.id;
    reader = w.key({ role: 'reader', scopes: null }).token;
  });
  afterAll(() => w.close());

  const value = async () => (await w.send(w.admin, 'GET', `/v1/resources/${secret}`)).json.value;
  const byName = async () =>
    (await w.send(w.admin, 'GET', `/v1/vaults/${vault}/secrets/db-password`)).json.value;

  test('a new value, a restored version, a rename and a disable are seen at once', async () => {
    expect([await value(), await byName()]).toEqual(['first', 'first']);
    await w.send(w.admin, 'PUT', `/v1/resources/${secret}`, { value: 'second' });
    expect([await value(), await byName()]).toEqual(['second', 'second']);
    await w.send(w.admin, 'POST', `/v1/resources/${secret}/versions/1/restore`);
    expect([await value(), await byName()]).toEqual(['first', 'first']);
    await w.send(w.admin, 'PUT', `/v1/resources/${secret}`, { name: 'renamed' });
    const old = await w.send(w.admin, 'GET', `/v1/vaults/${vault}/secrets/db-password`);
    expect(old.status).toBe(404);
    await w.send(w.admin, 'PUT', `/v1/resources/${secret}`, { name: 'db-password' });
    await w.send(w.admin, 'PUT', `/v1/resources/${secret}`, { enabled: false });
    expect(await value()).toBeUndefined();
    await w.send(w.admin, 'PUT', `/v1/resources/${secret}`, { enabled: true });
    expect(await value()).toBe('first');
  });

  test('a vault becoming restricted hides its resources from the next read', async () => {
    expect((await w.send(reader, 'GET', `/v1/resources/${secret}`)).status).toBe(200);
    await w.send(w.admin, 'PUT', `/v1/vaults/${vault}`, { restricted: true });
    expect((await w.send(reader, 'GET', `/v1/resources/${secret}`)).status).toBe(404);
    await w.send(w.admin, 'PUT', `/v1/vaults/${vault}`, { restricted: false });
    expect((await w.send(reader, 'GET', `/v1/resources/${secret}`)).status).toBe(200);
  });

  test('a delete and a restore are seen at once', async () => {
    await w.send(w.admin, 'DELETE', `/v1/resources/${secret}`);
    expect((await w.send(w.admin, 'GET', `/v1/resources/${secret}`)).status).toBe(404);
    await w.send(w.admin, 'POST', `/v1/resources/${secret}/restore`);
    expect(await value()).toBe('first');
  });

  test('a change that rolls back leaves the cached read as it was', async () => {
    expect(await value()).toBe('first');
    const { instance } = w;
    const attempt = instance.writes.run(() => {
      updateResource(
        instance.db,
        instance.keyring,
        secret,
        { metadata: {}, value: 'never-committed' },
        undefined,
        'test',
        instance.clock.now(),
      );
      // Inside the job the change is visible, and read past the cache.
      expect(findResource(instance.sqlite, secret)?.currentVersion).toBeGreaterThan(1);
      throw new Error('roll it back');
    });
    await expect(attempt).rejects.toThrow('roll it back');
    expect(await value()).toBe('first');
    expect(await byName()).toBe('first');
  });

  test('a new value forgets only its own resource: other cached records stay cached', async () => {
    const other = (
      await w.send(w.admin, 'POST', '/v1/resources', {
        type: 'secret',
        vault_id: vault,
        name: 'api-token',
        value: 'other-value',
      })
    ).json.id;
    const cache = recordCacheOf(w.instance.sqlite);
    expect((await w.send(w.admin, 'GET', `/v1/resources/${other}`)).json.value).toBe('other-value');
    expect(await value()).toBe('first');
    const cachedBefore = cache.size.entries;
    const put = await w.send(w.admin, 'PUT', `/v1/resources/${secret}`, { value: 'third' });
    expect(put.json.version).toBeGreaterThan(1);
    // The updated resource's entry is gone; the other's is kept.
    expect(cache.size.entries).toBe(cachedBefore - 1);
    expect(await value()).toBe('third');
    expect(await byName()).toBe('third');
    const listed = await w.send(w.admin, 'GET', `/v1/resources?vault_id=${vault}&name=db-password`);
    expect(listed.json.data[0].version).toBe(put.json.version);
    expect(listed.json.data[0].updated_at).toBe(put.json.updated_at);
  });

  test('a create whose vault is gone by the time its change runs is a 404, not a failed insert', async () => {
    const { instance } = w;
    const prepared = await prepareNewResource(
      { type: 'secret', vault_id: 'vlt_gone', name: 'orphan', value: 'v' },
      { maxValueBytes: 1024 },
    );
    const place = {
      id: newResourceId(),
      vaultId: 'vlt_gone',
      projectId: 'prj_gone',
      createdBy: 'key_x',
    };
    const attempt = instance.writes.run(() =>
      insertResource(
        instance.db,
        instance.keyring,
        { ...prepared, ...place },
        instance.clock.now(),
      ),
    );
    await expect(attempt).rejects.toBeInstanceOf(NotFoundError);
    expect(findResource(instance.sqlite, place.id)).toBeUndefined();
  });

  test('records are frozen: a caller cannot change what later reads get', () => {
    const record = findResource(w.instance.sqlite, secret)!;
    expect(Object.isFrozen(record)).toBe(true);
    expect(() => (record.tags as string[]).push('x')).toThrow();
  });
});

describe('list pages after changes (serialised-object cache)', () => {
  let w: World;
  let vault: string;
  let ids: string[];
  let reader: string;

  beforeAll(async () => {
    w = openWorld();
    const project = (await w.send(w.admin, 'POST', '/v1/projects', { name: 'p' })).json.id;
    vault = (await w.send(w.admin, 'POST', '/v1/vaults', { project_id: project, name: 'v' })).json
      .id;
    ids = [];
    for (const name of ['a', 'b', 'c']) {
      const created = await w.send(w.admin, 'POST', '/v1/resources', {
        type: 'secret',
        vault_id: vault,
        name,
        value: `value-${name}`,
      });
      ids.push(created.json.id);
    }
    reader = w.key({ role: 'reader', scopes: null }).token;
  });
  afterAll(() => w.close());

  type Listed = { id: string; name: string; description: string | null; version: number };
  const list = async (token = w.admin) => {
    const response = await w.send(token, 'GET', `/v1/resources?vault_id=${vault}`);
    expect(response.status).toBe(200);
    return response.json as { data: Listed[]; pagination: { total: number } };
  };
  const names = async (token = w.admin) => (await list(token)).data.map((r) => r.name);

  test('a listed object is the object a read by id returns, without its value', async () => {
    const page = await list();
    for (const listed of page.data) {
      const one = (await w.send(w.admin, 'GET', `/v1/resources/${listed.id}`)).json;
      delete one.value;
      expect(listed).toEqual(one);
    }
  });

  test('an update, a rename, a new version, a delete and a restore show in the next page', async () => {
    expect(await names()).toEqual(['c', 'b', 'a']);
    await w.send(w.admin, 'PUT', `/v1/resources/${ids[0]}`, { description: 'now described' });
    expect((await list()).data.find((r) => r.id === ids[0])?.description).toBe('now described');
    await w.send(w.admin, 'PUT', `/v1/resources/${ids[1]}`, { name: 'renamed' });
    expect(await names()).toEqual(['c', 'renamed', 'a']);
    await w.send(w.admin, 'PUT', `/v1/resources/${ids[2]}`, { value: 'second' });
    expect((await list()).data.find((r) => r.id === ids[2])?.version).toBe(2);
    await w.send(w.admin, 'DELETE', `/v1/resources/${ids[2]}`);
    const afterDelete = await list();
    expect(afterDelete.data.map((r) => r.name)).toEqual(['renamed', 'a']);
    expect(afterDelete.pagination.total).toBe(2);
    await w.send(w.admin, 'POST', `/v1/resources/${ids[2]}/restore`);
    expect(await names()).toEqual(['c', 'renamed', 'a']);
    // A restored version is a new version: the page shows it (the console reads it there).
    const restored = await w.send(w.admin, 'POST', `/v1/resources/${ids[2]}/versions/1/restore`);
    expect(restored.status).toBe(200);
    expect((await list()).data.find((r) => r.id === ids[2])?.version).toBe(3);
  });

  test('a vault becoming restricted empties a reader’s next page', async () => {
    expect(await names(reader)).toHaveLength(3);
    await w.send(w.admin, 'PUT', `/v1/vaults/${vault}`, { restricted: true });
    expect(await names(reader)).toEqual([]);
    await w.send(w.admin, 'PUT', `/v1/vaults/${vault}`, { restricted: false });
    expect(await names(reader)).toHaveLength(3);
  });

  test('a change that rolls back leaves the page as it was', async () => {
    const before = await list();
    const { instance } = w;
    const attempt = instance.writes.run(() => {
      updateResource(
        instance.db,
        instance.keyring,
        ids[0]!,
        { metadata: { description: 'never committed' }, value: undefined },
        undefined,
        'test',
        instance.clock.now(),
      );
      throw new Error('roll it back');
    });
    await expect(attempt).rejects.toThrow('roll it back');
    expect(await list()).toEqual(before);
  });
});
