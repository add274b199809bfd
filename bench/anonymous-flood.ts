/**
 * Database growth under a flood of requests without a key (`secryn serve` over loopback, wrk):
 * bytes per 10,000 rejected anonymous requests from one address and from many addresses,
 * against the baseline measured in the same run: authenticated requests, which still cost one
 * audit entry each (what every anonymous rejection cost before they were summarised).
 *
 *   ./node_modules/.bin/bun bench/anonymous-flood.ts [--duration 5] [--connections 50]
 *
 * Every request carries a 512-character User-Agent and a 128-character X-Request-Id (the worst
 * case the audit log copies). Growth is read from the database file after a TRUNCATE checkpoint
 * (page_count × page_size) and after a clean stop, which writes the pending summaries.
 * Bounded: 3 × duration seconds plus start-up and stop; loopback only.
 */
import { Database } from 'bun:sqlite';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  benchEnv,
  benchOptions,
  formatCount,
  freePort,
  machineSummary,
  markdownTable,
  planCpuPinning,
  requireWrk,
  runWrk,
  secrynCommand,
  startServerProcess,
} from './lib/load.ts';

const options = benchOptions('anonymous-flood.ts', { duration: 5, connections: 50 });
requireWrk();
const cpu = planCpuPinning();
const work = mkdtempSync(join(tmpdir(), 'secryn-flood-bench-'));
const env = benchEnv(work);
const secryn = secrynCommand();
const USER_AGENT = `flood-bench/1.0 ${'u'.repeat(496)}`;
const REQUEST_ID = `flood-${'r'.repeat(122)}`;

/** The database's size with its WAL folded in (another connection may hold the lock briefly). */
function databaseBytes(path: string): { bytes: number; rows: number } {
  const sqlite = new Database(path);
  try {
    sqlite.run('PRAGMA busy_timeout = 5000');
    sqlite.run('PRAGMA wal_checkpoint(TRUNCATE)');
    const { bytes } = sqlite
      .query<
        { bytes: number },
        []
      >('SELECT page_count * page_size AS bytes FROM pragma_page_count(), pragma_page_size()')
      .get()!;
    const { rows } = sqlite
      .query<{ rows: number }, []>('SELECT count(*) AS rows FROM audit_log')
      .get()!;
    return { bytes, rows };
  } finally {
    sqlite.close();
  }
}

try {
  const port = await freePort();
  const dir = join(work, 'data');
  mkdirSync(dir);
  const dbPath = join(dir, 'secryn.db');
  const config = join(work, 'secryn.toml');
  writeFileSync(
    config,
    [
      '[server]',
      'host = "127.0.0.1"',
      `port = ${port}`,
      // The many-address phase names its client in X-Forwarded-For.
      'trust_proxy = true',
      '[storage]',
      `path = "${dbPath}"`,
      '[encryption]',
      `master_key_file = "${join(dir, 'master.key')}"`,
      '[log]',
      'level = "warn"',
      '',
    ].join('\n'),
  );
  const init = Bun.spawnSync([...secryn, 'init', '--config', config, '--json'], { cwd: work, env });
  if (init.exitCode !== 0) throw new Error(`secryn init failed: ${init.stderr.toString()}`);
  const { admin_key } = JSON.parse(init.stdout.toString()) as { admin_key: { token: string } };
  const server = await startServerProcess({
    cmd: [...secryn, 'serve', '--config', config],
    readyUrl: `http://127.0.0.1:${port}/v1/health`,
    cwd: work,
    env,
    cpu: cpu.server,
  });
  const common = { durationSec: options.duration, connections: options.connections, threads: 1 };
  const headers = { 'user-agent': USER_AGENT, 'x-request-id': REQUEST_ID };
  const phases: { name: string; requests: number; rows: number; growth: number }[] = [];
  const measure = async (name: string, run: () => ReturnType<typeof runWrk>) => {
    const before = databaseBytes(dbPath);
    const result = await run();
    const after = databaseBytes(dbPath);
    phases.push({
      name,
      requests: result.requests,
      rows: after.rows - before.rows,
      growth: after.bytes - before.bytes,
    });
  };
  const url = `${server.url}/v1/projects`;
  try {
    await measure('authenticated GET /v1/projects (baseline: one entry per request)', () =>
      runWrk({
        ...common,
        url,
        cpu: cpu.load,
        headers: { ...headers, authorization: `Bearer ${admin_key.token}` },
      }),
    );
    await measure('no key, one address (401, then 429)', () =>
      runWrk({
        ...common,
        url,
        cpu: cpu.load,
        headers: { ...headers, 'x-forwarded-for': '203.0.113.7' },
      }),
    );
    await measure('no key, a new address per request', () =>
      runWrk({
        ...common,
        url,
        cpu: cpu.load,
        script: `
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", nil, {
    ["User-Agent"] = "${USER_AGENT}",
    ["X-Request-Id"] = "${REQUEST_ID}",
    ["X-Forwarded-For"] = string.format("10.%d.%d.%d", math.floor(counter / 65536) % 256,
      math.floor(counter / 256) % 256, counter % 256),
  })
end`,
      }),
    );
  } finally {
    const beforeStop = databaseBytes(dbPath);
    await server.stop();
    const afterStop = databaseBytes(dbPath);
    // The summaries of the two anonymous phases are written at the end of their window or on
    // stop: count what the stop wrote as theirs (the window is 60 s, longer than the phases).
    const pending = afterStop.bytes - beforeStop.bytes;
    const pendingRows = afterStop.rows - beforeStop.rows;
    phases.push({
      name: 'summaries written on stop',
      requests: 0,
      rows: pendingRows,
      growth: pending,
    });
  }
  const anonymous = phases.slice(1).reduce(
    (sum, phase) => ({
      requests: sum.requests + phase.requests,
      growth: sum.growth + phase.growth,
    }),
    { requests: 0, growth: 0 },
  );
  console.log('# Database growth under an unauthenticated flood\n');
  console.log(machineSummary());
  console.log(`${cpu.description}; wrk -c${options.connections} -d${options.duration}s each\n`);
  console.log(
    markdownTable(
      ['phase', 'requests', 'audit rows', 'growth (bytes)', 'bytes per 10,000 requests'],
      phases.map((phase) => [
        phase.name,
        formatCount(phase.requests),
        formatCount(phase.rows),
        formatCount(phase.growth),
        phase.requests > 0 ? formatCount((phase.growth / phase.requests) * 10_000) : '',
      ]),
    ),
  );
  console.log(
    `\nBoth anonymous phases together, summaries included: ${formatCount(anonymous.growth)} bytes ` +
      `for ${formatCount(anonymous.requests)} requests ` +
      `(${formatCount((anonymous.growth / Math.max(1, anonymous.requests)) * 10_000)} per 10,000).`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
