/**
 * The cost of a durable audit entry per authenticated secret read.
 *
 *   ./node_modules/.bin/bun bench/audit.ts            (~2 min; wrk -c50, server on CPU 0, wrk on CPU 1)
 *   ./node_modules/.bin/bun bench/audit.ts --quick    (~40 s; shorter runs, for a smoke test)
 *   --shipped        only the shipped group commit (FULL and NORMAL) against bare Bun
 *   --metrics        only the shipped group commit at FULL with metrics on and off (their cost)
 *   --rounds=N       interleaved rounds (default 3); each row also shows every round's share of
 *                    that round's bare Bun, which a drifting machine disturbs less than req/s
 *   --server-cpus=all   servers (the baseline too) may use every CPU; wrk stays on CPU 1. By
 *                    default each server is pinned to CPU 0 with all its threads (the WAL sync
 *                    thread, the garbage collector) — the strict one-core figure.
 *
 * Every Secryn variant is the whole app as `secryn serve` mounts it (access layer, rate limits,
 * permission table, resources API), and each request is `GET /v1/resources/:id` revealing a
 * secret's value as an admin key: bearer-token authentication, point reads, AES-256-GCM
 * decrypt, and the request's audit entry. Only the audit hook differs between variants. If the
 * resources API is not usable, a stand-in route (`GET /bench/secrets/:id`: the real
 * Authenticator, a prepared point read and a keyring decrypt) is measured instead, and the
 * output says so. The response leaves only once its entry is committed. Variants:
 *
 * - `group`: the production path, `auditRecorder` → the write engine's record lane: one
 *   transaction per event-loop turn; under FULL it commits the WAL frames and fsyncs the WAL on
 *   the thread pool before answering (src/db/write-engine.ts), under NORMAL it answers after
 *   COMMIT;
 * - `write-queue`: the same entries group-committed by the write engine's change lane at FULL,
 *   whose COMMIT fsyncs while the event loop waits (the design the record lane replaced, for
 *   comparison);
 * - `per-request`: the same entry in its own `BEGIN IMMEDIATE … COMMIT` per request, FULL and
 *   NORMAL;
 * - `no audit`: the read alone, the ceiling the audit entry is measured against;
 * - bare `Bun.serve`: the baseline of bench/lib/load.ts, measured in the same run.
 *
 * Servers run interleaved (every variant once per round); each figure is the median round.
 * At the end each database's chain is verified and its entries counted against wrk's requests.
 */
import { Database } from 'bun:sqlite';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Elysia } from 'elysia';
import { Authenticator } from '../src/access/authenticate.ts';
import { appendAuditEntry, requestAuditEntry } from '../src/ledger/audit-record.ts';
import { auditRecorder } from '../src/audit/recorder.ts';
import { verifyChain } from '../src/audit/verify.ts';
import { loadConfig } from '../src/config/load.ts';
import { buildFeatures } from '../src/features.ts';
import { NotFoundError, UnauthorizedError } from '../src/errors.ts';
import { requestMeta } from '../src/http/request-meta.ts';
import { openInstance, type Instance } from '../src/instance.ts';
import { createLogger } from '../src/log/logger.ts';
import { startServer } from '../src/server.ts';
import {
  errorCount,
  findWrk,
  formatCount,
  formatMs,
  formatPercent,
  freePort,
  machineSummary,
  markdownTable,
  median,
  planCpuPinning,
  startBaselineServer,
  startServerProcess,
  type ServerProcess,
  type WrkResult,
  runWrk,
  watchCpu,
} from './lib/load.ts';

const SECRETS = 1000;
const CONNECTIONS = 50;
const MAIN = join(import.meta.dir, '../src/main.ts');

type Mode = 'group' | 'write-queue' | 'per-request' | 'none';
type Variant = { label: string; mode: Mode; synchronous: 'full' | 'normal'; metrics?: false };

