/**
 * GET /v1/health under load: `secryn serve` against a bare `Bun.serve` JSON baseline in the same
 * run, server pinned to one CPU and wrk to the other. Secryn runs as two instances: with
 * `log.level = "warn"` (no access log: the figure for the request path itself) and `"info"`
 * (one JSON access-log line per request, written to a file) to show what the access log costs.
 * All three servers stay up and the measured runs alternate between them for several rounds;
 * the table shows medians over the clean rounds (no server lost more than 5 % of its time to
 * other work on its core; every round when fewer than two are clean, with a warning). With SECRYN_BINARY set it loads the compiled binary and also reports
 * its size and the time from exec to the first healthy response, against a bare Bun.serve
 * compiled with the same flags.
 *
 * Run: `bun bench/health.ts` (from source) or
 * `npm run build && SECRYN_BINARY=dist/secryn bun bench/health.ts`.
 * Options (defaults): --duration 5 --warmup 2 --rounds 6 --connections 50 --threads 1 --runs 5.
 * Bounded: 3 × warm-up + 3 × rounds × duration seconds (96 s by default) plus ~2 s of start-ups.
 */
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  benchOptions,
  backgroundLoad,
  BASELINE_SERVER_SOURCE,
  errorCount,
  formatCount,
  formatMiB,
  formatMs,
  formatPercent,
  formatRatio,
  freePort,
  machineSummary,
  markdownTable,
  mean,
  measureStartup,
  median,
  planCpuPinning,
  readRss,
  runWrk,
  startBaselineServer,
  startServerProcess,
  watchCpu,
  watchPeakRss,
  type CpuUsage,
  type RssWatch,
  type ServerProcess,
  type WrkResult,
  requireWrk,
  benchEnv,
  secrynCommand,
} from './lib/load.ts';

/** Largest share of a run the server may wait for its core for the round to count as clean. */
const CLEAN_WAIT = 0.05;

const {
  duration: durationSec,
  warmup: warmupSec,
  connections,
  threads,
  rounds,
  runs: startupRuns,
} = benchOptions(
  'bench/health.ts',
  { duration: 5, warmup: 2, connections: 50, threads: 1, rounds: 6, runs: 5 },
  ['warmup'],
);

requireWrk();

const binary = process.env.SECRYN_BINARY ? resolve(process.env.SECRYN_BINARY) : undefined;
const secryn = secrynCommand();
const cpu = planCpuPinning();
const work = mkdtempSync(join(tmpdir(), 'secryn-bench-'));
const env = benchEnv(work);

type Target = {
  label: string;
  /** Column heading in the per-round table. */
  short: string;
  server: ServerProcess;
  path: string;
  idleRssBytes: number;
  rss: RssWatch;
  runs: { wrk: WrkResult; cpu?: CpuUsage }[];
  /** The file the server's stderr (its log) goes to. */
  logFile?: string;
};

const targets: Target[] = [];
const logFds: number[] = [];

function track(
  label: string,
  short: string,
  server: ServerProcess,
  path: string,
  logFile?: string,
): Target {
  const target: Target = {
    label,
    short,
    server,
    path,
    idleRssBytes: readRss(server.pid)?.rssBytes ?? Number.NaN,
    rss: watchPeakRss(server.pid),
    runs: [],
    logFile,
  };
  targets.push(target);
  return target;
}

function wrkAgainst(target: Target, seconds: number): Promise<WrkResult> {
  return runWrk({
    url: target.server.url + target.path,
    durationSec: seconds,
    connections,
    threads,
    cpu: cpu.load,
  });
}

/** A fresh instance in its own directory, initialised; returns its config path and port. */
async function createInstanceDir(name: string, logLevel: string) {
  const dir = join(work, name);
  mkdirSync(dir);
  const port = await freePort();
  const config = join(dir, 'secryn.toml');
  writeFileSync(
    config,
    [
      '[server]',
      'host = "127.0.0.1"',
      `port = ${port}`,
      '[storage]',
      'path = "data/secryn.db"',
      '[encryption]',
      'master_key_file = "data/master.key"',
      // Health is unauthenticated; should a limiter ever cover it, 50 connections from one
      // address must measure the handler, not a wall of 429s.
      '[rate_limit]',
      'requests_per_minute = 10000000',
      'burst = 10000000',
      '[log]',
      `level = "${logLevel}"`,
      'format = "json"',
      '',
    ].join('\n'),
  );
  const init = Bun.spawnSync([...secryn, 'init', '--config', config], { cwd: dir, env });
  if (init.exitCode !== 0) {
    throw new Error(`secryn init failed (${init.exitCode}): ${init.stderr.toString()}`);
  }
  return { dir, config, port };
}

