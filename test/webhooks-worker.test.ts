/**
 * The delivery worker's guarantees in process, with real receivers on 127.0.0.1: the outbound
 * guard re-checked on the resolved address at every attempt (DNS changing after save, an
 * allow-list removed), bounded concurrency with a per-endpoint cap (a slow receiver does not
 * delay a fast one), leases (a worker that dies leaves its deliveries to the next one once the
 * lease expires), and shutdown (finish in-flight attempts within the grace, else hand them back).
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { manualClock, systemClock } from '../src/clock.ts';
import { emitEvent } from '../src/ledger/emit.ts';
import type { Instance } from '../src/instance.ts';
import type { LookupAll } from '../src/webhooks/outbound-guard.ts';
import {
  api,
  createWebhookTestInstance,
  startReceiver,
  type Receiver,
  type WebhookTestInstance,
} from './fixtures/webhooks.ts';
import { DeliveryWorker } from '../src/webhooks/worker.ts';
import { tempDir } from './harness.ts';

type Delivery = { id: string; status: string; attempt: number; error: string | null };
type List<T> = { data: T[] };

const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function setup(
  overrides: Record<string, Record<string, unknown>> = {},
  clock = manualClock(Date.now()),
  options: { lookup?: LookupAll } = {},
): WebhookTestInstance & { clock: typeof clock } {
  const dir = tempDir();
  const t = createWebhookTestInstance(dir.path, clock, overrides, options);
  cleanups.push(() => dir[Symbol.dispose]());
  cleanups.push(() => t.close());
  return { ...t, clock };
}

function receiver(options?: Parameters<typeof startReceiver>[0]): Receiver {
  const r = startReceiver(options);
  cleanups.push(() => r.stop());
  return r;
}

async function hook(
  t: WebhookTestInstance,
  rx: Receiver | string,
  events: string[] = ['*'],
): Promise<string> {
  const url = typeof rx === 'string' ? rx : `${rx.url}/hook`;
  const created = await api<{ id: string; secret: string }>(t, 'POST', '/v1/webhooks', {
    url,
    events,
  });
  expect(created.status).toBe(201);
  if (typeof rx !== 'string') rx.setSecrets([created.body.secret]);
  return created.body.id;
}

async function emit(
  instance: Instance,
  count: number,
  type = 'resource.updated',
): Promise<string[]> {
  return instance.writes.run(() =>
    Array.from({ length: count }, (_, i) =>
      emitEvent(instance.db, instance.clock, { type, projectId: null, object: { n: i } }),
    ),
  );
}

async function deliveries(t: WebhookTestInstance, id: string): Promise<Delivery[]> {
  return (await api<List<Delivery>>(t, 'GET', `/v1/webhooks/${id}/deliveries?limit=100`)).body.data;
}

describe('the outbound guard at delivery time', () => {
  test('DNS that changes after save is checked on every attempt: metadata, private, mixed answers refused', async () => {
    let answers = ['127.0.0.1'];
    const lookup: LookupAll = async () => answers.map((address) => ({ address, family: 4 }));
    const t = setup({}, manualClock(Date.now()), { lookup });
    const rx = receiver();
    const id = await hook(t, `http://rebind.test:${rx.port}/hook`);
    rx.setSecrets([
      (await api<{ secret: string }>(t, 'POST', `/v1/webhooks/${id}/rotate-secret`)).body.secret,
    ]);
    // random = 1: a refused attempt waits its full 5 s, so each tick below sees only the new one.
    const worker = new DeliveryWorker(t.instance, { lookup, random: () => 1 });

    await emit(t.instance, 1);
    await worker.drain();
    expect(rx.received).toHaveLength(1);
    // The name travels in Host; the connection went to the checked address.
    expect(rx.unverified).toEqual([]);

    const refusals: [string[], string][] = [
      [
        ['169.254.169.254'],
        'target refused: destination is a cloud metadata address, which is never allowed',
      ],
      [
        ['169.254.3.4'],
        'target refused: destination is a link-local address, which is never allowed',
      ],
      [
        ['10.1.2.3'],
        'target refused: destination is a private address; allow-list the host or its network to permit it',
      ],
      [
        ['127.0.0.1', '10.1.2.3'],
        'target refused: destination is a private address; allow-list the host or its network to permit it',
      ],
    ];
    for (const [next, error] of refusals) {
      answers = next;
      await emit(t.instance, 1);
      await worker.tick();
      const latest = (await deliveries(t, id))[0]!;
      expect(latest).toMatchObject({ status: 'pending', attempt: 1, error });
    }
    expect(rx.received).toHaveLength(1);
    // Once DNS points somewhere allowed again, the retries go through.
    answers = ['127.0.0.1'];
    t.clock.advance(60_000);
    await worker.drain();
    expect(rx.received).toHaveLength(1 + refusals.length);
    expect((await deliveries(t, id)).every((d) => d.status === 'succeeded')).toBe(true);
  });

  test('a webhook saved while loopback was allow-listed is refused once the allow-list is gone', async () => {
    const clock = manualClock(Date.now());
    const t = setup({}, clock);
    const rx = receiver();
    const id = await hook(t, rx);
    await emit(t.instance, 1);
    const strict = new DeliveryWorker(
      {
        ...t.instance,
        config: {
          ...t.instance.config,
          webhooks: { ...t.instance.config.webhooks, allowed_cidrs: [] },
        },
      },
      { random: () => 0 },
    );
    await strict.tick();
    expect(rx.received).toHaveLength(0);
    expect((await deliveries(t, id))[0]!.error).toBe(
      'target refused: destination is a loopback address; allow-list the host or its network to permit it',
    );
    // Allow-listed by host name instead of by network.
    const byHost = new DeliveryWorker(
      {
        ...t.instance,
        config: {
          ...t.instance.config,
          webhooks: {
            ...t.instance.config.webhooks,
            allowed_cidrs: [],
            allowed_hosts: ['127.0.0.1'],
          },
        },
      },
      { random: () => 0 },
    );
    clock.advance(10_000);
    await byHost.drain();
    expect(rx.received).toHaveLength(1);
  });
});

describe('concurrency', () => {
  test('a slow receiver does not delay a fast one; in-flight counts stay within the caps', async () => {
    const t = setup(
      {
        webhooks: {
          concurrency: 4,
          per_endpoint_concurrency: 2,
          timeout_ms: 5_000,
          poll_interval_ms: 20,
        },
      },
      systemClock as ReturnType<typeof manualClock>,
    );
    let slowInFlight = 0;
    let slowMax = 0;
    let fastInFlight = 0;
    let totalMax = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = receiver({
      behaviour: async () => {
        slowInFlight++;
        slowMax = Math.max(slowMax, slowInFlight);
        totalMax = Math.max(totalMax, slowInFlight + fastInFlight);
        await gate;
        slowInFlight--;
        return new Response('finally');
      },
    });
    const fast = receiver({
      behaviour: async () => {
        fastInFlight++;
        totalMax = Math.max(totalMax, slowInFlight + fastInFlight);
        await Bun.sleep(2);
        fastInFlight--;
        return new Response('ok');
      },
    });
    await hook(t, slow);
    await hook(t, fast);
    const worker = new DeliveryWorker(t.instance);
    worker.start();
    const started = performance.now();
    await emit(t.instance, 20);
    await fast.waitFor(20, 5_000);
    const fastDone = performance.now() - started;
    // The slow endpoint holds at most its two slots; the fast one got all 20 meanwhile.
    expect(slow.received).toHaveLength(0);
    expect(slowInFlight).toBe(2);
    while (worker.inFlight > 2) await Bun.sleep(5); // the fast ones' last outcomes being recorded
    expect(worker.inFlight).toBe(2);
    expect(fastDone).toBeLessThan(3_000);
    release();
    await slow.waitFor(20, 10_000);
    expect(slowMax).toBe(2);
    expect(totalMax).toBeLessThanOrEqual(4); // webhooks.concurrency
    await worker.stop();
    expect([...slow.unverified, ...fast.unverified]).toEqual([]);
  });
});

describe('leases and shutdown', () => {
  test('a worker that dies mid-attempt leaves its deliveries to the next worker once the lease expires', async () => {
    const t = setup({ webhooks: { timeout_ms: 1_000, per_endpoint_concurrency: 8 } });
    const rx = receiver();
    const id = await hook(t, rx);
    await emit(t.instance, 3);
    // The first worker's requests never complete and it never records anything: as if killed.
    const dead = new DeliveryWorker(t.instance, {
      owner: 'dead',
      fetchImpl: (() => new Promise<Response>(() => {})) as unknown as typeof fetch,
    });
    expect(await dead.tick(false)).toBe(3);
    expect((await deliveries(t, id)).map((d) => d.status)).toEqual([
      'in_flight',
      'in_flight',
      'in_flight',
    ]);
    const next = new DeliveryWorker(t.instance, { owner: 'next' });
    expect(await next.tick()).toBe(0); // leases still held (2 × timeout + 5 s = 7 s)
    t.clock.advance(6_999);
    expect(await next.tick()).toBe(0);
    t.clock.advance(1);
    expect(await next.tick()).toBe(3);
    expect((await deliveries(t, id)).map((d) => d.status)).toEqual([
      'succeeded',
      'succeeded',
      'succeeded',
    ]);
    expect(rx.received).toHaveLength(3);
  });

  test('stop() waits for attempts that finish within the grace and records them', async () => {
    const t = setup(
      { webhooks: { poll_interval_ms: 20 } },
      systemClock as ReturnType<typeof manualClock>,
    );
    const rx = receiver({ behaviour: async () => (await Bun.sleep(300), new Response('ok')) });
    const id = await hook(t, rx);
    const worker = new DeliveryWorker(t.instance);
    worker.start();
    await emit(t.instance, 2);
    while (worker.inFlight < 2) await Bun.sleep(5);
    await worker.stop(5_000);
    expect(worker.inFlight).toBe(0);
    expect((await deliveries(t, id)).map((d) => d.status)).toEqual(['succeeded', 'succeeded']);
    // Stopped: nothing new is claimed.
    await emit(t.instance, 1);
    await Bun.sleep(100);
    expect(rx.received).toHaveLength(2);
    expect((await deliveries(t, id))[0]!.status).toBe('pending');
  });

  test('stop() hands back attempts still running after the grace: pending again at once, no lease wait', async () => {
    const t = setup(
      { webhooks: { poll_interval_ms: 20 } },
      systemClock as ReturnType<typeof manualClock>,
    );
    let hang = true;
    const rx = receiver({
      behaviour: async () => {
        while (hang) await Bun.sleep(10);
        return new Response('ok');
      },
    });
    const id = await hook(t, rx);
    const worker = new DeliveryWorker(t.instance, { owner: 'first' });
    worker.start();
    await emit(t.instance, 1);
    while (worker.inFlight < 1) await Bun.sleep(5);
    const began = performance.now();
    await worker.stop(200);
    expect(performance.now() - began).toBeLessThan(1_000);
    const [row] = t.instance.sqlite
      .query(
        `SELECT status, lease_owner AS owner, attempts FROM webhook_deliveries WHERE webhook_id = ?`,
      )
      .all(id) as { status: string; owner: string | null; attempts: number }[];
    expect(row).toEqual({ status: 'pending', owner: null, attempts: 0 });
    hang = false;
    const second = new DeliveryWorker(t.instance, { owner: 'second' });
    expect(await second.tick()).toBe(1);
    expect((await deliveries(t, id))[0]!.status).toBe('succeeded');
  });
});
