/**
 * `GET /v1/events/stream` over a real socket (startServer): live delivery within a second,
 * resuming with Last-Event-ID without a gap or a duplicate, visibility (admin-key events,
 * project limits), the stream limits (429 + Retry-After, slots freed on hang-up), heartbeats,
 * and the end of the stream when its key is revoked or expires.
 */
import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import type { KeyGrant } from '../src/access/principal.ts';
import { manualClock } from '../src/clock.ts';
import { buildFeatures, type Features } from '../src/features.ts';
import { createInstance, type Instance } from '../src/instance.ts';
import { insertApiKey, newApiKeyId } from '../src/keys/service.ts';
import { startServer, type RunningServer } from '../src/server.ts';
import { memoryLogger, tempDir, testConfig } from './harness.ts';

type Message = { id: string; type: string; object: Record<string, unknown> };

/** A Server-Sent Events client over fetch: messages and comments as they arrive. */
class SseClient {
  readonly messages: Message[] = [];
  readonly comments: string[] = [];
  ended = false;
  private buffer = '';
  private waiters: (() => void)[] = [];
  private constructor(
    readonly response: Response,
    private readonly abort: AbortController,
  ) {
    void this.read();
  }

  static async open(url: string, token: string, headers: Record<string, string> = {}) {
    const abort = new AbortController();
    const response = await fetch(url, {
      headers: { authorization: `Bearer ${token}`, ...headers },
      signal: abort.signal,
    });
    return new SseClient(response, abort);
  }

  private async read() {
    if (!this.response.body || this.response.status !== 200) {
      this.ended = true;
      return;
    }
    const decoder = new TextDecoder();
    try {
      for await (const chunk of this.response.body) {
        this.buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = this.buffer.indexOf('\n\n')) >= 0) {
          const block = this.buffer.slice(0, end);
          this.buffer = this.buffer.slice(end + 2);
          if (block.startsWith(':')) this.comments.push(block.slice(1).trim());
          else {
            const fields = Object.fromEntries(
              block
                .split('\n')
                .map((line) => [
                  line.slice(0, line.indexOf(':')),
                  line.slice(line.indexOf(':') + 2),
                ]),
            );
            const payload = JSON.parse(fields.data!);
            expect(payload.id).toBe(fields.id);
            this.messages.push({ id: fields.id!, type: payload.type, object: payload.data.object });
          }
        }
        this.wake();
      }
    } catch {
      // aborted by the test
    }
    this.ended = true;
    this.wake();
  }

  private wake() {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  /** Resolves once `ready()` holds (checked on every arrival), or fails after `ms`. */
  async until(ready: () => boolean, ms = 3000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!ready()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting on the stream');
      await Promise.race([
        new Promise<void>((resolve) => this.waiters.push(resolve)),
        Bun.sleep(Math.min(left, 50)),
      ]);
    }
  }

  close() {
    this.abort.abort();
  }
}

