/**
 * Webhook delivery throughput, and what webhooks add to the write path.
 *
 *   ./node_modules/.bin/bun bench/webhooks.ts            (~2 min)
 *   ./node_modules/.bin/bun bench/webhooks.ts --quick    (~40 s; for a smoke test)
 *
 * 1. Delivery throughput: an instance in this process with N events already in the outbox, a
 *    DeliveryWorker (the one `serve` runs: claim under lease, guard check, Standard Webhooks
 *    signature, pinned POST, group-committed outcome) and a receiver in a child process that
 *    answers 204. Measured: events delivered (outcome recorded) per second, for one endpoint
 *    (per-endpoint cap = concurrency) and for four endpoints (default cap 2). Baseline in the same
 *    run: the same POSTs from this process with the same concurrency, without database, guard or
 *    signature.
 * 2. What webhooks add to a write. (a) In process, the CPU cost of `emitEvent` inside a write
 *    job next to its audit entry, with 0, 1 and 5 subscribed webhooks. (b) Over HTTP:
 *    `secryn serve` (child, CPU 0) under wrk (CPU 1), `PUT /v1/resources/:id` with a
 *    new value (audited, new version, event in the same transaction). Variants, interleaved:
 *    no webhook (the event row is still written: the outbox always is), and one webhook `*`
 *    whose deliveries the server's worker makes while it serves the writes (receiver on CPU 1).
 */
import { Database } from 'bun:sqlite';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../src/config/load.ts';
import { appendAuditEntry } from '../src/ledger/audit-record.ts';
import { emitEvent } from '../src/ledger/emit.ts';
import { createInstance } from '../src/instance.ts';
import { createLogger } from '../src/log/logger.ts';
import { insertWebhook, newWebhookId } from '../src/webhooks/service.ts';
import { DeliveryWorker } from '../src/webhooks/worker.ts';
import {
  errorCount,
  findWrk,
  formatCount,
  formatMs,
  formatRatio,
  freePort,
  machineSummary,
  markdownTable,
  median,
  planCpuPinning,
  runWrk,
  startServerProcess,
  type ServerProcess,
  type WrkResult,
} from './lib/load.ts';

const quick = process.argv.includes('--quick');
const MAIN = join(import.meta.dir, '../src/main.ts');
const silent = createLogger({ level: 'silent', format: 'json', color: false, write: () => {} });

/** A receiver in its own process: 204 to every POST, `GET /count` says how many it got. */
const RECEIVER_SOURCE = `
let count = 0;
const port = Number(process.env.RECEIVER_PORT);
Bun.serve({ hostname: '127.0.0.1', port, async fetch(request) {
  if (request.method === 'GET') return new Response(String(count));
  await request.arrayBuffer();
  count++;
  return new Response(null, { status: 204 });
} });
process.on('SIGTERM', () => process.exit(0));
`;

async function startReceiver(cpu: number | undefined): Promise<ServerProcess> {
  const port = await freePort();
  return startServerProcess({
    cmd: [process.execPath, '-e', RECEIVER_SOURCE],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', RECEIVER_PORT: String(port) },
    readyUrl: `http://127.0.0.1:${port}/count`,
    cpu,
  });
}

// ------------------------------------------------------------------------------------------------
// 1. Delivery throughput

type Throughput = { label: string; events: number; seconds: number; perSec: number };

