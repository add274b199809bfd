/**
 * Load-generation helpers shared by every HTTP bench: wrk (with a Lua hook that reports exact
 * percentiles as JSON), CPU pinning, peak-RSS sampling, a bare `Bun.serve` baseline server,
 * start-up timing and Markdown tables. Loopback only: every URL must point at 127.0.0.1.
 */
import type { Subprocess } from 'bun';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, cpus, release, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

/**
 * A bench's numeric options, `--name N` for every key of `defaults`, parsed strictly (an unknown
 * option is an error). Each must be a whole number ≥ 1, or ≥ 0 for the names in `zeroAllowed`
 * (a warm-up may be skipped); otherwise this prints which option is wrong and exits 2.
 */
export function benchOptions<const K extends string>(
  script: string,
  defaults: Record<K, number>,
  zeroAllowed: readonly NoInfer<K>[] = [],
): Record<K, number> {
  const names = Object.keys(defaults) as K[];
  const { values } = parseArgs({
    options: Object.fromEntries(
      names.map((name) => [name, { type: 'string' as const, default: String(defaults[name]) }]),
    ),
    strict: true,
  });
  const parsed = {} as Record<K, number>;
  for (const name of names) {
    const value = Number(values[name]);
    const least = zeroAllowed.includes(name) ? 0 : 1;
    if (!Number.isInteger(value) || value < least) {
      console.error(`${script}: --${name} must be a whole number ≥ ${least}`);
      process.exit(2);
    }
    parsed[name] = value;
  }
  return parsed;
}

/** How to get wrk when it is missing (Debian/Ubuntu; Homebrew has `brew install wrk`). */
export const WRK_INSTALL_HINT = 'apt-get install -y wrk';

/**
 * The path of the wrk executable.
 * @throws Error with install instructions when wrk is not on PATH.
 */
export function findWrk(): string {
  const wrk = Bun.which('wrk');
  if (!wrk) {
    throw new Error(
      `wrk not found on PATH. Install it (e.g. \`${WRK_INSTALL_HINT}\`, as root) and run again.`,
    );
  }
  return wrk;
}

/** {@link findWrk} for a bench's start: prints how to install wrk and exits 1 without it. */
export function requireWrk(): string {
  try {
    return findWrk();
  } catch (error) {
    console.error((error as Error).message);
    process.exit(1);
  }
}

/** How a bench starts Secryn: the binary in `SECRYN_BINARY` when set, else `bun src/main.ts`. */
export function secrynCommand(): string[] {
  const binary = process.env.SECRYN_BINARY;
  return binary
    ? [resolve(binary)]
    : [process.execPath, join(import.meta.dir, '..', '..', 'src/main.ts')];
}

/** The environment of a bench's server processes: PATH, a private HOME, no colours, UTC. */
export function benchEnv(home: string): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, NO_COLOR: '1', TZ: 'Etc/UTC' };
}

/** Which CPU the server and the load generator run on, and a sentence saying so. */
export type CpuPinning = { server?: number; load?: number; description: string };

/**
 * Server on CPU 0 and the load generator on CPU 1 when `taskset` exists and there are at least
 * two CPUs, so that wrk does not steal the server's core (how NOTES.md measured). Otherwise
 * nothing is pinned, and the description says the figures are not comparable.
 */
export function planCpuPinning(): CpuPinning {
  const count = availableParallelism();
  if (!Bun.which('taskset')) {
    return { description: 'not pinned (taskset not found); server and wrk share all CPUs' };
  }
  if (count < 2) {
    return { description: `not pinned (${count} CPU); server and wrk share it` };
  }
  return {
    server: 0,
    load: 1,
    description: `server pinned to CPU 0, wrk to CPU 1 (taskset; ${count} CPUs)`,
  };
}

/** `cmd` prefixed with `taskset -c <cpu>` when a CPU is given (taskset execs, so the pid stays). */
export function pinnedCommand(cmd: string[], cpu: number | undefined): string[] {
  return cpu === undefined ? cmd : ['taskset', '-c', String(cpu), ...cmd];
}

/** A TCP port on 127.0.0.1 that nothing listens on right now (bind to 0, read it, close). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const address = server.address();
  await new Promise<void>((ok) => server.close(() => ok()));
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

/** @throws Error unless `url` is on the loopback interface (benches never leave the machine). */
export function assertLoopback(url: string): void {
  const host = new URL(url).hostname;
  if (host !== '127.0.0.1' && host !== 'localhost' && host !== '[::1]') {
    throw new Error(`benches only load 127.0.0.1, not ${host}`);
  }
}

