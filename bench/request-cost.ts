/**
 * What one request of the resources API costs in the server's own thread, without the network:
 * the app built as `secryn serve` builds it, called in process with `app.handle` (50 requests in
 * flight, as wrk -c50 keeps them), on a small and a large instance seeded alike, alternated
 * round by round. It answers two questions of issue 16 that the socket bench blurs: does a
 * read's cost grow with the data (the large instance should stay within 10 % of the small one),
 * and how many microseconds of CPU each scenario takes. Every request is authenticated,
 * rate-limited, audited and durable (group commit at synchronous=FULL) as in production, and
 * the audit chain of each instance is verified after the run.
 *
 * Run: `bun bench/request-cost.ts` (no wrk needed; `SECRYN_BENCH_ONLY=list` runs only the
 * scenarios whose label contains that text). Options (defaults): --small 1000
 * --large 100000 --requests 4000 --rounds 3 --inflight 50. Bounded: two seeds (~5 s) + rounds ×
 * scenarios × requests.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.ts';
import { buildFeatures } from '../src/features.ts';
import { openInstance, type Instance } from '../src/instance.ts';
import { createLogger } from '../src/log/logger.ts';
import { buildApp } from '../src/server.ts';
import { verifyChain } from '../src/audit/verify.ts';
import { benchOptions, machineSummary, markdownTable, median } from './lib/load.ts';
import { seedResources, type Seeded } from './lib/seed-resources.ts';

const options = benchOptions('bench/request-cost.ts', {
  small: 1000,
  large: 100_000,
  requests: 4000,
  rounds: 3,
  inflight: 50,
});

type Server = {
  label: string;
  instance: Instance;
  handle: (request: Request) => Promise<Response>;
  stop: () => Promise<void>;
  seeded: Seeded;
};

async function open(secrets: number, work: string): Promise<Server> {
  const seeded = await seedResources({ work, secrets, vaults: 100, smallVault: 50 });
  const logger = createLogger({ level: 'warn', format: 'json', color: false });
  const { config } = loadConfig({ path: seeded.config, env: {}, cwd: work });
  const instance = openInstance(config, logger);
  const features = buildFeatures(instance);
  const app = buildApp(instance, {
    features: features.features,
    recordOutcome: features.recordOutcome,
  });
  await features.start();
  return {
    label: secrets.toLocaleString('en-US'),
    instance,
    handle: (request) => app.handle(request),
    seeded,
    stop: async () => {
      await features.stop();
      await instance.close();
    },
  };
}

type Scenario = {
  label: string;
  request: (server: Server, n: number) => Request;
};

const get = (server: Server, path: string, token: string) =>
  new Request(`http://localhost${path}`, { headers: { authorization: `Bearer ${token}` } });

const scenarios: Scenario[] = [
  // The floor under every scenario: the pipeline without a key, and with a key and an audit entry but no data read.
  { label: 'GET /v1/health (no key)', request: (s) => get(s, '/v1/health', '') },
  {
    label: 'GET /v1/me (key, audited, no data)',
    request: (s) => get(s, '/v1/me', s.seeded.accessToken),
  },
  {
    label: 'secret by id (with value)',
    request: (s, n) =>
      get(
        s,
        `/v1/resources/${s.seeded.sample[n % s.seeded.sample.length]!.id}`,
        s.seeded.accessToken,
      ),
  },
  {
    label: 'secret by vault + name',
    request: (s, n) => {
      const one = s.seeded.sample[n % s.seeded.sample.length]!;
      return get(s, `/v1/vaults/${one.vaultId}/secrets/${one.name}`, s.seeded.accessToken);
    },
  },
  {
    label: 'GET /v1/vaults/:id, 50 secrets',
    request: (s) => get(s, `/v1/vaults/${s.seeded.smallVault}`, s.seeded.accessToken),
  },
  {
    label: 'list page 1 (limit 50)',
    request: (s) => get(s, '/v1/resources?page=1', s.seeded.adminToken),
  },
  {
    label: 'list page 10 (limit 50)',
    request: (s) => get(s, '/v1/resources?page=10', s.seeded.adminToken),
  },
  {
    label: 'secret update (PUT value)',
    request: (s, n) =>
      new Request(
        `http://localhost/v1/resources/${s.seeded.sample[n % s.seeded.sample.length]!.id}`,
        {
          method: 'PUT',
          headers: {
            authorization: `Bearer ${s.seeded.adminToken}`,
            'content-type': 'application/json',
          },
          body: JSON.stringify({ value: `rotated-${n}-${Math.random()}` }),
        },
      ),
  },
  {
    label: 'secret create (POST)',
    request: (s, n) => {
      // Into a vault other than the 50-secret one, which the vault read scenario measures.
      const vaultId = s.seeded.sample.find((one) => one.vaultId !== s.seeded.smallVault)!.vaultId;
      return new Request('http://localhost/v1/resources', {
        method: 'POST',
        headers: {
          authorization: `Bearer ${s.seeded.adminToken}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({
          type: 'secret',
          vault_id: vaultId,
          name: `created-${n}-${Math.random().toString(36).slice(2)}`,
          value: `value-${n}-${Math.random()}`,
        }),
      });
    },
  },
];

// SECRYN_BENCH_ONLY=text keeps the scenarios whose label contains it (e.g. to profile one).
const only = process.env.SECRYN_BENCH_ONLY;
if (only) scenarios.splice(0, scenarios.length, ...scenarios.filter((s) => s.label.includes(only)));
if (scenarios.length === 0) throw new Error(`no scenario label contains "${only}"`);

/**
 * µs of wall time and of CPU (user + system, all threads of this process) per request, with
 * `inflight` requests kept in flight. Wall time includes waiting for group commits; CPU does not.
 */