async function deliveryThroughput(
  receiver: ServerProcess,
  options: {
    label: string;
    events: number;
    endpoints: number;
    concurrency: number;
    perEndpoint: number;
  },
): Promise<Throughput> {
  const dir = mkdtempSync(join(tmpdir(), 'secryn-bench-'));
  try {
    const config = validateConfig({
      storage: { path: join(dir, 'secryn.db') },
      encryption: { master_key_file: join(dir, 'master.key') },
      webhooks: {
        allowed_cidrs: ['127.0.0.0/8'],
        concurrency: options.concurrency,
        per_endpoint_concurrency: options.perEndpoint,
        poll_interval_ms: 50,
      },
    });
    const instance = createInstance(config, silent);
    await instance.writes.run(() => {
      for (let i = 0; i < options.endpoints; i++) {
        insertWebhook(
          instance.db,
          instance.keyring,
          newWebhookId(),
          {
            url: `${receiver.url}/hook/${i}`,
            events: ['*'],
            projectId: null,
            enabled: true,
            description: '',
          },
          'bench',
          instance.clock.now(),
        );
      }
    });
    const perEndpoint = Math.ceil(options.events / options.endpoints);
    for (let done = 0; done < perEndpoint; done += 1000) {
      await instance.writes.run(() => {
        for (let i = done; i < Math.min(perEndpoint, done + 1000); i++) {
          emitEvent(instance.db, instance.clock, {
            type: 'resource.updated',
            projectId: null,
            object: { id: `res_bench${i}`, name: `secret-${i}`, version: i, tags: ['bench'] },
          });
        }
      });
    }
    const total = perEndpoint * options.endpoints;
    const succeeded = instance.sqlite.query<{ n: number }, []>(
      `SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'succeeded'`,
    );
    const worker = new DeliveryWorker(instance);
    const started = performance.now();
    worker.start();
    const deadline = started + 120_000;
    while (succeeded.get()!.n < total) {
      if (performance.now() > deadline) throw new Error(`${options.label}: not delivered in 120 s`);
      await Bun.sleep(50);
    }
    const seconds = (performance.now() - started) / 1000;
    await worker.stop();
    await instance.close();
    return { label: options.label, events: total, seconds, perSec: total / seconds };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The same POSTs, `concurrency` at a time, without the database, guard or signature. */
async function rawPosts(
  receiver: ServerProcess,
  concurrency: number,
  seconds: number,
): Promise<number> {
  const body = JSON.stringify({
    id: 'evt_01jq3v6x1nf4r8s2k9w7y5t3m0',
    type: 'resource.updated',
    created_at: '2030-01-01T00:00:00Z',
    data: { object: { id: 'res_bench1', name: 'secret-1', version: 1, tags: ['bench'] } },
  });
  let count = 0;
  const until = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const response = await fetch(`${receiver.url}/raw`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          keepalive: false,
        });
        await response.arrayBuffer();
        count++;
      }
    }),
  );
  return count / seconds;
}

// ------------------------------------------------------------------------------------------------
// 2a. The outbox's own cost inside a write job (no I/O, no HTTP): what emitEvent adds.

type JobCost = { label: string; usPerJob: number };

