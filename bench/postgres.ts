/**
 * How the synchronous store layer could reach PostgreSQL (issue 20): one sequential statement
 * round trip (a primary-key read of one row) through `Bun.sql` awaited directly, against the
 * same through a synchronous bridge — `Bun.sql` in a Worker while the main thread blocks on
 * `Atomics.wait` and takes the result with `receiveMessageOnPort` — and the bridge alone (the
 * worker answers without a database). The baseline, same run, is the same read in `bun:sqlite`.
 * Cells are measured in interleaved rounds (the median round is reported, so a neighbour's burst
 * on a shared machine slows every cell alike); per-call p50/p99 come from all rounds.
 *
 * Needs a PostgreSQL cluster: SECRYN_BENCH_POSTGRES_URL, else SECRYN_TEST_POSTGRES_URL (see the
 * README's development section); the bench makes its own database there and drops it.
 * Run: `bun bench/postgres.ts [--rounds=5] [--ms=1500]` (bounded: 4 cells × rounds × ms ≈ 30 s).
 */
import { Database } from 'bun:sqlite';
import { SQL } from 'bun';
import { randomBytes } from 'node:crypto';
import {
  MessageChannel,
  Worker,
  isMainThread,
  receiveMessageOnPort,
  workerData,
  type MessagePort,
} from 'node:worker_threads';
import {
  backgroundLoad,
  benchOptions,
  formatPercent,
  machineSummary,
  markdownTable,
  median,
} from './lib/load.ts';

const ROWS = 1000;
const READ = 'SELECT id, name, created_at FROM bench_items WHERE id = $1';

type WorkerInit = { url: string | null; port: MessagePort; flag: Int32Array };

if (!isMainThread) {
  // The bridge's far side: run each request on Bun.sql (or echo it), post the rows, then wake
  // the blocked main thread.
  const { url, port, flag } = workerData as WorkerInit;
  const sql = url ? new SQL({ url, max: 1 }) : undefined;
  port.on('message', async (id: number) => {
    let reply: unknown;
    try {
      reply = sql
        ? await sql`SELECT id, name, created_at FROM bench_items WHERE id = ${id}`
        : [{ id }];
    } catch (error) {
      reply = { error: String(error) };
    }
    port.postMessage(reply);
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
  });
} else {
  await main();
}

/** A synchronous call into a worker that owns a Bun.sql pool (or none, to time the bridge). */
function startBridge(url: string | null): { call(id: number): unknown; stop(): Promise<number> } {
  const { port1, port2 } = new MessageChannel();
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(import.meta.path, {
    workerData: { url, port: port2, flag } satisfies WorkerInit,
    transferList: [port2],
  });
  return {
    call(id) {
      Atomics.store(flag, 0, 0);
      port1.postMessage(id);
      if (Atomics.wait(flag, 0, 0, 10_000) === 'timed-out') throw new Error('bridge timed out');
      let received = receiveMessageOnPort(port1);
      // The flag is set after postMessage; the message is normally there already.
      while (received === undefined) received = receiveMessageOnPort(port1);
      return received.message;
    },
    stop: () => worker.terminate(),
  };
}

type Cell = { name: string; run(id: number): unknown; async: boolean };

async function measure(cell: Cell, ms: number, samples: number[]): Promise<number> {
  let i = 0;
  const warmEnd = performance.now() + Math.min(200, ms / 5);
  while (performance.now() < warmEnd) {
    const r = cell.run((i++ % ROWS) + 1);
    if (cell.async) await r;
  }
  let ops = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    const t0 = performance.now();
    const r = cell.run((i++ % ROWS) + 1);
    if (cell.async) await r;
    now = performance.now();
    samples.push(now - t0);
    ops++;
  }
  return ((now - start) * 1000) / ops;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

