/**
 * Delivery across process lifetimes, with `secryn serve` as a real child process: killed with
 * `kill -9` in the middle of deliveries and restarted (every event delivered at least once, none
 * lost), stopped with SIGTERM while an attempt is in flight (it finishes and is recorded, the
 * process exits 0), and an event written by another process (`secryn master-key rotate`) picked
 * up from the outbox by the running server. Receivers verify every signature with
 * `standardwebhooks`.
 */
import { Database } from 'bun:sqlite';
import { afterAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { startReceiver, type Receiver } from './fixtures/webhooks.ts';
import {
  cliCommand,
  freePort,
  pinnedEnv,
  runCli,
  tempDir,
  waitForHealthy,
  writeConfig,
} from './harness.ts';

type Server = { url: string; proc: ReturnType<typeof Bun.spawn>; stderr: () => string };

const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** A fresh instance: config with loopback allowed, `init`, and the admin token. */
async function instance(
  webhooks: string,
): Promise<{ dir: string; config: string; token: string; port: number }> {
  const dir = tempDir();
  cleanups.push(() => dir[Symbol.dispose]());
  const port = freePort();
  const config = writeConfig(
    dir.path,
    `[server]\nport = ${port}\n[webhooks]\nallowed_cidrs = ["127.0.0.0/8"]\npoll_interval_ms = 50\n${webhooks}\n`,
  );
  const init = await runCli(['init', '--config', config, '--json']);
  expect(init.exitCode).toBe(0);
  const token = (JSON.parse(init.stdout) as { admin_key: { token: string } }).admin_key.token;
  return { dir: dir.path, config, token, port };
}

async function serve(config: string, port: number): Promise<Server> {
  const proc = Bun.spawn([...cliCommand(), 'serve', '--config', config], {
    env: pinnedEnv(),
    stdout: 'ignore',
    stderr: 'pipe',
    stdin: 'ignore',
  });
  let stderr = '';
  void (async () => {
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>)
      stderr += new TextDecoder().decode(chunk);
  })();
  cleanups.push(() => proc.kill(9));
  const url = `http://127.0.0.1:${port}`;
  await waitForHealthy(`${url}/health`, 15_000);
  return { url, proc, stderr: () => stderr };
}