async function measure(
  server: Server,
  scenario: Scenario,
  count: number,
): Promise<{ wall: number; cpu: number }> {
  let next = 0;
  let failed = 0;
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  const lane = async () => {
    while (next < count) {
      const response = await server.handle(scenario.request(server, next++));
      if (!response.ok) failed++;
      await response.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: options.inflight }, lane));
  const wall = ((performance.now() - started) * 1000) / count;
  const cpuUsed = process.cpuUsage(cpuBefore);
  if (failed > 0) throw new Error(`${scenario.label}: ${failed} of ${count} failed`);
  return { wall, cpu: (cpuUsed.user + cpuUsed.system) / count };
}

const work = mkdtempSync(join(tmpdir(), 'secryn-bench-cost-'));
const servers: Server[] = [];
try {
  console.log(`# Request cost in process — ${new Date().toISOString().slice(0, 10)}`);
  console.log(`machine: ${machineSummary()}`);
  for (const secrets of [options.small, options.large]) {
    const dir = join(work, String(secrets));
    mkdirSync(dir);
    servers.push(await open(secrets, dir));
  }
  const results = new Map<string, { wall: number; cpu: number }[]>();
  for (let round = 0; round < options.rounds; round++) {
    for (const scenario of scenarios) {
      for (const server of servers) {
        // A short warm-up per pairing, so that neither side pays for the other's JIT or caches.
        await measure(server, scenario, Math.min(500, options.requests));
        const key = `${scenario.label}\u0000${server.label}`;
        results.set(key, [
          ...(results.get(key) ?? []),
          await measure(server, scenario, options.requests),
        ]);
      }
    }
  }
  const rows = scenarios.map((scenario) => {
    const [small, large] = servers.map((s) => {
      const runs = results.get(`${scenario.label}\u0000${s.label}`)!;
      return { wall: median(runs.map((r) => r.wall)), cpu: median(runs.map((r) => r.cpu)) };
    });
    return [
      scenario.label,
      `${small!.cpu.toFixed(0)} µs`,
      `${large!.cpu.toFixed(0)} µs`,
      `${(large!.cpu / small!.cpu).toFixed(2)}×`,
      `${small!.wall.toFixed(0)} µs`,
      `${large!.wall.toFixed(0)} µs`,
    ];
  });
  console.log(
    `${options.inflight} requests in flight, ${options.requests} requests per run, median of ` +
      `${options.rounds} rounds (small and large alternated)\n`,
  );
  console.log(
    markdownTable(
      [
        'scenario',
        `CPU, ${servers[0]!.label} secrets`,
        `CPU, ${servers[1]!.label} secrets`,
        'CPU large ÷ small',
        `wall, ${servers[0]!.label}`,
        `wall, ${servers[1]!.label}`,
      ],
      rows,
    ),
  );
  for (const server of servers) {
    const verdict = verifyChain(server.instance.sqlite);
    console.log(
      `audit chain of the ${server.label}-secret instance: ` +
        (verdict.intact ? `intact, ${verdict.verified} entries` : JSON.stringify(verdict.problem)),
    );
    if (!verdict.intact) process.exitCode = 1;
  }
} finally {
  for (const server of servers) await server.stop();
  rmSync(work, { recursive: true, force: true });
}