async function startSecryn(label: string, short: string, logLevel: string) {
  const instance = await createInstanceDir(label.replace(/\W+/g, '-'), logLevel);
  const logFile = join(instance.dir, 'server.log');
  const logFd = openSync(logFile, 'w');
  logFds.push(logFd);
  const server = await startServerProcess({
    cmd: [...secryn, 'serve', '--config', instance.config],
    readyUrl: `http://127.0.0.1:${instance.port}/v1/health`,
    cwd: instance.dir,
    env,
    cpu: cpu.server,
    stderr: logFd,
  });
  track(label, short, server, '/v1/health', logFile);
  return instance;
}

async function countLines(path: string): Promise<number> {
  let lines = 0;
  for await (const chunk of Bun.file(path).stream()) {
    for (let i = 0; i < chunk.length; i++) if (chunk[i] === 10) lines++;
  }
  return lines;
}

/** Compiles the bare baseline server with the release flags, for a like-for-like start-up figure. */
async function compileBaseline(): Promise<string> {
  const entry = join(work, 'baseline.ts');
  const outfile = join(work, 'baseline-bin');
  writeFileSync(entry, BASELINE_SERVER_SOURCE);
  const result = await Bun.build({
    entrypoints: [entry],
    compile: { outfile, autoloadDotenv: false, autoloadBunfig: false },
    minify: true,
    bytecode: true,
    format: 'esm',
    throw: false,
  });
  if (!result.success) throw new Error(`baseline compile failed: ${result.logs.join('\n')}`);
  return outfile;
}

