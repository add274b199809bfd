/*
 * The shipped executable, driven as a user drives it: from an unrelated working directory,
 * with a pinned environment, over a real loopback socket. Uses $SECRYN_BINARY when set (CI runs
 * `npm run build` once and sets SECRYN_BINARY=dist/secryn); otherwise builds a fresh binary
 * with scripts/build.ts into a temp directory first.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Database } from 'bun:sqlite';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pkg from '../package.json' with { type: 'json' };
import { embeddedMigrations } from '../migrations/index.ts';

const REPO_ROOT = resolve(import.meta.dir, '..');
const BUILD_TIMEOUT_MS = 180_000;

let work: string;
let binary: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'secryn-'));
  const given = process.env.SECRYN_BINARY;
  if (given) {
    binary = resolve(REPO_ROOT, given);
    if (!existsSync(binary)) throw new Error(`SECRYN_BINARY=${given}: no such file (${binary})`);
    return;
  }
  binary = join(work, 'bin', 'secryn');
  const build = Bun.spawn(
    [process.execPath, join(REPO_ROOT, 'scripts/build.ts'), '--outfile', binary],
    { cwd: REPO_ROOT, stdout: 'pipe', stderr: 'pipe' },
  );
  const [stdout, stderr, code] = await Promise.all([
    new Response(build.stdout).text(),
    new Response(build.stderr).text(),
    build.exited,
  ]);
  if (code !== 0) throw new Error(`scripts/build.ts exited ${code}\n${stdout}${stderr}`);
}, BUILD_TIMEOUT_MS);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

type Result = { code: number; stdout: string; stderr: string };

/** No colours, UTC, a private HOME, nothing inherited that could configure Secryn. */
function pinnedEnv(home: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    NO_COLOR: '1',
    TZ: 'Etc/UTC',
    LANG: 'C.UTF-8',
  };
}

/** A fresh directory (inside the suite's temp dir) to run the binary in. */
function scratch(name: string): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