const VARIANTS: Variant[] = [
  { label: 'group commit, FULL', mode: 'group', synchronous: 'full' },
  { label: 'group commit, NORMAL', mode: 'group', synchronous: 'normal' },
  // The cost of /metrics counting every request (the after-response hook and its counters).
  { label: 'group commit, FULL, metrics off', mode: 'group', synchronous: 'full', metrics: false },
  {
    label: 'group commit in the change lane (fsync inside COMMIT), FULL',
    mode: 'write-queue',
    synchronous: 'full',
  },
  { label: 'one transaction per request, FULL', mode: 'per-request', synchronous: 'full' },
  { label: 'one transaction per request, NORMAL', mode: 'per-request', synchronous: 'normal' },
  { label: 'no audit entry (read only), FULL', mode: 'none', synchronous: 'full' },
];

// ---------------------------------------------------------------------------------------------
// Child: one Secryn server variant.

function secretRoute(instance: Instance) {
  const authenticator = new Authenticator(instance.sqlite, () => instance.clock.now());
  const read = instance.sqlite.prepare<{ value: Uint8Array }, [string]>(
    'SELECT value FROM bench_secrets WHERE id = ?',
  );
  return new Elysia({ name: 'bench-secrets' }).get('/bench/secrets/:id', ({ params, request }) => {
    const meta = requestMeta(request);
    const principal = authenticator.authenticate(request.headers.get('authorization'));
    if (!principal) {
      meta.actor = { type: 'anonymous', id: null, name: null };
      throw new UnauthorizedError();
    }
    meta.actor = { type: 'api_key', id: principal.keyId, name: principal.name };
    meta.action = 'resource.reveal';
    meta.target = { type: 'resource', id: params.id };
    const row = read.get(params.id);
    if (!row) throw new NotFoundError();
    const where = { table: 'bench_secrets', column: 'value', rowId: params.id };
    return { id: params.id, value: instance.keyring.decryptString(row.value, where) };
  });
}

/** The per-request variant: the same entry, its own IMMEDIATE transaction, synchronously. */
function perRequestRecorder(instance: Instance) {
  const { sqlite, db, clock } = instance;
  return async (request: Request, status: number) => {
    const entry = requestAuditEntry(request, status);
    if (!entry) return;
    sqlite.transaction(() => appendAuditEntry(db, clock, entry)).immediate();
    requestMeta(request).audited = true;
  };
}

/** The earlier design, for comparison: entries group-committed by the change lane at FULL. */
function writeQueueRecorder(instance: Instance) {
  return async (request: Request, status: number) => {
    const entry = requestAuditEntry(request, status);
    if (!entry) return;
    await instance.writes.run(() => appendAuditEntry(instance.db, instance.clock, entry));
    requestMeta(request).audited = true;
  };
}

async function serveVariant(configPath: string, mode: Mode): Promise<void> {
  const { config } = loadConfig({ path: configPath });
  const instance = openInstance(config, createLogger({ level: 'error', format: 'json' }));
  instance.sqlite.run('CREATE TABLE IF NOT EXISTS bench_secrets (id TEXT PRIMARY KEY, value BLOB)');
  const insert = instance.sqlite.prepare('INSERT OR IGNORE INTO bench_secrets VALUES (?, ?)');
  instance.sqlite.transaction(() => {
    for (let i = 0; i < SECRETS; i++) {
      const id = `res_${i}`;
      const value = `postgres://app:${'x'.repeat(32)}-${i}@db.internal:5432/app`;
      insert.run(
        id,
        instance.keyring.encrypt(value, { table: 'bench_secrets', column: 'value', rowId: id }),
      );
    }
  })();
  const recordOutcome =
    mode === 'group'
      ? auditRecorder(instance)
      : mode === 'write-queue'
        ? writeQueueRecorder(instance)
        : mode === 'per-request'
          ? perRequestRecorder(instance)
          : undefined;
  // The whole API as `serve` mounts it, plus the stand-in route (outside /v1, so the access
  // layer leaves it alone), with the variant's audit hook instead of the production one.
  const features = buildFeatures(instance);
  const running = startServer(instance, {
    features: [...features.features, secretRoute(instance)],
    recordOutcome,
  });
  await features.start();
  process.once(
    'SIGTERM',
    () =>
      void features
        .stop()
        .then(() => running.stop())
        .then(() => process.exit(0)),
  );
}