try {
  const started = new Date();
  console.log(`# GET /v1/health — ${started.toISOString().slice(0, 10)}`);
  console.log(`machine: ${machineSummary()}`);
  console.log(`pinning: ${cpu.description}`);
  console.log(
    `load: wrk -t${threads} -c${connections} on 127.0.0.1, ${warmupSec} s warm-up each, then ` +
      `${rounds} rounds × ${durationSec} s per server, interleaved`,
  );
  console.log(`secryn: ${binary ? `compiled binary ${binary}` : 'from source (bun src/main.ts)'}`);

  const idle = await backgroundLoad();
  console.log(
    `background load before start (1 s, nothing of ours running): ${
      Object.entries(idle)
        .map(([name, share]) => `${name} ${formatPercent(share)}`)
        .join(', ') || 'unknown'
    }`,
  );

  track('bare Bun.serve JSON', 'bare', await startBaselineServer({ cpu: cpu.server }), '/');
  const warnInstance = await startSecryn('secryn, log.level=warn', 'warn', 'warn');
  await startSecryn('secryn, log.level=info', 'info', 'info');

  // All servers stay up (idle ones cost nothing) and the measured runs alternate between them,
  // so that a noisy neighbour slows every server alike instead of whichever ran at the time.
  for (const target of targets) if (warmupSec > 0) await wrkAgainst(target, warmupSec);
  for (let round = 0; round < rounds; round++) {
    for (const target of targets) {
      const usage = watchCpu(target.server.pid);
      const wrk = await wrkAgainst(target, durationSec);
      target.runs.push({ wrk, cpu: usage.stop() });
    }
  }

  const base = targets[0]!;
  // Ratios are taken run by run against the baseline run of the same round, then the median.
  const roundRatio = (target: Target, round: number) =>
    target.runs[round]!.wrk.requestsPerSec / base.runs[round]!.wrk.requestsPerSec;
  // A round is clean when no server in it waited more than CLEAN_WAIT for its core. On a shared
  // machine the headline medians use the clean rounds only (when there are at least two).
  const allRounds = Array.from({ length: rounds }, (_, round) => round);
  const cleanRounds = allRounds.filter((round) =>
    targets.every((t) => (t.runs[round]!.cpu?.waiting ?? 0) <= CLEAN_WAIT),
  );
  const used = cleanRounds.length >= 2 ? cleanRounds : allRounds;
  const rows: string[][] = [];
  for (const target of targets) {
    const peakRssBytes = target.rss.stop();
    const code = await target.server.stop();
    if (target.logFile && code !== 0) {
      throw new Error(`${target.label}: exited ${code} on SIGTERM; log: ${target.logFile}`);
    }
    const pick = (f: (r: Target['runs'][number]) => number | undefined) =>
      median(used.map((round) => f(target.runs[round]!)).filter((v) => v !== undefined));
    const ratio = median(used.map((round) => roundRatio(target, round)));
    rows.push([
      target.label,
      formatCount(pick((r) => r.wrk.requestsPerSec)),
      `${ratio.toFixed(2)}×`,
      formatMs(pick((r) => r.wrk.p50Ms)),
      formatMs(pick((r) => r.wrk.p99Ms)),
      formatPercent(pick((r) => r.cpu?.busy)),
      formatPercent(pick((r) => r.cpu?.waiting)),
      formatPercent(pick((r) => r.wrk.generatorBusy)),
      formatMiB(target.idleRssBytes),
      formatMiB(peakRssBytes),
      formatCount(target.runs.reduce((sum, r) => sum + errorCount(r.wrk), 0)),
      target.logFile ? formatCount(await countLines(target.logFile)) : '–',
    ]);
  }

  console.log();
  console.log(
    markdownTable(
      [
        'server',
        'req/s',
        'vs bare',
        'p50',
        'p99',
        'server CPU',
        'CPU wait',
        'wrk CPU',
        'idle RSS',
        'peak RSS',
        'errors',
        'log lines',
      ],
      rows,
    ),
  );
  console.log(
    `\nMedians over the rounds used (see below) of ${durationSec} s runs; "vs bare" is the ` +
      'median of each run divided by the bare run of the same round. server CPU / wrk CPU: CPU time ÷ wall ' +
      'time (100 % = a whole core; loopback softirq work is not counted in it). CPU wait: share ' +
      'of wall time the server main thread was runnable but not running; well above 0 % means ' +
      'other work shared the pinned core and the figures are low. log lines: what the server ' +
      'wrote to stderr (a file) over warm-up and runs: at "info", one JSON access-log line per ' +
      'request.',
  );
  if (used === cleanRounds) {
    console.log(
      used.length === rounds
        ? `\nRounds used: all ${rounds} (in every run the server waited ≤ ` +
            `${formatPercent(CLEAN_WAIT)} of the time for its core).`
        : `\nRounds used: ${used.map((r) => r + 1).join(', ')} of ${rounds} (in the others a ` +
            `server waited more than ${formatPercent(CLEAN_WAIT)} of the time for its core).`,
    );
  } else {
    console.log(
      `\nWARNING: fewer than two rounds ran without another process taking the server's core ` +
        `(CPU wait ≤ ${formatPercent(CLEAN_WAIT)}); the medians above use every round and are ` +
        'low and noisy. Rerun on a quiet machine before comparing them with earlier figures.',
    );
  }
  console.log();
  console.log(
    markdownTable(
      [
        'round',
        ...targets.flatMap((t) =>
          t === base
            ? [`${t.short} req/s`, `${t.short} wait`]
            : [`${t.short} req/s`, `${t.short} ÷ ${base.short}`, `${t.short} wait`],
        ),
      ],
      Array.from({ length: rounds }, (_, round) => [
        String(round + 1),
        ...targets.flatMap((t) => {
          const run = t.runs[round]!;
          const wait = run.cpu ? formatPercent(run.cpu.waiting) : '–';
          return t === base
            ? [formatCount(run.wrk.requestsPerSec), wait]
            : [formatCount(run.wrk.requestsPerSec), `${roundRatio(t, round).toFixed(2)}×`, wait];
        }),
      ]),
    ),
  );

  if (binary) {
    const baselineBinary = await compileBaseline();
    const basePort = await freePort();
    // Alternate the two executables run by run, like the load rounds.
    const secrynTimes: number[] = [];
    const baseTimes: number[] = [];
    for (let run = 0; run < startupRuns; run++) {
      secrynTimes.push(
        ...(await measureStartup({
          cmd: [binary, 'serve', '--config', warnInstance.config],
          readyUrl: `http://127.0.0.1:${warnInstance.port}/v1/health`,
          runs: 1,
          cwd: warnInstance.dir,
          env,
          cpu: cpu.server,
        })),
      );
      baseTimes.push(
        ...(await measureStartup({
          cmd: [baselineBinary],
          readyUrl: `http://127.0.0.1:${basePort}/`,
          runs: 1,
          env: { ...env, BASELINE_PORT: String(basePort) },
          cpu: cpu.server,
        })),
      );
    }
    const secrynSize = statSync(binary).size;
    const baseSize = statSync(baselineBinary).size;
    console.log();
    console.log(
      markdownTable(
        ['executable', 'size', `exec → first 200 (p50 of ${startupRuns})`, 'mean', 'min', 'max'],
        [
          [
            'bare Bun.serve, same build flags',
            formatMiB(baseSize),
            formatMs(median(baseTimes)),
            formatMs(mean(baseTimes)),
            formatMs(Math.min(...baseTimes)),
            formatMs(Math.max(...baseTimes)),
          ],
          [
            'secryn serve (existing instance)',
            formatMiB(secrynSize),
            formatMs(median(secrynTimes)),
            formatMs(mean(secrynTimes)),
            formatMs(Math.min(...secrynTimes)),
            formatMs(Math.max(...secrynTimes)),
          ],
        ],
      ),
    );
    console.log(
      `\nsecryn / bare: size ${formatRatio(secrynSize, baseSize)}, start-up (p50) ` +
        `${formatRatio(median(secrynTimes), median(baseTimes))} (health polled every 1 ms).`,
    );
  }
  console.log(`\ntotal bench time: ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s`);
} finally {
  for (const target of targets) {
    target.rss.stop();
    await target.server.stop();
  }
  for (const fd of logFds) closeSync(fd);
  rmSync(work, { recursive: true, force: true });
}