export type WrkOptions = {
  url: string;
  durationSec: number;
  connections: number;
  threads: number;
  /** Extra request headers (e.g. `Authorization`). */
  headers?: Record<string, string>;
  /**
   * Lua source for wrk (e.g. `wrk.method = "POST"` or a `request` function). It must not
   * define `done`: the reporting hook is appended to it.
   */
  script?: string;
  /** CPU to pin wrk to (see {@link planCpuPinning}). */
  cpu?: number;
  /** Per-request timeout; slower responses count as timeouts. Default 5 s. */
  timeoutSec?: number;
};

export type WrkResult = {
  requests: number;
  durationSec: number;
  requestsPerSec: number;
  /** Latency percentiles and extremes, in milliseconds. */
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  meanMs: number;
  /**
   * wrk's own CPU time ÷ wall time (1 = its core fully used). Near 1 means the load generator,
   * not the server, set the pace.
   */
  generatorBusy: number;
  /** Socket errors and timeouts, and `status`: responses with a status ≥ 400. */
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
};

const REPORT_MARKER = 'WRK_REPORT_JSON ';

/** Appended to every wrk script: prints the summary and exact percentiles as one JSON line. */
const DONE_HOOK = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write("\\n${REPORT_MARKER}" .. string.format(
    '{"requests":%.0f,"duration_us":%.0f,"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,' ..
    '"p999_us":%.0f,"max_us":%.0f,"mean_us":%.3f,"connect":%.0f,"read":%.0f,"write":%.0f,' ..
    '"status":%.0f,"timeout":%.0f}',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout) .. "\\n")
