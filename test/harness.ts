/**
 * Shared test helpers: temp directories that clean up after themselves, a pinned environment,
 * the CLI run as a real process, and an in-process instance for `app.handle` tests.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { validateConfig } from '../src/config/load.ts';
import type { Config } from '../src/config/schema.ts';
import { createLogger, type Logger } from '../src/log/logger.ts';

export const REPO_ROOT = resolve(import.meta.dir, '..');
export const MAIN = join(REPO_ROOT, 'src/main.ts');

/** The environment every spawned Secryn process gets: no colours, UTC, no inherited config. */
export function pinnedEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('SECRYN_')) env[k] = v;
  }
  Object.assign(env, { NO_COLOR: '1', TZ: 'Etc/UTC' });
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** A temporary directory removed at the end of the `using` scope. */
export function tempDir(prefix = 'secryn-test-'): { path: string; [Symbol.dispose](): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, [Symbol.dispose]: () => rmSync(path, { recursive: true, force: true }) };
}

/** Writes a TOML config into `dir` whose data lives in `dir`, and returns its path. */
export function writeConfig(dir: string, extraToml = ''): string {
  const path = join(dir, 'secryn.toml');
  writeFileSync(
    path,
    `[storage]\npath = "${join(dir, 'data/secryn.db')}"\n[encryption]\nmaster_key_file = "${join(dir, 'data/master.key')}"\n[log]\nlevel = "warn"\n${extraToml}`,
  );
  return path;
}

/** Registers the keyring's test-only encrypted tables when preloaded (see {@link sourceCli}). */
export const KEYRING_FIXTURE = join(REPO_ROOT, 'test/fixtures/keyring-tables.ts');

/**
 * The CLI from source with test modules preloaded (`bun --preload`). Always source, even when
 * SECRYN_BINARY is set: test fixtures and test hooks (crash points) exist only in source runs.
 */
export function sourceCli(preload: string[] = []): string[] {
  return [process.execPath, ...preload.flatMap((path) => ['--preload', path]), MAIN];
}

/** The command that runs the CLI: the compiled binary when SECRYN_BINARY is set, else source. */
export function cliCommand(): string[] {
  const binary = process.env.SECRYN_BINARY;
  return binary ? [resolve(REPO_ROOT, binary)] : [process.execPath, MAIN];
}

export type CliResult = { exitCode: number; stdout: string; stderr: string };

/** Runs `secryn <args>` to completion in `cwd` with the pinned environment. */
export async function runCli(
  args: string[],
  options: { cwd?: string; env?: Record<string, string | undefined>; command?: string[] } = {},
): Promise<CliResult> {
  const proc = Bun.spawn([...(options.command ?? cliCommand()), ...args], {
    cwd: options.cwd ?? tmpdir(),
    env: pinnedEnv(options.env),
    stdout: 'pipe',
    stderr: 'pipe',
    stdin: 'ignore',
  });
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { exitCode, stdout, stderr };
}

/** A configuration for in-process tests, with data under `dir`. */
export function testConfig(
  dir: string,
  overrides: Record<string, Record<string, unknown>> = {},
): Config {
  const config = validateConfig({
    ...overrides,
    storage: { path: join(dir, 'secryn.db'), ...(overrides.storage ?? {}) },
    encryption: { master_key_file: join(dir, 'master.key'), ...(overrides.encryption ?? {}) },
  });
  return config;
}

/** A logger that keeps its lines in memory, for asserting what was (and was not) logged. */
export function memoryLogger(
  format: 'json' | 'pretty' = 'json',
  level: Config['log']['level'] = 'debug',
): Logger & { lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({
    level,
    format,
    color: false,
    write: (line) => void lines.push(line),
  });
  return Object.assign(logger, { lines });
}

/** Sends a request through the app in process. */
export function call(
  app: { handle(request: Request): Promise<Response> },
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string>; rawBody?: RequestInit['body'] } = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  let body: RequestInit['body'] = options.rawBody;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  return app.handle(new Request(`http://localhost${path}`, { method, headers, body }));
}

/** Picks a free TCP port on 127.0.0.1 (bind to 0, read, close). */
export function freePort(): number {
  const server = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response() });
  const port = server.port!;
  server.stop(true);
  return port;
}

/** Polls `url` until it answers 200 or the deadline passes. */
export async function waitForHealthy(
  url: string,
  timeoutMs = 10_000,
  fetchOptions: RequestInit = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, fetchOptions);
      if (response.status === 200) return;
    } catch (error) {
      lastError = error;
    }
    await Bun.sleep(25);
  }
  throw new Error(`not healthy within ${timeoutMs} ms: ${url} (${String(lastError)})`);
}

/**
 * Starts `secryn serve --config configPath` (listening on `port`), reads one resource with
 * `token` and stops the server: the status and the value it answered. For checks that an
 * instance a command produced (a restore, a storage migration) really serves its data.
 */
export async function readThroughServe(
  configPath: string,
  port: number,
  resourceId: string,
  token: string,
): Promise<{ status: number; value: string | undefined }> {
  const server = Bun.spawn([...cliCommand(), 'serve', '--config', configPath], {
    env: pinnedEnv(),
    stdout: 'ignore',
    stderr: 'ignore',
  });
  try {
    await waitForHealthy(`http://127.0.0.1:${port}/v1/health`);
    const response = await fetch(`http://127.0.0.1:${port}/v1/resources/${resourceId}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const body = (await response.json()) as { value?: string };
    return { status: response.status, value: body.value };
  } finally {
    server.kill();
    await server.exited;
  }
}

/**
 * `secryn init` then `secryn serve` (the binary when SECRYN_BINARY is set) in `dir` on a free
 * port: the server process, its URL, its config path and the initial admin token.
 */
export async function startCliServer(dir: string): Promise<{
  server: ReturnType<typeof Bun.spawn>;
  url: string;
  config: string;
  adminToken: string;
}> {
  const port = freePort();
  const config = writeConfig(dir, `[server]\nport = ${port}\n`);
  const init = await runCli(['init', '--config', config]);
  if (init.exitCode !== 0) throw new Error(`secryn init: ${init.exitCode} ${init.stderr}`);
  const adminToken = /(scr_[0-9A-Za-z]{61})/.exec(init.stdout)![1]!;
  const server = Bun.spawn([...cliCommand(), 'serve', '--config', config], {
    env: pinnedEnv(),
    stdout: 'ignore',
    stderr: 'ignore',
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHealthy(`${url}/v1/health`);
  return { server, url, config, adminToken };
}