async function run(args: string[], cwd: string): Promise<Result> {
  const child = Bun.spawn([binary, ...args], {
    cwd,
    env: pinnedEnv(cwd),
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { code, stdout, stderr };
}

/** A port nothing listens on right now (bind to 0, read it, close). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const address = server.address();
  await new Promise<void>((ok) => server.close(() => ok()));
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

/** Writes `secryn.toml` into `dir`, with the database and master key beside it (relative paths). */
function writeConfig(dir: string, port: number, logLevel = 'warn'): string {
  const path = join(dir, 'secryn.toml');
  writeFileSync(
    path,
    [
      '[server]',
      'host = "127.0.0.1"',
      `port = ${port}`,
      'shutdown_timeout_ms = 2000',
      '[storage]',
      'path = "data/secryn.db"',
      '[encryption]',
      'master_key_file = "data/master.key"',
      '[log]',
      `level = "${logLevel}"`,
      '',
    ].join('\n'),
  );
  return path;
}

const ANSI_ESCAPE = '\x1b[';

describe('compiled secryn binary', () => {
  test('version prints the package version and nothing else', async () => {
    const result = await run(['version'], scratch('version'));
    expect(result).toEqual({
      code: 0,
      stdout: `secryn ${pkg.version} (bun ${Bun.version})\n`,
      stderr: '',
    });
  });

  test('--help exits 0, lists every command, and has no ANSI escapes', async () => {
    const result = await run(['--help'], scratch('help'));
    expect(result.code).toBe(0);
    for (const command of ['init', 'serve', 'migrate', 'version']) {
      expect(result.stdout).toContain(command);
    }
    expect(result.stdout).not.toContain(ANSI_ESCAPE);
    expect(result.stderr).toBe('');
  });

  test('an unknown command exits 2 with exactly one line on stderr', async () => {
    const result = await run(['frobnicate'], scratch('unknown'));
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.endsWith('\n')).toBe(true);
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('frobnicate');
    expect(result.stderr).not.toContain(ANSI_ESCAPE);
  });

  test('init creates the database with every embedded migration; a second init exits 4 and touches nothing; migrate is idempotent', async () => {
    const dir = scratch('init');
    const cwd = scratch('init-elsewhere');
    const config = writeConfig(dir, await freePort());
    const database = join(dir, 'data', 'secryn.db');

    const first = await run(['init', '--config', config], cwd);
    expect(first.code, first.stderr).toBe(0);
    expect(existsSync(database)).toBe(true);
    // Relative paths in the file are resolved against the file, not the working directory.
    expect(existsSync(join(cwd, 'data'))).toBe(false);

    const sqlite = new Database(database, { readonly: true });
    try {
      const applied = sqlite
        .query<{ n: number }, []>('SELECT count(*) AS n FROM __drizzle_migrations')
        .get();
      expect(applied?.n).toBe(embeddedMigrations.length);
      const instanceRow = sqlite.query('SELECT id FROM instance WHERE id = 1').get();
      expect(instanceRow).toEqual({ id: 1 });
    } finally {
      sqlite.close();
    }

    // Everything init wrote (database, master key, …) is for Secryn's user only.
    const before = snapshot(join(dir, 'data'));
    expect(before.size).toBeGreaterThan(0);
    for (const [file, { mode }] of before) expect([file, mode & 0o077]).toEqual([file, 0]);

    const second = await run(['init', '--config', config], cwd);
    expect(second.code).toBe(4);
    expect(second.stdout).toBe('');
    expect(second.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(second.stderr).toContain(join(dir, 'data'));
    expect(snapshot(join(dir, 'data'))).toEqual(before);

    for (let i = 0; i < 2; i++) {
      const migrate = await run(['migrate', '--config', config], cwd);
      expect(migrate.code, migrate.stderr).toBe(0);
      expect(migrate.stdout).toContain('up to date');
    }
    const json = await run(['migrate', '--config', config, '--json'], cwd);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ applied: [] });
  });

  test('serve answers GET /v1/health over a socket and exits 0 on SIGTERM', async () => {
    const dir = scratch('serve');
    const port = await freePort();
    const config = writeConfig(dir, port, 'info');
    const init = await run(['init', '--config', config], dir);
    expect(init.code, init.stderr).toBe(0);

    const cwd = scratch('serve-elsewhere');
    const server = Bun.spawn([binary, 'serve', '--config', config], {
      cwd,
      env: pinnedEnv(cwd),
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'pipe',
    });
    const stderr = new Response(server.stderr).text();
    try {
      const url = `http://127.0.0.1:${port}/v1/health`;
      const deadline = Date.now() + 10_000;
      let response: Response | undefined;
      while (Date.now() < deadline && server.exitCode === null) {
        try {
          response = await fetch(url);
          break;
        } catch {
          await Bun.sleep(20);
        }
      }
      if (!response) {
        throw new Error(
          `serve never answered (exit ${server.exitCode}):\n${server.exitCode === null ? '' : await stderr}`,
        );
      }
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ status: 'ok', version: pkg.version });

      const stopAsked = performance.now();
      server.kill('SIGTERM');
      const code = await Promise.race([server.exited, Bun.sleep(5_000).then(() => 'timeout')]);
      expect(code).toBe(0);
      expect(performance.now() - stopAsked).toBeLessThan(5_000);
      const log = await stderr;
      expect(log).toContain('secryn listening');
      expect(log).not.toContain(ANSI_ESCAPE);
      // The port is released once the process is gone.
      await expect(fetch(url)).rejects.toThrow();
    } finally {
      if (server.exitCode === null) server.kill('SIGKILL');
      await server.exited;
    }
  }, 20_000);

  test('serve before init exits 3 with one line', async () => {
    const dir = scratch('serve-uninitialised');
    const result = await run(['serve', '--config', writeConfig(dir, await freePort())], dir);
    expect(result.code).toBe(3);
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('secryn init');
  });

  test('a bad config file exits 78 with one line per problem', async () => {
    const dir = scratch('bad-config');
    const config = join(dir, 'bad.toml');

    writeFileSync(config, '[server]\nport = "eighty"\nprot = 1\n');
    const invalid = await run(['serve', '--config', config], dir);
    expect(invalid.code).toBe(78);
    expect(invalid.stdout).toBe('');
    const lines = invalid.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines.some((line) => line.includes('server.port'))).toBe(true);
    expect(lines.some((line) => line.includes('server.prot') && line.includes('unknown key'))).toBe(
      true,
    );
    expect(lines.every((line) => line.startsWith(config))).toBe(true);

    writeFileSync(config, '[server]\nport = = 1\n');
    const syntax = await run(['init', '--config', config], dir);
    expect(syntax.code).toBe(78);
    expect(syntax.stderr.trimEnd().split('\n')).toEqual([
      expect.stringMatching(new RegExp(`^${escapeRegExp(config)}:2:\\d+: `)),
    ]);
    expect(existsSync(join(dir, 'data'))).toBe(false);
  });

  test('contains no test-only switch or fixture (they exist only in source runs)', () => {
    const bytes = readFileSync(binary);
    const contains = (text: string) => bytes.includes(Buffer.from(text));
    // The search itself works: strings the product needs are found.
    expect(contains('x-ratelimit-remaining')).toBe(true);
    expect(contains('master_key.rotated')).toBe(true);
    const testOnly = [
      'SECRYN_TEST_CRASH_AT', // crash points (src/keyring/crash-points.ts), compiled out
      'SECRYN_TEST_HOOKS', // the build-time constant itself is folded away
      'SECRYN_TEST_FIXTURES', // the switch that once loaded test tables into the CLI
      'keyring_test_values', // test/fixtures/keyring-tables.ts
      'keyring_test_notes',
      'test-fixture',
      'test/fixtures',
    ];
    expect(testOnly.filter(contains)).toEqual([]);
  });

  test('ignores .env and bunfig.toml in the working directory', async () => {
    // Bun executables load both by default; a bunfig `preload` would run foreign code inside
    // the secrets manager, and `.env` is not one of Secryn's configuration sources.
    const cwd = scratch('autoload');
    writeFileSync(join(cwd, 'bunfig.toml'), 'preload = ["./preload.ts"]\n');
    writeFileSync(
      join(cwd, 'preload.ts'),
      `require('node:fs').writeFileSync(${JSON.stringify(join(cwd, 'PRELOADED'))}, '');\n`,
    );
    writeFileSync(join(cwd, '.env'), `SECRYN_CONFIG=${join(cwd, 'missing.toml')}\n`);
    const result = await run(['migrate'], cwd);
    expect(existsSync(join(cwd, 'PRELOADED'))).toBe(false);
    // With the built-in defaults there is no instance here (3); had .env been read, the
    // missing config file would have been reported (78).
    expect(result.code).toBe(3);
  });
});

/** Every file under `dir` with its bytes, mtime and mode, to prove that nothing changed. */
function snapshot(dir: string): Map<string, { bytes: string; mtimeMs: number; mode: number }> {
  const files = new Map<string, { bytes: string; mtimeMs: number; mode: number }>();
  for (const name of readdirSync(dir, { recursive: true }).map(String).sort()) {
    const path = join(dir, name);
    const stat = statSync(path);
    if (!stat.isFile()) continue;
    files.set(name, {
      bytes: readFileSync(path).toString('base64'),
      mtimeMs: stat.mtimeMs,
      mode: stat.mode,
    });
  }
  return files;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
