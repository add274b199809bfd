/**
 * Rate limiter cost: CPU per `take()` and memory under a flood of distinct client IPs.
 *
 *   ./node_modules/.bin/bun bench/rate-limit.ts
 *
 * (a) ns per call, 2 M calls over 1 000 keys, against a loop doing only Map get+set (and one
 *     doing the LRU touch, get+delete+set), best of 5 rounds after a warm-up.
 * (b) RSS and heapUsed after `Bun.gc(true)`, each scenario in its own child process so
 *     figures do not bleed into each other: an empty process (baseline), 1 M distinct IPs
 *     through a limiter bounded at 100 000 entries, and, for scale, the same IPs in an
 *     unbounded Map of the same shape (what the bound saves).
 * Bounded in time (a few seconds); no network.
 */
import { TokenBucketLimiter } from '../src/access/token-bucket.ts';

const CALLS = 2_000_000;
const KEYS = 1_000;
const ROUNDS = 5;
const FLOOD_IPS = 1_000_000;
const MAX_ENTRIES = 100_000;
const DEFAULT_LIMITS = { capacity: 100, refillPerMinute: 600 };

type MemoryPhase = 'empty' | 'bounded' | 'unbounded';
interface MemoryFigures {
  rss: number;
  heapUsed: number;
  entries: number;
  fillMs: number;
  sweepMs: number;
}

function ipFor(index: number): string {
  return `10.${(index >>> 16) & 255}.${(index >>> 8) & 255}.${index & 255}`;
}

function settledMemory(): { rss: number; heapUsed: number } {
  Bun.gc(true);
  Bun.gc(true);
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heapUsed };
}

/**
 * Runs inside a child process and prints one JSON line. Each structure is still used after
 * the measurement (size read, sweep run) so it is provably alive when memory is sampled.
 */
function runMemoryPhase(phase: MemoryPhase): MemoryFigures {
  if (phase === 'empty') return { ...settledMemory(), entries: 0, fillMs: 0, sweepMs: 0 };
  if (phase === 'unbounded') {
    const map = new Map<string, number>();
    const started = performance.now();
    for (let i = 0; i < FLOOD_IPS; i++) map.set(ipFor(i), Date.now());
    const fillMs = performance.now() - started;
    const figures = settledMemory();
    return { ...figures, entries: map.size, fillMs, sweepMs: 0 };
  }
  let offsetMs = 0;
  const limiter = new TokenBucketLimiter({
    ...DEFAULT_LIMITS,
    maxEntries: MAX_ENTRIES,
    now: () => Date.now() + offsetMs,
  });
  const started = performance.now();
  for (let i = 0; i < FLOOD_IPS; i++) limiter.take(ipFor(i));
  const fillMs = performance.now() - started;
  const figures = settledMemory();
  const entries = limiter.size;
  // A full sweep once every bucket has refilled: the cost of the periodic cleanup.
  offsetMs = 60_000;
  const sweepStarted = performance.now();
  limiter.sweep();
  return { ...figures, entries, fillMs, sweepMs: performance.now() - sweepStarted };
}

function measureMemory(phase: MemoryPhase): MemoryFigures {
  const child = Bun.spawnSync([process.execPath, import.meta.path, `--memory-phase=${phase}`], {
    stdout: 'pipe',
    stderr: 'inherit',
  });
  if (child.exitCode !== 0) throw new Error(`memory phase ${phase} exited ${child.exitCode}`);
  return JSON.parse(child.stdout.toString().trim()) as MemoryFigures;
}

function bestNsPerCall(loop: () => number): { ns: number; sink: number } {
  let best = Infinity;
  let sink = 0;
  sink += loop(); // warm-up: let the JIT tier up before timing
  for (let round = 0; round < ROUNDS; round++) {
    const started = Bun.nanoseconds();
    sink += loop();
    best = Math.min(best, (Bun.nanoseconds() - started) / CALLS);
  }
  return { ns: best, sink };
}