end
`;

/**
 * Runs wrk against a loopback URL for a bounded time and returns throughput and latency
 * percentiles (from wrk's full histogram, via a Lua `done` hook).
 * @throws Error with wrk's output when it fails or prints no report.
 */
export async function runWrk(options: WrkOptions): Promise<WrkResult> {
  assertLoopback(options.url);
  if (options.script && /\bdone\s*=|function\s+done\b/.test(options.script)) {
    throw new Error('runWrk: the script must not define `done`; the report hook is appended');
  }
  const wrk = findWrk();
  const dir = mkdtempSync(join(tmpdir(), 'secryn-wrk-'));
  try {
    const scriptPath = join(dir, 'bench.lua');
    writeFileSync(scriptPath, `${options.script ?? ''}\n${DONE_HOOK}`);
    const args = [
      wrk,
      `-t${options.threads}`,
      `-c${options.connections}`,
      `-d${options.durationSec}s`,
      `--timeout`,
      `${options.timeoutSec ?? 5}s`,
      '-s',
      scriptPath,
    ];
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      args.push('-H', `${name}: ${value}`);
    }
    args.push(options.url);
    const started = performance.now();
    const child = Bun.spawn(pinnedCommand(args, options.cpu), {
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'pipe',
    });
    // wrk stops by itself after the duration; this only guards against a wedged run.
    const guard = setTimeout(
      () => child.kill('SIGKILL'),
      (options.durationSec + (options.timeoutSec ?? 5) + 10) * 1000,
    );
    const [stdout, stderr, code] = await Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
      child.exited,
    ]).finally(() => clearTimeout(guard));
    const wallSec = (performance.now() - started) / 1000;
    const line = stdout.split('\n').find((l) => l.startsWith(REPORT_MARKER));
    if (code !== 0 || !line) {
      throw new Error(`wrk exited ${code} without a report:\n${stdout}${stderr}`.trimEnd());
    }
    const usage = child.resourceUsage();
    const generatorBusy = usage ? Number(usage.cpuTime.total) / 1e6 / wallSec : Number.NaN;
    const r = JSON.parse(line.slice(REPORT_MARKER.length)) as Record<string, number>;
    const n = (key: string) => r[key] ?? Number.NaN;
    const durationSec = n('duration_us') / 1e6;
    return {
      requests: n('requests'),
      durationSec,
      requestsPerSec: n('requests') / durationSec,
      p50Ms: n('p50_us') / 1000,
      p90Ms: n('p90_us') / 1000,
      p99Ms: n('p99_us') / 1000,
      p999Ms: n('p999_us') / 1000,
      maxMs: n('max_us') / 1000,
      meanMs: n('mean_us') / 1000,
      generatorBusy,
      errors: {
        connect: n('connect'),
        read: n('read'),
        write: n('write'),
        status: n('status'),
        timeout: n('timeout'),
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Total of every error kind in a wrk result (non-zero means the figures need a second look). */
export function errorCount(result: WrkResult): number {
  const e = result.errors;
  return e.connect + e.read + e.write + e.status + e.timeout;
}

/** Current and high-water resident set size of a live process, in bytes (Linux /proc). */
export function readRss(pid: number): { rssBytes: number; peakBytes: number } | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kib = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
  const rss = kib('VmRSS') * 1024;
  const hwm = kib('VmHWM') * 1024;
  if (!Number.isFinite(rss)) return undefined;
  return { rssBytes: rss, peakBytes: Number.isFinite(hwm) ? hwm : rss };
}

/** A running peak-RSS sampler; `stop()` takes a last sample and returns the peak in bytes. */
export type RssWatch = { stop(): number };

/**
 * Samples a process's memory every `intervalMs` and keeps the peak: the kernel's high-water
 * mark (VmHWM, exact over the process's whole life, start-up included) or, where that is
 * missing, the largest VmRSS seen. Call `stop()` while the process is still alive.
 */
export function watchPeakRss(pid: number, intervalMs = 100): RssWatch {
  let peak = 0;
  const sample = () => {
    const now = readRss(pid);
    if (now) peak = Math.max(peak, now.peakBytes, now.rssBytes);
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return peak;
    },
  };
}

function cpuTicks(): Map<string, { busy: number; total: number }> {
  const ticks = new Map<string, { busy: number; total: number }>();
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const match = /^(cpu\d+) (.*)$/.exec(line);
    if (!match) continue;
    const values = match[2]!.trim().split(/\s+/).map(Number);
    const total = values.reduce((sum, v) => sum + v, 0);
    const idle = (values[3] ?? 0) + (values[4] ?? 0);
    ticks.set(match[1]!, { busy: total - idle, total });
  }
  return ticks;
}

/**
 * How busy each CPU is over `ms` while the bench itself does nothing (Linux /proc/stat): other
 * tenants' work that will skew the figures. Returns e.g. `{ cpu0: 0.02, cpu1: 0.65 }`, or an
 * empty object where /proc/stat is unavailable.
 */
export async function backgroundLoad(ms = 1000): Promise<Record<string, number>> {
  try {
    const before = cpuTicks();
    await Bun.sleep(ms);
    const after = cpuTicks();
    const load: Record<string, number> = {};
    for (const [cpu, end] of after) {
      const start = before.get(cpu);
      if (start && end.total > start.total) {
        load[cpu] = (end.busy - start.busy) / (end.total - start.total);
      }
    }
    return load;
  } catch {
    return {};
  }
}

/** CPU use of a process over a window; see {@link watchCpu}. */
export type CpuUsage = {
  /** CPU time of all its threads divided by wall time (1 = one core busy all along). */
  busy: number;
  /**
   * Share of wall time its main thread was runnable but waiting for a CPU. Near 0 on a quiet,
   * pinned machine; large values mean something else ran on the server's core and the
   * throughput figures understate it.
   */
  waiting: number;
};

const CLOCK_TICKS_PER_SEC = (() => {
  const out = Bun.which('getconf') ? Bun.spawnSync(['getconf', 'CLK_TCK']).stdout.toString() : '';
  return Number(out.trim()) || 100;
})();

function cpuCounters(pid: number): { cpuSec: number; waitSec: number } | undefined {
  try {
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    // schedstat: ns on CPU, ns runnable but waiting on a run queue, time slices (main thread).
    const sched = readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ');
    return { cpuSec: ticks / CLOCK_TICKS_PER_SEC, waitSec: Number(sched[1]) / 1e9 };
  } catch {
    return undefined;
  }
}

/**
 * Starts measuring a live process's CPU time and run-queue wait (Linux /proc); `stop()` returns
 * them as shares of the elapsed wall time, or undefined where /proc is unavailable.
 */
export function watchCpu(pid: number): { stop(): CpuUsage | undefined } {
  const started = performance.now();
  const before = cpuCounters(pid);
  return {
    stop() {
      const after = cpuCounters(pid);
      const wallSec = (performance.now() - started) / 1000;
      if (!before || !after || wallSec <= 0) return undefined;
      return {
        busy: (after.cpuSec - before.cpuSec) / wallSec,
        waiting: (after.waitSec - before.waitSec) / wallSec,
      };
    },
  };
}

/** A server process under test. `stop()` sends SIGTERM (SIGKILL after 10 s) and returns its exit code. */
export type ServerProcess = {
  proc: Subprocess;
  pid: number;
  /** Base URL, e.g. `http://127.0.0.1:40123`. */
  url: string;
  stop(): Promise<number | null>;
};

