/**
 * `GET /v1/vaults/:id` serves a vault's secrets from a per-connection cache of sealed rows and
 * writes its body as text: these tests change the vault's secrets in every way a write can, and
 * let time pass without any write, and check that the very next read sees it; that a change
 * rolled back leaves no trace; and that the body is exactly the JSON of the objects the API
 * documents.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { toVaultSecret } from '../src/resources/objects.ts';
import { listActiveSecrets, updateResource } from '../src/resources/store.ts';
import { openWorld, type World } from './resources-harness.ts';

type Secret = { id: string; name: string; value?: string; tags: string[] };

describe('vault reads after changes (vault secrets cache)', () => {
  let w: World;
  let vault: string;
  let first: string;

  beforeAll(async () => {
    w = openWorld();
    const project = (await w.send(w.admin, 'POST', '/v1/projects', { name: 'p' })).json.id;
    vault = (await w.send(w.admin, 'POST', '/v1/vaults', { project_id: project, name: 'v' })).json
      .id;
    first = (await create('b-first', 'one')).id;
  });
  afterAll(() => w.close());

  async function create(name: string, value: string, extra: Record<string, unknown> = {}) {
    const reply = await w.send(w.admin, 'POST', '/v1/resources', {
      type: 'secret',
      vault_id: vault,
      name,
      value,
      ...extra,
    });
    expect(reply.status).toBe(201);
    return reply.json as { id: string };
  }

  const read = async () => {
    const reply = await w.send(w.admin, 'GET', `/v1/vaults/${vault}`);
    expect(reply.status).toBe(200);
    return (reply.json.secrets as Secret[]).map((s) => `${s.name}=${s.value ?? ''}`);
  };

  test('a new secret, a new value, a rename, tags, a disable, a delete and a restore', async () => {
    expect(await read()).toEqual(['b-first=one']);
    const second = (await create('a-second', 'two')).id;
    expect(await read()).toEqual(['a-second=two', 'b-first=one']);
    await w.send(w.admin, 'PUT', `/v1/resources/${first}`, { value: 'uno' });
    expect(await read()).toEqual(['a-second=two', 'b-first=uno']);
    await w.send(w.admin, 'PUT', `/v1/resources/${second}`, { name: 'c-second' });
    expect(await read()).toEqual(['b-first=uno', 'c-second=two']);
    await w.send(w.admin, 'PUT', `/v1/resources/${second}`, { tags: ['x'] });
    const tagged = (await w.send(w.admin, 'GET', `/v1/vaults/${vault}`)).json.secrets as Secret[];
    expect(tagged.find((s) => s.id === second)?.tags).toEqual(['x']);
    await w.send(w.admin, 'PUT', `/v1/resources/${second}`, { enabled: false });
    expect(await read()).toEqual(['b-first=uno']);
    await w.send(w.admin, 'PUT', `/v1/resources/${second}`, { enabled: true });
    expect(await read()).toEqual(['b-first=uno', 'c-second=two']);
    await w.send(w.admin, 'DELETE', `/v1/resources/${second}`);
    expect(await read()).toEqual(['b-first=uno']);
    await w.send(w.admin, 'POST', `/v1/resources/${second}/restore`);
    expect(await read()).toEqual(['b-first=uno', 'c-second=two']);
    await w.send(w.admin, 'POST', `/v1/resources/${first}/versions/1/restore`);
    expect(await read()).toEqual(['b-first=one', 'c-second=two']);
    await w.send(w.admin, 'DELETE', `/v1/resources/${second}`);
  });

  test('a secret enters and leaves the vault read as time passes, with no write', async () => {
    const now = w.clock.now();
    const later = await create('d-later', 'soon', {
      activates_at: new Date(now + 60_000).toISOString(),
      expires_at: new Date(now + 120_000).toISOString(),
    });
    expect(await read()).toEqual(['b-first=one']);
    w.clock.advance(60_000);
    expect(await read()).toEqual(['b-first=one', 'd-later=soon']);
    w.clock.advance(60_000);
    expect(await read()).toEqual(['b-first=one']);
    await w.send(w.admin, 'DELETE', `/v1/resources/${later.id}`);
  });

  test('a change that rolls back leaves the vault read as it was', async () => {
    expect(await read()).toEqual(['b-first=one']);
    const { instance } = w;
    const attempt = instance.writes.run(() => {
      updateResource(
        instance.db,
        instance.keyring,
        first,
        { metadata: {}, value: 'never-committed' },
        undefined,
        'test',
        instance.clock.now(),
      );
      // Inside the job the change is visible, and read past the cache.
      const inside = listActiveSecrets(instance.sqlite, vault, instance.clock.now());
      expect(inside[0]?.version).toBeGreaterThan(1);
      throw new Error('roll it back');
    });
    await expect(attempt).rejects.toThrow('roll it back');
    expect(await read()).toEqual(['b-first=one']);
  });

  test('a vault moved to another project under the cache no longer opens its values', async () => {
    expect(await read()).toEqual(['b-first=one']);
    const other = (await w.send(w.admin, 'POST', '/v1/projects', { name: 'other' })).json.id;
    const move = (project: string) =>
      w.instance.sqlite.query('UPDATE vaults SET project_id = ? WHERE id = ?').run(project, vault);
    const home = (await w.send(w.admin, 'GET', `/v1/vaults/${vault}`)).json.project_id as string;
    // Raw SQL, as an attacker with the file would: no write job, so no cache is cleared.
    move(other);
    const moved = await w.send(w.admin, 'GET', `/v1/vaults/${vault}`);
    expect(moved.status).toBe(500);
    expect(moved.text).not.toContain('one');
    move(home);
    expect(await read()).toEqual(['b-first=one']);
  });

  test('the listed secrets are frozen: a caller cannot change what later reads get', () => {
    const [secret] = listActiveSecrets(w.instance.sqlite, vault, w.clock.now());
    expect(Object.isFrozen(secret)).toBe(true);
    expect(() => secret!.tags.push('x')).toThrow();
  });

  test('the body is exactly the JSON of the vault and secret objects, values escaped', async () => {
    const awkward = 'quote " backslash \\ newline \n tab \t nul \u0000 é 🔑 \u2028 end';
    const odd = await create('e-"odd" name', awkward, {
      tags: ['t "1"', 'ü'],
      content_type: 'application/json',
    });
    const response = await w.app.handle(
      new Request(`http://localhost/v1/vaults/${vault}`, {
        headers: { authorization: `Bearer ${w.admin}` },
      }),
    );
    expect(response.headers.get('content-type')).toBe('application/json;charset=utf-8');
    const text = await response.text();
    const body = JSON.parse(text);
    expect(body.secrets.map((s: Secret) => s.value)).toEqual(['one', awkward]);
    const vaultObject = (await w.send(w.admin, 'GET', `/v1/vaults/${vault}?secrets=names`)).json;
    delete vaultObject.secrets;
    const secrets = listActiveSecrets(w.instance.sqlite, vault, w.clock.now());
    const values = new Map([
      [first, 'one'],
      [odd.id, awkward],
    ]);
    const expected = {
      ...vaultObject,
      secrets: secrets.map((s) => toVaultSecret(s, values.get(s.id))),
    };
    expect(text).toBe(JSON.stringify(expected));
    // A reader (no reveal) gets the same objects without values.
    const reader = w.key({ role: 'reader', scopes: null }).token;
    const plain = await w.app.handle(
      new Request(`http://localhost/v1/vaults/${vault}`, {
        headers: { authorization: `Bearer ${reader}` },
      }),
    );
    expect(await plain.text()).toBe(
      JSON.stringify({ ...vaultObject, secrets: secrets.map((s) => toVaultSecret(s)) }),
    );
  });
});