async function main(): Promise<void> {
  const opts = benchOptions('bench/postgres.ts', { rounds: 5, ms: 1500 });
  const adminUrl = process.env.SECRYN_BENCH_POSTGRES_URL || process.env.SECRYN_TEST_POSTGRES_URL;
  if (!adminUrl) {
    console.error(
      'bench/postgres.ts: set SECRYN_BENCH_POSTGRES_URL (or SECRYN_TEST_POSTGRES_URL) to a PostgreSQL cluster (README, Development)',
    );
    process.exit(2);
  }
  const dbName = `secryn_bench_${randomBytes(6).toString('hex')}`;
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  const admin = new SQL({ url: adminUrl, max: 1 });
  await admin.unsafe(`CREATE DATABASE ${dbName}`);
  const sql = new SQL({ url: url.toString(), max: 1 });
  const sqlite = new Database(':memory:', { strict: true });
  const bridges: { stop(): Promise<number> }[] = [];
  try {
    await sql.unsafe(
      'CREATE TABLE bench_items (id bigint PRIMARY KEY, name text NOT NULL, created_at bigint NOT NULL)',
    );
    await sql.unsafe(
      `INSERT INTO bench_items SELECT g, 'item-' || g, 1700000000000 + g FROM generate_series(1, ${ROWS}) g`,
    );
    sqlite.run(
      'CREATE TABLE bench_items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, created_at INTEGER NOT NULL)',
    );
    const insert = sqlite.prepare('INSERT INTO bench_items VALUES (?, ?, ?)');
    for (let id = 1; id <= ROWS; id++) insert.run(id, `item-${id}`, 1700000000000 + id);
    const sqliteRead = sqlite.prepare(READ.replace('$1', '?'));
    const echo = startBridge(null);
    const bridged = startBridge(url.toString());
    bridges.push(echo, bridged);
    // The bridge must return what a direct read returns.
    const direct = await sql`SELECT id, name, created_at FROM bench_items WHERE id = ${7}`;
    if (JSON.stringify(bridged.call(7)) !== JSON.stringify([...direct])) {
      throw new Error('the bridged read differs from the direct one');
    }

    const cells: Cell[] = [
      { name: 'bun:sqlite prepared (baseline)', run: (id) => sqliteRead.get(id), async: false },
      {
        name: 'Bun.sql awaited',
        run: (id) => sql`SELECT id, name, created_at FROM bench_items WHERE id = ${id}`,
        async: true,
      },
      {
        name: 'Bun.sql via sync bridge (Worker + Atomics.wait)',
        run: (id) => bridged.call(id),
        async: false,
      },
      { name: 'sync bridge alone (worker echoes)', run: (id) => echo.call(id), async: false },
    ];
    const load = await backgroundLoad(500);
    const perRound = cells.map(() => [] as number[]);
    const samples = cells.map(() => [] as number[]);
    for (let round = 0; round < opts.rounds; round++) {
      for (const [i, cell] of cells.entries()) {
        perRound[i]!.push(await measure(cell, opts.ms, samples[i]!));
      }
    }
    const direct_us = median(perRound[1]!);
    const rows = cells.map((cell, i) => {
      const us = median(perRound[i]!);
      const sorted = samples[i]!.sort((a, b) => a - b);
      return [
        cell.name,
        `${us.toFixed(1)} µs`,
        `${Math.round(1e6 / us).toLocaleString('en')}`,
        `${(percentile(sorted, 0.5) * 1000).toFixed(1)} µs`,
        `${(percentile(sorted, 0.99) * 1000).toFixed(1)} µs`,
        i === 0 ? '—' : `${(us / direct_us).toFixed(2)}×`,
      ];
    });
    console.log(machineSummary());
    console.log(
      `background CPU load before the run: ${
        Object.entries(load)
          .map(([cpu, share]) => `${cpu} ${formatPercent(share)}`)
          .join(', ') || 'unknown'
      }`,
    );
    console.log(
      `\nOne sequential primary-key read of one row (${opts.rounds} interleaved rounds × ${opts.ms} ms; median round; p50/p99 per call over all rounds)\n`,
    );
    console.log(
      markdownTable(['path', 'per call', 'calls/s', 'p50', 'p99', 'vs Bun.sql awaited'], rows),
    );
  } finally {
    for (const bridge of bridges) await bridge.stop();
    sqlite.close();
    await sql.close();
    await admin.unsafe(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.close();
  }
}