describe('GET /v1/events/stream', () => {
  let dir: ReturnType<typeof tempDir>;
  let instance: Instance;
  let features: Features;
  let running: RunningServer;
  let admin: string;
  const clock = manualClock(Date.now());
  const clients: SseClient[] = [];

  const key = (grant: Partial<KeyGrant>) =>
    insertApiKey(
      instance.db,
      newApiKeyId(),
      {
        name: 'k',
        role: 'reader',
        projectIds: [],
        vaultIds: [],
        scopes: null,
        expiresAt: null,
        ...grant,
      },
      'test',
      clock.now(),
    );
  const api = async (token: string, method: string, path: string, body?: unknown) => {
    const response = await fetch(new URL(path, running.url), {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, json: (await response.json()) as any };
  };
  const stream = async (token: string, query = '', headers: Record<string, string> = {}) => {
    const client = await SseClient.open(`${running.url}v1/events/stream${query}`, token, headers);
    clients.push(client);
    return client;
  };
  /** Opens a stream once a slot is free again (hang-ups free theirs asynchronously). */
  const openWhenFree = async (token: string, query = '') => {
    const deadline = Date.now() + 3000;
    let client = await stream(token, query);
    while (client.response.status === 429 && Date.now() < deadline) {
      await Bun.sleep(50);
      client = await stream(token, query);
    }
    return client;
  };
  const secret = async (vaultId: string, name: string) =>
    (
      await api(admin, 'POST', '/v1/resources', {
        type: 'secret',
        vault_id: vaultId,
        name,
        value: 'v',
      })
    ).json.id as string;

  beforeEach(() => {
    dir = tempDir();
    instance = createInstance(
      testConfig(dir.path, {
        server: { port: 0 },
        rate_limit: { burst: 1_000_000, requests_per_minute: 1_000_000 },
        events: { stream_heartbeat_seconds: 1, max_streams_per_key: 2, max_streams: 3 },
      }),
      memoryLogger('json', 'warn'),
      undefined,
      { clock },
    );
    features = buildFeatures(instance);
    running = startServer(instance, {
      features: features.features,
      recordOutcome: features.recordOutcome,
      afterDrain: () => features.stop(),
      port: 0,
    });
    void features.start();
    admin = key({ role: 'admin' }).token;
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await features.stop();
    await running.stop();
    dir[Symbol.dispose]();
  });

  const setUp = async () => {
    const project = (await api(admin, 'POST', '/v1/projects', { name: 'p' })).json.id as string;
    const vault = (await api(admin, 'POST', '/v1/vaults', { project_id: project, name: 'v' })).json
      .id as string;
    return { project, vault };
  };

  test('an update reaches an open stream within a second, metadata only; the request is audited', async () => {
    const { vault } = await setUp();
    const id = await secret(vault, 'S');
    const client = await stream(admin);
    expect(client.response.status).toBe(200);
    expect(client.response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    await client.until(() => client.comments.includes('connected'));
    const started = performance.now();
    expect((await api(admin, 'PUT', `/v1/resources/${id}`, { value: 'new-value' })).status).toBe(
      200,
    );
    await client.until(() => client.messages.length > 0, 1000);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(client.messages[0]).toMatchObject({
      type: 'resource.updated',
      object: { id, version: 2 },
    });
    expect(JSON.stringify(client.messages)).not.toContain('new-value');
    const entry = instance.sqlite
      .query("SELECT outcome, status FROM audit_log WHERE action = 'event.stream'")
      .all();
    expect(entry).toEqual([{ outcome: 'success', status: 200 }]);
  });

  test('Last-Event-ID resumes with every event missed, in order, none twice; then live', async () => {
    const { vault } = await setUp();
    const first = await stream(admin);
    await first.until(() => first.comments.includes('connected'));
    await secret(vault, 'A');
    await first.until(() => first.messages.length === 1);
    const lastSeen = first.messages[0]!.id;
    first.close();
    for (const name of ['B', 'C', 'D']) await secret(vault, name);
    // Writes keep committing while the client reconnects: none may fall between replay and live.
    const during = Promise.all(Array.from({ length: 20 }, (_, i) => secret(vault, `E${i}`)));
    const again = await stream(admin, '', { 'last-event-id': lastSeen });
    await during;
    await secret(vault, 'F');
    const stored = (
      instance.sqlite
        .query(
          'SELECT id FROM events WHERE seq > (SELECT seq FROM events WHERE id = ?) ORDER BY seq',
        )
        .all(lastSeen) as { id: string }[]
    ).map((row) => row.id);
    expect(stored).toHaveLength(24);
    await again.until(() => again.messages.length >= stored.length);
    await Bun.sleep(100);
    expect(again.messages.map((m) => m.id)).toEqual(stored);
    // The query alternative, and a resume point that is not stored any more.
    const viaQuery = await stream(admin, `?last_event_id=${stored[22]}`);
    await viaQuery.until(() => viaQuery.messages.length === 1);
    expect(viaQuery.messages[0]!.id).toBe(stored[23]!);
    viaQuery.close();
    again.close();
    const gone = await stream(admin, '', { 'last-event-id': 'evt_01jq3v6x1nf4r8s2k9w7y5t3m0' });
    expect(gone.response.status).toBe(410);
    const bad = await stream(admin, '', { 'last-event-id': 'nonsense' });
    expect(bad.response.status).toBe(400);
    expect(((await bad.response.json()) as any).error.details.field).toBe('Last-Event-ID');
  });

  test('visibility: admin-key events stay with admins; a project-limited key sees its project', async () => {
    const a = await setUp();
    const b = (await api(admin, 'POST', '/v1/projects', { name: 'q' })).json.id as string;
    const vaultB = (await api(admin, 'POST', '/v1/vaults', { project_id: b, name: 'w' })).json.id;
    const manager = key({ role: 'manager' }).token;
    const limited = key({ role: 'manager', projectIds: [a.project] }).token;
    const all = await stream(admin);
    const managed = await stream(manager);
    const scoped = await stream(limited);
    for (const c of [all, managed, scoped]) await c.until(() => c.comments.includes('connected'));
    const adminKey = (await api(admin, 'POST', '/v1/api-keys', { name: 'root2', role: 'admin' }))
      .json.id;
    const readerKey = (await api(admin, 'POST', '/v1/api-keys', { name: 'r', role: 'reader' })).json
      .id;
    await secret(vaultB, 'IN_B');
    await secret(a.vault, 'IN_A');
    await all.until(() => all.messages.length === 4);
    await managed.until(() => managed.messages.some((m) => m.object.name === 'IN_A'));
    await scoped.until(() => scoped.messages.some((m) => m.object.name === 'IN_A'));
    await Bun.sleep(100);
    const ids = (c: SseClient) => c.messages.map((m) => m.object.id ?? m.object.name);
    expect(ids(all)).toEqual([adminKey, readerKey, expect.any(String), expect.any(String)]);
    expect(managed.messages.map((m) => m.type)).toEqual([
      'api_key.created',
      'resource.created',
      'resource.created',
    ]);
    expect(ids(managed)[0]).toBe(readerKey);
    expect(scoped.messages.map((m) => m.object.name)).toEqual(['IN_A']);
    // Filters, and a project outside the key's reach answers a hidden 404.
    for (const c of [all, managed, scoped]) c.close();
    const filtered = await openWhenFree(limited, `?type=resource.*&project_id=${a.project}`);
    expect(filtered.response.status).toBe(200);
    filtered.close();
    expect((await stream(limited, `?project_id=${b}`)).response.status).toBe(404);
    // Without resources:read, no stream; without events:read, resource events only.
    const noResources = key({ role: 'reader', scopes: ['vaults:read'] }).token;
    expect((await stream(noResources)).response.status).toBe(403);
    const contributor = key({ role: 'contributor' }).token;
    expect((await stream(contributor, '?type=vault.*')).response.status).toBe(403);
  });

  test('a key without events:read streams the resource events of its vaults only', async () => {
    const a = await setUp();
    const vaultB = (await api(admin, 'POST', '/v1/vaults', { project_id: a.project, name: 'b' }))
      .json.id as string;
    const locked = (
      await api(admin, 'POST', '/v1/vaults', {
        project_id: a.project,
        name: 'locked',
        restricted: true,
      })
    ).json.id as string;
    const inA = await secret(a.vault, 'A1');
    const inB = await secret(vaultB, 'B1');
    const inLocked = await secret(locked, 'L1');
    const access = key({ role: 'access', vaultIds: [a.vault] }).token;
    const contributor = key({ role: 'contributor', projectIds: [a.project] }).token;
    const granted = key({ role: 'reader', vaultIds: [locked] }).token;
    const manager = key({ role: 'manager' }).token;
    const viaAccess = await stream(access);
    const viaContributor = await stream(contributor);
    const viaManager = await stream(manager);
    const all = [viaAccess, viaContributor, viaManager];
    // At most 3 streams in this test's server: the grant's stream replays the same events later.
    const before = (
      instance.sqlite.query('SELECT id FROM events ORDER BY seq DESC LIMIT 1').get() as {
        id: string;
      }
    ).id;
    for (const c of all) {
      expect(c.response.status).toBe(200);
      await c.until(() => c.comments.includes('connected'));
    }
    await api(admin, 'PUT', `/v1/resources/${inB}`, { value: 'b2' });
    await api(admin, 'PUT', `/v1/resources/${inLocked}`, { value: 'l2' });
    await api(admin, 'PUT', `/v1/vaults/${vaultB}`, { description: 'x' });
    const readerKey = (await api(admin, 'POST', '/v1/api-keys', { name: 'r', role: 'reader' })).json
      .id;
    await api(admin, 'PUT', `/v1/resources/${inA}`, { value: 'a2' });
    await viaManager.until(() => viaManager.messages.some((m) => m.object.id === inA));
    for (const c of [viaAccess, viaContributor]) {
      await c.until(() => c.messages.some((m) => m.object.id === inA));
    }
    await Bun.sleep(150);
    for (const c of all) c.close();
    const viaGrant = await openWhenFree(granted, `?last_event_id=${before}`);
    await viaGrant.until(() => viaGrant.messages.length > 0);
    await Bun.sleep(100);
    const seen = (c: SseClient) => c.messages.map((m) => `${m.type} ${m.object.id}`);
    // The access key: vault A's update, nothing of vault B (same project) or the restricted one.
    expect(seen(viaAccess)).toEqual([`resource.updated ${inA}`]);
    // A project contributor: both unrestricted vaults' resources, no vault or key events.
    expect(seen(viaContributor)).toEqual([`resource.updated ${inB}`, `resource.updated ${inA}`]);
    // A grant on the restricted vault: its events, and only those.
    expect(seen(viaGrant)).toEqual([`resource.updated ${inLocked}`]);
    // A manager (events:read) still gets everything it got: vaults, keys, restricted vaults.
    expect(seen(viaManager)).toEqual([
      `resource.updated ${inB}`,
      `resource.updated ${inLocked}`,
      `vault.updated ${vaultB}`,
      `api_key.created ${readerKey}`,
      `resource.updated ${inA}`,
    ]);
    viaGrant.close();
    // vault_id narrows the stream; a vault outside the key's reach is a hidden 404.
    const narrowed = await openWhenFree(contributor, `?type=resource.*&vault_id=${vaultB}`);
    expect(narrowed.response.status).toBe(200);
    await narrowed.until(() => narrowed.comments.includes('connected'));
    await api(admin, 'PUT', `/v1/resources/${inA}`, { value: 'a3' });
    await api(admin, 'PUT', `/v1/resources/${inB}`, { value: 'b3' });
    await narrowed.until(() => narrowed.messages.length > 0);
    await Bun.sleep(100);
    expect(seen(narrowed)).toEqual([`resource.updated ${inB}`]);
    expect((await stream(access, `?vault_id=${vaultB}`)).response.status).toBe(404);
    expect((await stream(access, `?vault_id=${locked}`)).response.status).toBe(404);
    expect((await stream(access, '?vault_id=nope')).response.status).toBe(400);
  });

  test('limits: 429 with Retry-After per key and in total; a hang-up frees its slot', async () => {
    const one = await stream(admin);
    const two = await stream(admin);
    const third = await stream(admin);
    expect([one.response.status, two.response.status, third.response.status]).toEqual([
      200, 200, 429,
    ]);
    expect(third.response.headers.get('retry-after')).toBe('5');
    expect(((await third.response.json()) as any).error.code).toBe('RATE_LIMITED');
    const other = key({ role: 'admin' }).token;
    expect((await stream(other)).response.status).toBe(200);
    expect((await stream(other)).response.status).toBe(429); // 3 in total
    one.close();
    expect((await openWhenFree(admin)).response.status).toBe(200);
  });

  test('heartbeats arrive; a revoked key or an expired one ends its stream', async () => {
    const client = await stream(admin);
    await client.until(() => client.comments.includes('heartbeat'), 2500);
    const revoked = key({ role: 'admin' });
    const victim = await stream(revoked.token);
    await victim.until(() => victim.comments.includes('connected'));
    expect((await api(admin, 'DELETE', `/v1/api-keys/${revoked.row.id}`)).status).toBe(200);
    await victim.until(() => victim.ended, 2500);
    expect(victim.comments.at(-1)).toContain('no longer valid');
    const expiring = key({ role: 'admin', expiresAt: clock.now() + 60_000 });
    const late = await stream(expiring.token);
    await late.until(() => late.comments.includes('connected'));
    clock.advance(61_000);
    await late.until(() => late.ended, 2500);
    expect(client.ended).toBe(false);
  });
});