// ---------------------------------------------------------------------------------------------
// Parent: set up, load, report.

type Prepared = { variant: Variant; dir: string; config: string; token: string; port: number };

async function prepare(variant: Variant): Promise<Prepared> {
  const dir = mkdtempSync(join(tmpdir(), 'secryn-bench-audit-'));
  const port = await freePort();
  const config = join(dir, 'secryn.toml');
  writeFileSync(
    config,
    [
      '[server]',
      `port = ${port}`,
      '[storage]',
      `path = "${join(dir, 'secryn.db')}"`,
      `synchronous = "${variant.synchronous}"`,
      '[encryption]',
      `master_key_file = "${join(dir, 'master.key')}"`,
      '[log]',
      'level = "error"',
      'format = "json"',
      '[rate_limit]',
      'requests_per_minute = 10000000',
      'burst = 10000000',
      ...(variant.metrics === false ? ['[metrics]', 'enabled = false'] : []),
      '',
    ].join('\n'),
  );
  const init = Bun.spawnSync([process.execPath, MAIN, 'init', '--config', config, '--json'], {
    env: { ...process.env, NO_COLOR: '1' },
  });
  if (init.exitCode !== 0) throw new Error(`init failed: ${init.stderr.toString()}`);
  const token = (JSON.parse(init.stdout.toString()) as { admin_key: { token: string } }).admin_key
    .token;
  return { variant, dir, config, token, port };
}

/** wrk Lua: walk the secrets round-robin so reads are not all the same row. */
function rotateScript(paths: string[]): string {
  return `
local paths = { ${paths.map((path) => JSON.stringify(path)).join(', ')} }
local n = 0
request = function()
  n = n % #paths + 1
  return wrk.format("GET", paths[n])
end
`;
}

const REAL_SECRETS = 200;

/**
 * Creates a project, a vault and {@link REAL_SECRETS} secrets through the API and returns the
 * paths that reveal them (`GET /v1/resources/:id`, value included for the admin key), or
 * undefined when the resources API is not usable (then the stand-in route is measured).
 */