export type StartOptions = {
  cmd: string[];
  /** URL that answers 200 once the server is ready. */
  readyUrl: string;
  cwd?: string;
  env?: Record<string, string>;
  cpu?: number;
  /**
   * Where the server's stderr goes: `'ignore'`, a file descriptor (e.g. a log file), or by
   * default a pipe whose last 4 KiB are kept and quoted if the server fails to start.
   */
  stderr?: 'ignore' | number;
  timeoutMs?: number;
};

/**
 * Spawns a server (pinned when `cpu` is given) and resolves once `readyUrl` answers 200.
 * @throws Error when it exits first or is not ready within `timeoutMs` (default 15 s).
 */
export async function startServerProcess(options: StartOptions): Promise<ServerProcess> {
  assertLoopback(options.readyUrl);
  const proc = Bun.spawn(pinnedCommand(options.cmd, options.cpu), {
    cwd: options.cwd,
    env: options.env,
    stdin: 'ignore',
    stdout: 'ignore',
    stderr: options.stderr ?? 'pipe',
  });
  const stderr = keepTail(proc.stderr);
  const server = asServerProcess(proc, new URL(options.readyUrl).origin);
  try {
    await waitForOk(options.readyUrl, proc, options.timeoutMs ?? 15_000, 5, stderr);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

function asServerProcess(proc: Subprocess, url: string): ServerProcess {
  return {
    proc,
    pid: proc.pid,
    url,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const killer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      const code = await proc.exited;
      clearTimeout(killer);
      return proc.signalCode === null ? code : null;
    },
  };
}

/**
 * Reads a child's output stream to its end (so the child never blocks on a full pipe) and
 * keeps the last `maxChars` characters; a file descriptor or nothing gives an empty tail.
 */
function keepTail(stream: unknown, maxChars = 4096): () => Promise<string> {
  if (!(stream instanceof ReadableStream)) return async () => '';
  let tail = '';
  const decoder = new TextDecoder();
  const done = (async () => {
    for await (const chunk of stream as ReadableStream<Uint8Array>) {
      tail = (tail + decoder.decode(chunk, { stream: true })).slice(-maxChars);
    }
  })().catch(() => {});
  // After the child exits, wait briefly for the last bytes in the pipe.
  return async () => {
    await Promise.race([done, Bun.sleep(200)]);
    return tail.trimEnd();
  };
}

/** Polls `url` every `pollMs` until it answers 200; returns the milliseconds waited. */
async function waitForOk(
  url: string,
  proc: Subprocess,
  timeoutMs: number,
  pollMs: number,
  stderrTail: () => Promise<string>,
): Promise<number> {
  const started = performance.now();
  for (;;) {
    try {
      const response = await fetch(url);
      await response.arrayBuffer();
      if (response.status === 200) return performance.now() - started;
    } catch {
      // Not listening yet.
    }
    if (proc.exitCode !== null || proc.signalCode !== null) {
      const said = await stderrTail();
      throw new Error(
        `${url}: the server exited (${proc.exitCode ?? proc.signalCode}) first` +
          (said ? `; its stderr ended with:\n${said}` : ''),
      );
    }
    if (performance.now() - started > timeoutMs) {
      const said = await stderrTail();
      throw new Error(
        `${url}: not ready within ${timeoutMs} ms` + (said ? `; its stderr:\n${said}` : ''),
      );
    }
    await Bun.sleep(pollMs);
  }
}

/** The bare-Bun baseline: the smallest JSON server Bun can run, same body shape as Secryn's health. */
export const BASELINE_SERVER_SOURCE = `
const body = { status: 'ok', version: '0.0.0' };
const port = Number(process.env.BASELINE_PORT ?? 0);
const server = Bun.serve({ hostname: '127.0.0.1', port, fetch: () => Response.json(body) });
console.log(JSON.stringify({ port: server.port }));
process.on('SIGTERM', () => { server.stop(true); process.exit(0); });
`;

/**
 * Starts {@link BASELINE_SERVER_SOURCE} under `bun -e` in a child process on a free port.
 * Every path answers 200 with a small JSON body.
 */
export async function startBaselineServer(options: { cpu?: number } = {}): Promise<ServerProcess> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  return startServerProcess({
    cmd: [process.execPath, '-e', BASELINE_SERVER_SOURCE],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', BASELINE_PORT: String(port) },
    readyUrl: `${url}/`,
    cpu: options.cpu,
  });
}