async function outboxCost(jobs: number): Promise<JobCost[]> {
  const dir = mkdtempSync(join(tmpdir(), 'secryn-bench-'));
  try {
    const config = validateConfig({
      storage: { path: join(dir, 'secryn.db') },
      encryption: { master_key_file: join(dir, 'master.key') },
    });
    const instance = createInstance(config, silent);
    const { db, sqlite, clock } = instance;
    const entry = {
      actor: { type: 'api_key' as const, id: 'key_bench', name: 'bench' },
      action: 'resource.update',
      target: { type: 'resource', id: 'res_bench' },
      outcome: 'success' as const,
      status: 200,
      ip: '127.0.0.1',
      userAgent: 'bench',
      requestId: 'req_bench',
    };
    const object = {
      id: 'res_bench',
      type: 'secret',
      name: 'db-password',
      version: 2,
      tags: ['a'],
    };
    const measure = (label: string, job: () => void): JobCost => {
      // Many jobs per transaction, as group commit runs them: the figure is CPU, not fsync.
      const run = () =>
        sqlite.transaction(() => {
          for (let i = 0; i < jobs; i++) job();
        })();
      run(); // warm up
      const started = performance.now();
      run();
      return { label, usPerJob: ((performance.now() - started) * 1000) / jobs };
    };
    const audit = () => void appendAuditEntry(db, clock, entry);
    const withEvent = () => {
      audit();
      emitEvent(db, clock, { type: 'resource.updated', projectId: 'prj_bench', object });
    };
    const results = [measure('audit entry only (the write without its event)', audit)];
    results.push(measure('+ event, no webhook subscribed', withEvent));
    const addHooks = (n: number) =>
      instance.writes.run(() => {
        for (let i = 0; i < n; i++) {
          insertWebhook(
            db,
            instance.keyring,
            newWebhookId(),
            {
              url: 'https://93.184.216.34/',
              events: ['*'],
              projectId: null,
              enabled: true,
              description: '',
            },
            'bench',
            clock.now(),
          );
        }
      });
    await addHooks(1);
    results.push(measure('+ event, 1 webhook subscribed (1 delivery row)', withEvent));
    await addHooks(4);
    results.push(measure('+ event, 5 webhooks subscribed (5 delivery rows)', withEvent));
    await instance.close();
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------------------------
// 2b. Write path over HTTP

type Variant = {
  label: string;
  server: ServerProcess;
  resource: string;
  token: string;
  dir: string;
};

async function startVariant(
  label: string,
  webhookTo: string | null,
  cpu: number | undefined,
): Promise<Variant> {
  const dir = mkdtempSync(join(tmpdir(), 'secryn-bench-'));
  const port = await freePort();
  const configPath = join(dir, 'secryn.toml');
  await Bun.write(
    configPath,
    [
      '[server]',
      `port = ${port}`,
      '[storage]',
      `path = "${join(dir, 'secryn.db')}"`,
      '[encryption]',
      `master_key_file = "${join(dir, 'master.key')}"`,
      '[rate_limit]',
      'requests_per_minute = 10000000',
      'burst = 10000000',
      '[webhooks]',
      'allowed_cidrs = ["127.0.0.0/8"]',
      '[log]',
      'level = "error"',
      '',
    ].join('\n'),
  );
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', NO_COLOR: '1' };
  const init = Bun.spawnSync([process.execPath, MAIN, 'init', '--config', configPath, '--json'], {
    env,
  });
  if (init.exitCode !== 0) throw new Error(`init: ${init.stderr.toString()}`);
  const token = (JSON.parse(init.stdout.toString()) as { admin_key: { token: string } }).admin_key
    .token;
  const server = await startServerProcess({
    cmd: [process.execPath, MAIN, 'serve', '--config', configPath],
    env,
    readyUrl: `http://127.0.0.1:${port}/health`,
    cpu,
  });
  const post = async (path: string, body: unknown) => {
    const response = await fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (response.status !== 201)
      throw new Error(`${path}: ${response.status} ${await response.text()}`);
    return ((await response.json()) as { id: string }).id;
  };
  const project = await post('/v1/projects', { name: 'bench' });
  const vault = await post('/v1/vaults', { project_id: project, name: 'bench' });
  const resource = await post('/v1/resources', {
    type: 'secret',
    vault_id: vault,
    name: 'bench',
    value: 'v0',
  });
  if (webhookTo) await post('/v1/webhooks', { url: `${webhookTo}/hook`, events: ['*'] });
  return { label, server, resource, token, dir };
}

const PUT_SCRIPT = `
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("PUT", nil, nil, '{"value":"bench-value-' .. counter .. '"}')
end
`;

function deliveryCounts(variant: Variant): { events: number; succeeded: number } {
  const db = new Database(join(variant.dir, 'secryn.db'), { readonly: true });
  try {
    const events = db.query<{ n: number }, []>('SELECT count(*) AS n FROM events').get()!.n;
    const succeeded = db
      .query<
        { n: number },
        []
      >(`SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'succeeded'`)
      .get()!.n;
    return { events, succeeded };
  } finally {
    db.close();
  }
}

// ------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  findWrk();
  const pinning = planCpuPinning();
  console.log(`# bench/webhooks.ts${quick ? ' (--quick)' : ''}\n`);
  console.log(`${machineSummary()}\n${pinning.description}\n`);

  // 1. Delivery throughput.
  const receiver = await startReceiver(pinning.load);
  const events = quick ? 2_000 : 10_000;
  const runs: Throughput[] = [];
  runs.push(
    await deliveryThroughput(receiver, {
      label: '1 endpoint, concurrency 8, per-endpoint 8',
      events,
      endpoints: 1,
      concurrency: 8,
      perEndpoint: 8,
    }),
  );
  runs.push(
    await deliveryThroughput(receiver, {
      label: '4 endpoints, concurrency 8, per-endpoint 2 (defaults)',
      events,
      endpoints: 4,
      concurrency: 8,
      perEndpoint: 2,
    }),
  );
  const baseline = await rawPosts(receiver, 8, quick ? 2 : 5);
  console.log('## Delivery throughput (outcome recorded, group commit, synchronous = FULL)\n');
  console.log(
    markdownTable(
      ['variant', 'events', 'seconds', 'delivered/s', 'vs bare POSTs'],
      [
        ...runs.map((r) => [
          r.label,
          formatCount(r.events),
          r.seconds.toFixed(2),
          formatCount(r.perSec),
          formatRatio(r.perSec, baseline),
        ]),
        [
          'baseline: bare fetch POSTs, 8 at a time, no db/guard/signature',
          '-',
          '-',
          formatCount(baseline),
          '1.00×',
        ],
      ],
    ),
  );

  // 2a. The outbox inside a write job.
  const costs = await outboxCost(quick ? 2_000 : 10_000);
  const baseCost = costs[0]!.usPerJob;
  console.log('\n## The outbox inside a write job (CPU per job, in one transaction: no fsync)\n');
  console.log(
    markdownTable(
      ['job', 'µs per job', 'added vs audit entry only'],
      costs.map((c) => [
        c.label,
        c.usPerJob.toFixed(1),
        `+${(c.usPerJob - baseCost).toFixed(1)} µs`,
      ]),
    ),
  );

  // 2b. Write path over HTTP.
  const sink = await startReceiver(pinning.load);
  const without = await startVariant('no webhook (event row only)', null, pinning.server);
  const withHook = await startVariant(
    '1 webhook "*", delivering meanwhile',
    sink.url,
    pinning.server,
  );
  const variants = [without, withHook];
  const results = new Map<Variant, WrkResult[]>(variants.map((v) => [v, []]));
  const rounds = quick ? 1 : 3;
  const seconds = quick ? 5 : 10;
  try {
    for (let round = 0; round < rounds; round++) {
      for (const variant of variants) {
        const result = await runWrk({
          url: `${variant.server.url}/v1/resources/${variant.resource}`,
          durationSec: seconds,
          connections: 50,
          threads: 1,
          // wrk.format without its own headers table sends these (-H) ones.
          headers: { authorization: `Bearer ${variant.token}`, 'content-type': 'application/json' },
          script: PUT_SCRIPT,
          cpu: pinning.load,
          timeoutSec: 10,
        });
        if (errorCount(result) > 0)
          console.warn(`${variant.label}: ${JSON.stringify(result.errors)}`);
        results.get(variant)!.push(result);
      }
    }
    // Let the worker catch up, then count what it delivered.
    await Bun.sleep(2_000);
    const rows = variants.map((variant) => {
      const list = results.get(variant)!;
      const pick = (f: (r: WrkResult) => number) => median(list.map(f));
      return {
        variant,
        rps: pick((r) => r.requestsPerSec),
        p50: pick((r) => r.p50Ms),
        p99: pick((r) => r.p99Ms),
      };
    });
    const base = rows[0]!;
    console.log(
      `\n## Write path: PUT /v1/resources/:id (new version + audit + event), wrk -c50, ${rounds} × ${seconds} s interleaved, medians\n`,
    );
    console.log(
      markdownTable(
        ['variant', 'writes/s', 'p50', 'p99', 'writes/s vs no webhook', 'added p50', 'added p99'],
        rows.map((r) => [
          r.variant.label,
          formatCount(r.rps),
          formatMs(r.p50),
          formatMs(r.p99),
          formatRatio(r.rps, base.rps),
          formatMs(r.p50 - base.p50),
          formatMs(r.p99 - base.p99),
        ]),
      ),
    );
    const counts = deliveryCounts(withHook);
    const received = Number(await (await fetch(`${sink.url}/count`)).text());
    console.log(
      `\nWith the webhook: ${formatCount(counts.events)} events written, ${formatCount(counts.succeeded)} ` +
        `delivered and recorded by the end (+2 s), receiver counted ${formatCount(received)}.`,
    );
  } finally {
    for (const variant of variants) {
      await variant.server.stop();
      rmSync(variant.dir, { recursive: true, force: true });
    }
    await sink.stop();
    await receiver.stop();
  }
}

await main();