async function createSecrets(base: string, token: string): Promise<string[] | undefined> {
  const post = async (path: string, body: unknown) => {
    const response = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = (await response.json()) as { id?: string };
    if (response.status !== 201 || !json.id) throw new Error(`${path}: ${response.status}`);
    return json.id;
  };
  try {
    const project = await post('/v1/projects', { name: 'bench' });
    const vault = await post('/v1/vaults', { project_id: project, name: 'bench' });
    const paths: string[] = [];
    for (let i = 0; i < REAL_SECRETS; i++) {
      const id = await post('/v1/resources', {
        type: 'secret',
        vault_id: vault,
        name: `DATABASE_URL_${i}`,
        value: `postgres://app:${'x'.repeat(32)}-${i}@db.internal:5432/app`,
      });
      paths.push(`/v1/resources/${id}`);
    }
    const check = await fetch(`${base}${paths[0]}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const object = (await check.json()) as { value?: string };
    return check.status === 200 && typeof object.value === 'string' ? paths : undefined;
  } catch (error) {
    console.error(`resources API not usable (${String(error)}): measuring the stand-in route`);
    return undefined;
  }
}

/** `--rounds=N` (1–20, default 3): more rounds give steadier medians on a busy machine. */
function roundsOption(argv: string[]): number {
  const option = argv.find((arg) => arg.startsWith('--rounds='));
  if (option === undefined) return 3;
  const rounds = Number(option.slice('--rounds='.length));
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) {
    throw new Error('--rounds must be a whole number from 1 to 20');
  }
  return rounds;
}

const STAND_IN_PATHS = Array.from({ length: SECRETS }, (_, i) => `/bench/secrets/res_${i}`);

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const durationSec = quick ? 3 : 6;
  const rounds = roundsOption(process.argv);
  findWrk();
  const planned = planCpuPinning();
  const serverOnAllCpus = process.argv.includes('--server-cpus=all');
  const pinning = serverOnAllCpus
    ? {
        server: undefined,
        load: planned.load,
        description: `servers on every CPU, wrk pinned to CPU ${planned.load ?? '(not pinned)'}`,
      }
    : planned;
  const variants = process.argv.includes('--metrics')
    ? VARIANTS.filter((variant) => variant.mode === 'group' && variant.synchronous === 'full')
    : process.argv.includes('--shipped')
      ? VARIANTS.filter((variant) => variant.mode === 'group')
      : VARIANTS;
  console.log(`# Audit entry per secret read (bench/audit.ts)\n`);
  console.log(`${machineSummary()}`);
  console.log(
    `wrk -t1 -c${CONNECTIONS} -d${durationSec}s, ${rounds} interleaved rounds (median shown); ${pinning.description}\n`,
  );

  const prepared = await Promise.all(variants.map(prepare));
  const servers: {
    label: string;
    server: ServerProcess;
    prepared?: Prepared;
    paths?: string[];
  }[] = [];
  try {
    servers.push({
      label: 'bare Bun.serve (baseline)',
      server: await startBaselineServer({ cpu: pinning.server }),
    });
    for (const p of prepared) {
      const server = await startServerProcess({
        cmd: [process.execPath, import.meta.path, '--serve', p.config, p.variant.mode],
        readyUrl: `http://127.0.0.1:${p.port}/health`,
        cpu: pinning.server,
        stderr: 'ignore',
      });
      servers.push({ label: p.variant.label, server, prepared: p });
    }
    // Real reveals through the whole API where it works on every server, else the stand-in.
    const real: (string[] | undefined)[] = [];
    for (const entry of servers.slice(1)) {
      real.push(await createSecrets(entry.server.url, entry.prepared!.token));
    }
    const useReal = real.every((paths) => paths !== undefined);
    servers.slice(1).forEach((entry, i) => (entry.paths = useReal ? real[i] : STAND_IN_PATHS));
    console.log(
      useReal
        ? `Each request: GET /v1/resources/:id with the value, as an admin key (${REAL_SECRETS} secrets, round-robin), through the full app as served.\n`
        : `Each request: the stand-in reveal route (${SECRETS} secrets, round-robin).\n`,
    );

    type Measured = WrkResult & { cpuUsPerRequest: number; waiting: number };
    const results = new Map<string, Measured[]>();
    const load = (entry: (typeof servers)[number], seconds: number) =>
      runWrk({
        url: entry.paths ? `${entry.server.url}${entry.paths[0]}` : `${entry.server.url}/`,
        durationSec: seconds,
        connections: CONNECTIONS,
        threads: 1,
        cpu: pinning.load,
        headers: entry.prepared ? { authorization: `Bearer ${entry.prepared.token}` } : {},
        script: entry.paths ? rotateScript(entry.paths) : undefined,
      });
    for (const entry of servers) await load(entry, 1); // warm-up (JIT, page cache)
    for (let round = 0; round < rounds; round++) {
      for (const entry of servers) {
        const cpu = watchCpu(entry.server.pid);
        const result = await load(entry, durationSec);
        const usage = cpu.stop();
        if (errorCount(result) > 0)
          throw new Error(`${entry.label}: wrk reported errors ${JSON.stringify(result.errors)}`);
        const measured: Measured = {
          ...result,
          // Server CPU per request: steadier than req/s when other work shares the machine.
          cpuUsPerRequest: usage ? (usage.busy * 1e6) / result.requestsPerSec : Number.NaN,
          waiting: usage?.waiting ?? Number.NaN,
        };
        results.set(entry.label, [...(results.get(entry.label) ?? []), measured]);
      }
    }

    const medianOf = (label: string) => {
      const runs = results.get(label)!;
      const rps = median(runs.map((r) => r.requestsPerSec));
      return runs.reduce((best, r) =>
        Math.abs(r.requestsPerSec - rps) < Math.abs(best.requestsPerSec - rps) ? r : best,
      );
    };
    const baseline = medianOf('bare Bun.serve (baseline)');
    const baselineRounds = results.get('bare Bun.serve (baseline)')!;
    const rows = servers.map(({ label }) => {
      const r = medianOf(label);
      // Each round's share against the baseline of the same round: this shared machine drifts
      // between rounds more than the servers differ, and a paired ratio cancels most of it.
      const perRound = results
        .get(label)!
        .map((run, i) => formatPercent(run.requestsPerSec / baselineRounds[i]!.requestsPerSec));
      return [
        label,
        formatCount(r.requestsPerSec),
        formatMs(r.p50Ms),
        formatMs(r.p99Ms),
        formatPercent(r.requestsPerSec / baseline.requestsPerSec),
        perRound.join(' · '),
        `${r.cpuUsPerRequest.toFixed(1)} µs`,
        formatPercent(r.waiting),
      ];
    });
    console.log(
      markdownTable(
        [
          'server',
          'req/s',
          'p50',
          'p99',
          'of bare Bun',
          'each round',
          'server CPU/req',
          'run-queue wait',
        ],
        rows,
      ),
    );
    console.log(
      '\n(run-queue wait: share of the time the server was ready to run but another process held its CPU; ' +
        'well above 0 % means a busy machine and understated req/s.)',
    );

    const group = medianOf('group commit, FULL');
    const share = group.requestsPerSec / baseline.requestsPerSec;
    if (results.has('one transaction per request, FULL')) {
      const perRequest = medianOf('one transaction per request, FULL');
      console.log(
        `\nGroup commit vs one transaction per request (FULL): ${(group.requestsPerSec / perRequest.requestsPerSec).toFixed(1)}× the throughput.`,
      );
    }
    console.log(
      `Target (group commit, FULL): ≥ 25 % of bare Bun and p99 < 5 ms at ${CONNECTIONS} connections → ` +
        `${formatPercent(share)}, p99 ${formatMs(group.p99Ms)}: ${share >= 0.25 && group.p99Ms < 5 ? 'met' : 'NOT met'}.`,
    );

    for (const entry of servers) await entry.server.stop();
    console.log('\nChain check after the runs:');
    for (const p of prepared) {
      const sqlite = new Database(join(p.dir, 'secryn.db'), { readonly: true });
      const served = (results.get(p.variant.label) ?? []).reduce((sum, r) => sum + r.requests, 0);
      const entries = sqlite
        .query<
          { n: number },
          []
        >("SELECT count(*) AS n FROM audit_log WHERE action = 'resource.reveal'")
        .get()!.n;
      const verified = p.variant.mode === 'none' ? undefined : verifyChain(sqlite);
      sqlite.close();
      console.log(
        `- ${p.variant.label}: ${formatCount(entries)} reveal entries for ≥ ${formatCount(served)} measured requests` +
          (verified
            ? `; chain ${verified.intact ? 'intact' : 'BROKEN'} (${formatCount(verified.verified)} entries)`
            : ''),
      );
    }
  } finally {
    for (const entry of servers) await entry.server.stop();
    for (const p of prepared) rmSync(p.dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--serve') {
  await serveVariant(process.argv[3]!, process.argv[4] as Mode);
} else {
  await main();
}