function cpuTable(): void {
  const keys = Array.from({ length: KEYS }, (_, i) => ipFor(i));

  const plainMap = new Map<string, number>();
  const mapGetSet = bestNsPerCall(() => {
    let hits = 0;
    for (let i = 0; i < CALLS; i++) {
      const key = keys[i % KEYS]!;
      const value = plainMap.get(key);
      if (value !== undefined) hits++;
      plainMap.set(key, i);
    }
    return hits;
  });

  const lruMap = new Map<string, number>();
  const mapLruTouch = bestNsPerCall(() => {
    let hits = 0;
    for (let i = 0; i < CALLS; i++) {
      const key = keys[i % KEYS]!;
      const value = lruMap.get(key);
      if (value !== undefined) {
        hits++;
        lruMap.delete(key);
      }
      lruMap.set(key, i);
    }
    return hits;
  });

  const limiter = new TokenBucketLimiter({ ...DEFAULT_LIMITS, maxEntries: MAX_ENTRIES });
  let allowed = 0;
  const take = bestNsPerCall(() => {
    let allowedThisRound = 0;
    for (let i = 0; i < CALLS; i++) if (limiter.take(keys[i % KEYS]!).allowed) allowedThisRound++;
    allowed += allowedThisRound;
    return allowedThisRound;
  });

  const rows = [
    ['Map get+set (baseline)', mapGetSet.ns],
    ['Map get+delete+set (LRU touch)', mapLruTouch.ns],
    ['TokenBucketLimiter.take()', take.ns],
  ] as const;
  console.log(
    `\n(a) CPU per call: ${(CALLS / 1e6).toFixed(0)} M calls over ${KEYS} keys, best of ${ROUNDS}`,
  );
  console.log('| loop | ns/call | calls/s | × baseline |');
  console.log('|---|---:|---:|---:|');
  for (const [name, ns] of rows) {
    const perSecond = (1e9 / ns / 1e6).toFixed(1) + ' M';
    console.log(
      `| ${name} | ${ns.toFixed(1)} | ${perSecond} | ${(ns / mapGetSet.ns).toFixed(2)} |`,
    );
  }
  console.log(
    `(take() allowed ${allowed} of ${(ROUNDS + 1) * CALLS}; sinks ${mapGetSet.sink + mapLruTouch.sink})`,
  );
}

function memoryTable(): void {
  const empty = measureMemory('empty');
  const bounded = measureMemory('bounded');
  const unbounded = measureMemory('unbounded');
  const mib = (bytes: number) => (bytes / 1048576).toFixed(1);
  console.log(
    `\n(b) Memory after Bun.gc(true), ${(FLOOD_IPS / 1e6).toFixed(0)} M distinct IPv4 keys, one process each`,
  );
  console.log(
    '| scenario | entries | fill ms | RSS MiB | Δ RSS MiB | heapUsed MiB | Δ heap MiB | Δ heap B/entry |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  const rows: [string, MemoryFigures][] = [
    ['empty process (baseline)', empty],
    [`limiter, maxEntries ${MAX_ENTRIES}`, bounded],
    ['unbounded Map<string, number>', unbounded],
  ];
  for (const [name, figures] of rows) {
    const heapDelta = figures.heapUsed - empty.heapUsed;
    const perEntry = figures.entries > 0 ? (heapDelta / figures.entries).toFixed(0) : '–';
    console.log(
      `| ${name} | ${figures.entries} | ${figures.fillMs.toFixed(0)} | ${mib(figures.rss)} | ` +
        `${mib(figures.rss - empty.rss)} | ${mib(figures.heapUsed)} | ${mib(heapDelta)} | ${perEntry} |`,
    );
  }
  console.log(
    `(sweep() over ${bounded.entries} refilled buckets: ${bounded.sweepMs.toFixed(1)} ms)`,
  );
}

const phaseArgument = process.argv.find((arg) => arg.startsWith('--memory-phase='));
if (phaseArgument !== undefined) {
  const phase = phaseArgument.slice('--memory-phase='.length) as MemoryPhase;
  console.log(JSON.stringify(runMemoryPhase(phase)));
} else {
  const started = performance.now();
  console.log(`Bun ${Bun.version}, ${process.platform}/${process.arch}`);
  cpuTable();
  memoryTable();
  console.log(`\ntotal ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