async function post(
  server: Server,
  token: string,
  path: string,
  body: unknown,
): Promise<Record<string, unknown>> {
  const response = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await response.json()) as Record<string, unknown>;
  if (response.status !== 201)
    throw new Error(`${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

function receiver(options?: Parameters<typeof startReceiver>[0]): Receiver {
  const r = startReceiver(options);
  cleanups.push(() => r.stop());
  return r;
}

function readDb(dir: string, sql: string): unknown[] {
  const db = new Database(join(dir, 'data/secryn.db'), { readonly: true });
  try {
    return db.query(sql).all();
  } finally {
    db.close();
  }
}

describe('secryn serve', () => {
  test('kill -9 in the middle of deliveries, restart: every event delivered at least once', async () => {
    // timeout 1 s → lease 7 s: after the kill, the restarted server takes the rows back then.
    const setup = await instance('timeout_ms = 1000\nper_endpoint_concurrency = 2');
    const rx = receiver({ behaviour: async () => (await Bun.sleep(100), new Response('ok')) });
    let server = await serve(setup.config, setup.port);
    const hook = await post(server, setup.token, '/v1/webhooks', {
      url: `${rx.url}/in`,
      events: ['project.created'],
    });
    rx.setSecrets([hook.secret as string]);
    const total = 40;
    for (let i = 0; i < total; i++)
      await post(server, setup.token, '/v1/projects', { name: `p${i}` });
    await rx.waitFor(6, 15_000);
    server.proc.kill(9);
    expect(await server.proc.exited).toBe(137);
    const atKill = rx.received.length;
    expect(atKill).toBeLessThan(total);
    // Some were claimed (leased) when the process died; the rest were still pending.
    const leased = (
      readDb(
        setup.dir,
        `SELECT event_id AS id FROM webhook_deliveries WHERE status = 'in_flight'`,
      ) as {
        id: string;
      }[]
    ).map((row) => row.id);
    expect(leased.length).toBeGreaterThan(0);

    server = await serve(setup.config, setup.port);
    const eventIds = (
      readDb(setup.dir, `SELECT id FROM events WHERE type = 'project.created'`) as { id: string }[]
    ).map((row) => row.id);
    expect(eventIds).toHaveLength(total);
    // Everything ends up delivered and recorded; the leased rows once their lease (7 s) expired.
    const deadline = Date.now() + 30_000;
    let states: unknown[] = [];
    while (Date.now() < deadline) {
      states = readDb(
        setup.dir,
        `SELECT status, count(*) AS n FROM webhook_deliveries GROUP BY status`,
      );
      if (JSON.stringify(states) === JSON.stringify([{ status: 'succeeded', n: total }])) break;
      await Bun.sleep(200);
    }
    expect(states).toEqual([{ status: 'succeeded', n: total }]);
    const seen = new Map<string, number>();
    for (const r of rx.received) seen.set(r.webhookId, (seen.get(r.webhookId) ?? 0) + 1);
    expect(eventIds.filter((id) => !seen.has(id))).toEqual([]);
    // At least once: the deliveries in flight at the kill were attempted again after restart.
    for (const id of leased) expect(seen.get(id)).toBeGreaterThanOrEqual(1);
    const attempts = readDb(
      setup.dir,
      `SELECT d.event_id AS id, count(a.seq) AS n FROM webhook_deliveries d
       LEFT JOIN webhook_delivery_attempts a ON a.delivery_id = d.id GROUP BY d.id`,
    ) as { id: string; n: number }[];
    for (const row of attempts) expect(row.n).toBe(1);
    expect(rx.unverified).toEqual([]);
    server.proc.kill('SIGTERM');
    expect(await server.proc.exited).toBe(0);
  }, 90_000);

  test('SIGTERM with an attempt in flight: it finishes and is recorded, then the process exits 0', async () => {
    const setup = await instance('timeout_ms = 5000');
    let arrived!: () => void;
    const arrival = new Promise<void>((resolve) => (arrived = resolve));
    const rx = receiver({
      behaviour: async () => {
        arrived();
        await Bun.sleep(1_000);
        return new Response('done');
      },
    });
    const server = await serve(setup.config, setup.port);
    const hook = await post(server, setup.token, '/v1/webhooks', {
      url: `${rx.url}/in`,
      events: ['*'],
    });
    rx.setSecrets([hook.secret as string]);
    await post(server, setup.token, `/v1/webhooks/${hook.id as string}/test`, {});
    await arrival;
    const began = Date.now();
    server.proc.kill('SIGTERM');
    expect(await server.proc.exited).toBe(0);
    expect(Date.now() - began).toBeGreaterThanOrEqual(500);
    expect(rx.received).toHaveLength(1);
    expect(rx.unverified).toEqual([]);
    expect(
      readDb(setup.dir, `SELECT status, attempts, lease_owner AS owner FROM webhook_deliveries`),
    ).toEqual([{ status: 'succeeded', attempts: 1, owner: null }]);
  }, 60_000);

  test('an event written by another process (master-key rotate) is delivered by the running server', async () => {
    const setup = await instance('');
    const rx = receiver();
    const server = await serve(setup.config, setup.port);
    const hook = await post(server, setup.token, '/v1/webhooks', {
      url: `${rx.url}/in`,
      events: ['master_key.rotated'],
    });
    rx.setSecrets([hook.secret as string]);
    const rotate = await runCli(['master-key', 'rotate', '--config', setup.config, '--json']);
    expect(rotate.exitCode).toBe(0);
    await rx.waitFor(1, 15_000);
    const event = rx.received[0]!.payload;
    expect(event.type).toBe('master_key.rotated');
    expect(Object.keys(event.data.object).sort()).toEqual(
      ['key_source', 'new_fingerprint', 'old_fingerprint', 'rotated_at'].sort(),
    );
    expect(event.data.object.old_fingerprint).not.toBe(event.data.object.new_fingerprint);
    expect(rx.unverified).toEqual([]);
    server.proc.kill('SIGTERM');
    expect(await server.proc.exited).toBe(0);
  }, 60_000);
});