/**
 * Milliseconds from `spawn` of `cmd` to the first 200 from `readyUrl`, polling every `pollMs`
 * (default 1), once per run; the server is stopped with SIGTERM after each run.
 */
export async function measureStartup(options: {
  cmd: string[];
  readyUrl: string;
  runs: number;
  cwd?: string;
  env?: Record<string, string>;
  cpu?: number;
  pollMs?: number;
}): Promise<number[]> {
  assertLoopback(options.readyUrl);
  const times: number[] = [];
  for (let run = 0; run < options.runs; run++) {
    const started = performance.now();
    const proc = Bun.spawn(pinnedCommand(options.cmd, options.cpu), {
      cwd: options.cwd,
      env: options.env,
      stdin: 'ignore',
      stdout: 'ignore',
      stderr: 'pipe',
    });
    const stderr = keepTail(proc.stderr);
    const server = asServerProcess(proc, new URL(options.readyUrl).origin);
    try {
      await waitForOk(options.readyUrl, proc, 15_000, options.pollMs ?? 1, stderr);
      times.push(performance.now() - started);
    } finally {
      await server.stop();
    }
  }
  return times;
}

/** Arithmetic mean (NaN for an empty list). */
export function mean(values: number[]): number {
  return values.reduce((sum, v) => sum + v, 0) / values.length;
}

/** Median (NaN for an empty list). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** A share as a whole percentage: `0.973` → `97 %`. */
export const formatPercent = (share: number): string => `${Math.round(share * 100)} %`;

/** A GitHub-flavoured Markdown table; cells that look numeric are right-aligned. */
export function markdownTable(headers: string[], rows: (string | number)[][]): string {
  const cells = rows.map((row) => row.map(String));
  const numeric = headers.map((_, i) =>
    cells.every((row) => /^[\d.,]+ ?[A-Za-z×%]{0,3}$/.test(row[i] ?? '')),
  );
  const widths = headers.map((h, i) =>
    Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)),
  );
  const pad = (text: string, i: number) =>
    numeric[i] ? text.padStart(widths[i]!) : text.padEnd(widths[i]!);
  const line = (row: string[]) => `| ${row.map((c, i) => pad(c, i)).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (numeric[i] ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(headers), rule, ...cells.map(line)].join('\n');
}

/** An integer with thousands separators: `132,456`. */
export const formatCount = (n: number): string => Math.round(n).toLocaleString('en-US');
/** Milliseconds with two decimals. */
export const formatMs = (ms: number): string => `${ms.toFixed(2)} ms`;
/** Bytes as MiB with one decimal. */
export const formatMiB = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
/** `a / b` as `0.42×`. */
export const formatRatio = (a: number, b: number): string => `${(a / b).toFixed(2)}×`;

/** One line describing the machine and tools, for the header of every bench's output. */
export function machineSummary(): string {
  const cpuList = cpus();
  const model = cpuList[0]?.model.trim() ?? 'unknown CPU';
  const memGiB = (totalmem() / 1024 ** 3).toFixed(0);
  let wrkVersion = 'wrk not installed';
  const wrk = Bun.which('wrk');
  if (wrk) {
    const out = Bun.spawnSync([wrk, '--version']);
    wrkVersion =
      `${out.stdout.toString()}${out.stderr.toString()}`.split('\n')[0]?.split(' [')[0] ?? 'wrk';
  }
  return `${cpuList.length} × ${model}, ${memGiB} GiB RAM, ${process.platform} ${release()}, bun ${Bun.version}, ${wrkVersion}`;
}
