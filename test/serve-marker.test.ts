/**
 * The serve marker (`<db>.serve.pid`): a marker left by a killed server must not block `serve`
 * or `restore` once its pid belongs to another process (the same user's or another user's),
 * a failed start must not leave one, servers claiming it at the same moment cannot both win,
 * a release removes only its own marker, and the staleness rules hold for each field.
 */
import { Database } from 'bun:sqlite';
import { describe, expect, test } from 'bun:test';
import { chownSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  claimServeMarker,
  formatServeMarker,
  isMarkerLive,
  ownServeMarker,
  parseServeMarker,
  serveMarkerPath,
} from '../src/backup/serve-marker.ts';
import {
  REPO_ROOT,
  cliCommand,
  freePort,
  pinnedEnv,
  runCli,
  tempDir,
  waitForHealthy,
  writeConfig,
} from './harness.ts';

/** An instance with a backup, served on a port of its own. */
async function instanceWithBackup(dir: string) {
  const port = freePort();
  const configPath = writeConfig(dir, `[server]\nport = ${port}\n`);
  expect((await runCli(['init', '--config', configPath])).exitCode).toBe(0);
  const backupFile = join(dir, 'snapshot.db');
  expect((await runCli(['backup', backupFile, '--config', configPath])).exitCode).toBe(0);
  const dbPath = join(dir, 'data/secryn.db');
  return { port, configPath, backupFile, dbPath, marker: serveMarkerPath(dbPath) };
}

function spawnServe(configPath: string, cwd: string) {
  return Bun.spawn([...cliCommand(), 'serve', '--config', configPath], {
    cwd,
    env: pinnedEnv(),
    stdout: 'pipe',
    stderr: 'pipe',
  });
}

/** The effective uid /proc shows for `pid`. */
function uidOf(pid: number): number {
  return Number(/^Uid:\s+\d+\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

/**
 * A live process of another user than the one owning `marker` (chowning the marker away when
 * this test runs as root, since every process may then be root's): a reused pid that kill(2)
 * answers EPERM to, as under the shipped unit.
 */
function otherUsersProcess(marker: string): number {
  const me = process.geteuid!();
  if (me === 0) {
    const pid = 1;
    const owner = uidOf(pid) === 65534 ? 65533 : 65534;
    chownSync(marker, owner, owner);
    return pid;
  }
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      if (uidOf(pid) !== me) return pid;
    } catch {
      // gone, or hidden
    }
  }
  throw new Error('no process of another user is visible in /proc');
}

/** Replaces the pid line of the marker, keeping the rest: the pid now names `pid`. */
function reusePid(marker: string, pid: number): void {
  const [, ...rest] = readFileSync(marker, 'utf8').split('\n');
  writeFileSync(marker, [String(pid), ...rest].join('\n'));
}

describe('serve marker', () => {
  for (const reuser of ['this user', 'another user'] as const) {
    test(`a killed server's marker whose pid now belongs to a process of ${reuser} blocks neither restore nor serve`, async () => {
      using dir = tempDir();
      const { port, configPath, backupFile, marker } = await instanceWithBackup(dir.path);
      const killed = spawnServe(configPath, dir.path);
      await waitForHealthy(`http://127.0.0.1:${port}/v1/health`);
      killed.kill('SIGKILL'); // as the OOM killer does: no chance to remove the marker
      await killed.exited;
      expect(existsSync(marker)).toBe(true);
      // The pid is reused: by this test process (same user, later start) or another user's.
      reusePid(marker, reuser === 'this user' ? process.pid : otherUsersProcess(marker));

      const restore = await runCli(['restore', backupFile, '--config', configPath]);
      expect(restore.stderr).toBe('');
      expect(restore.exitCode).toBe(0);

      const serve = spawnServe(configPath, dir.path);
      await waitForHealthy(`http://127.0.0.1:${port}/v1/health`);
      expect(parseServeMarker(readFileSync(marker, 'utf8'))?.pid).toBe(serve.pid);
      serve.kill('SIGTERM');
      expect(await serve.exited).toBe(0);
      expect(existsSync(marker)).toBe(false);
    });
  }

  test('serve that cannot listen (port in use) exits 1 and leaves no marker', async () => {
    using dir = tempDir();
    const { port, configPath, marker } = await instanceWithBackup(dir.path);
    const squatter = Bun.serve({ hostname: '127.0.0.1', port, fetch: () => new Response() });
    try {
      const serve = await runCli(['serve', '--config', configPath]);
      expect(serve.exitCode).toBe(1);
      expect(serve.stderr.trim()).toMatch(
        new RegExp(
          `^secryn: cannot listen on [^ ]+:${port} \\(server\\.host, server\\.port\\): ` +
            'the port is in use by another process$',
        ),
      );
      expect(existsSync(marker)).toBe(false);
    } finally {
      squatter.stop(true);
    }
  });
});

describe('serve marker claims', () => {
  test('of servers starting at the same moment, exactly one claims the marker, over a stale one too', async () => {
    using dir = tempDir();
    const { dbPath, marker } = await instanceWithBackup(dir.path);
    for (let round = 0; round < 6; round++) {
      // Every other round starts from a stale marker, which all of them find and replace.
      if (round % 2 === 1) writeFileSync(marker, '999999999\n');
      const claimers = await startClaimers(dir.path, dbPath, 6, round);
      const outcomes = await claimers.release();
      expect(outcomes.filter((o) => o === 'claimed')).toHaveLength(1);
      expect(outcomes.filter((o) => o.startsWith('refused: another secryn serve'))).toHaveLength(5);
      expect(existsSync(marker)).toBe(false); // the winner released it
    }
    // 36 processes in all: on a loaded 2-core machine that alone can take longer than 5 s.
  }, 30_000);

  test('of real serve processes started together on one database, one serves and the rest exit 1', async () => {
    using dir = tempDir();
    const { configPath, marker } = await instanceWithBackup(dir.path);
    const base = readFileSync(configPath, 'utf8');
    const ports = [freePort(), freePort(), freePort()];
    const procs = ports.map((port, i) => {
      const config = join(dir.path, `serve-${i}.toml`);
      writeFileSync(config, base.replace(/^port = \d+$/m, `port = ${port}`));
      return spawnServe(config, dir.path);
    });
    // The losers exit on their own; the winner keeps serving until told to stop.
    const deadline = Date.now() + 10_000;
    while (procs.filter((p) => p.exitCode !== null).length < 2 && Date.now() < deadline) {
      await Bun.sleep(25);
    }
    const losers = procs.filter((p) => p.exitCode !== null);
    expect(losers.map((p) => p.exitCode)).toEqual([1, 1]);
    for (const loser of losers) {
      expect(await new Response(loser.stderr).text()).toMatch(/^secryn: another secryn serve/);
    }
    const winner = procs.findIndex((p) => p.exitCode === null);
    await waitForHealthy(`http://127.0.0.1:${ports[winner]}/v1/health`);
    const survivor = procs[winner]!;
    expect(parseServeMarker(readFileSync(marker, 'utf8'))?.pid).toBe(survivor.pid);
    survivor.kill('SIGTERM');
    expect(await survivor.exited).toBe(0);
    expect(existsSync(marker)).toBe(false);
  }, 20_000);

  test("release leaves a marker that is no longer this process's", () => {
    using dir = tempDir();
    const dbPath = join(dir.path, 'secryn.db');
    const sqlite = new Database(dbPath);
    try {
      const release = claimServeMarker(dbPath, sqlite);
      // Someone replaced it (by hand, or a server that judged ours stale): not ours to remove.
      writeFileSync(serveMarkerPath(dbPath), '999999999\n');
      release();
      expect(readFileSync(serveMarkerPath(dbPath), 'utf8')).toBe('999999999\n');
    } finally {
      sqlite.close();
    }
  });
});

/**
 * Starts `count` processes that each open the database, wait for one signal file and then call
 * claimServeMarker at the same moment, report the outcome and hold what they claimed until
 * released. `release()` lets them go and returns what each reported.
 */
async function startClaimers(dir: string, dbPath: string, count: number, round: number) {
  const go = join(dir, `go-${round}`);
  const done = join(dir, `done-${round}`);
  const code = `
    const { Database } = require('bun:sqlite');
    const { existsSync, writeSync } = require('node:fs');
    const { claimServeMarker } = require(${JSON.stringify(join(REPO_ROOT, 'src/backup/serve-marker.ts'))});
    const [dbPath, go, done] = process.argv.slice(-3);
    const sqlite = new Database(dbPath);
    sqlite.run('PRAGMA busy_timeout = 5000');
    writeSync(1, 'ready\\n');
    while (!existsSync(go)) {}
    let release = () => {};
    let outcome;
    try {
      release = claimServeMarker(dbPath, sqlite);
      outcome = 'claimed';
    } catch (error) {
      outcome = 'refused: ' + error.message;
    }
    writeSync(1, outcome + '\\n');
    while (!existsSync(done)) {}
    release();
    sqlite.close();
  `;
  const procs = Array.from({ length: count }, () =>
    Bun.spawn([process.execPath, '-e', code, dbPath, go, done], { stdout: 'pipe' }),
  );
  const readers = procs.map((proc) => lineReader(proc.stdout));
  for (const next of readers) expect(await next()).toBe('ready');
  writeFileSync(go, '');
  const outcomes = await Promise.all(readers.map((next) => next()));
  return {
    async release() {
      writeFileSync(done, '');
      await Promise.all(procs.map((proc) => proc.exited));
      return outcomes;
    },
  };
}

/** Reads a child's stdout line by line. */
function lineReader(stream: ReadableStream<Uint8Array>): () => Promise<string> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  return async () => {
    while (!buffered.includes('\n')) {
      const chunk = await reader.read();
      if (chunk.done) throw new Error(`the claimer stopped early: ${buffered}`);
      buffered += decoder.decode(chunk.value, { stream: true });
    }
    const at = buffered.indexOf('\n');
    const line = buffered.slice(0, at);
    buffered = buffered.slice(at + 1);
    return line;
  };
}

describe('serve marker staleness rules', () => {
  const me = process.geteuid!();
  const own = ownServeMarker();

  test('the marker round-trips with the pid on its first line', () => {
    const text = formatServeMarker(own);
    expect(text.split('\n')[0]).toBe(String(process.pid));
    expect(parseServeMarker(text)).toEqual(own);
    expect(own.startTime).toMatch(/^\d+$/);
  });

  test('a live writer counts as live; another boot, start time or user does not', () => {
    expect(isMarkerLive(own, me)).toBe(true);
    expect(isMarkerLive({ ...own, startTime: String(Number(own.startTime) + 1) }, me)).toBe(false);
    expect(isMarkerLive(own, me === 65534 ? 65533 : 65534)).toBe(false);
    if (own.bootId !== undefined) {
      expect(isMarkerLive({ ...own, bootId: '00000000-0000-0000-0000-000000000000' }, me)).toBe(
        false,
      );
    }
  });

  test('an old one-line marker counts by its pid alone, and never names this process', () => {
    expect(isMarkerLive(parseServeMarker(`${process.ppid}\n`)!, uidOf(process.ppid))).toBe(true);
    expect(isMarkerLive(parseServeMarker('999999999\n')!, me)).toBe(false);
    expect(isMarkerLive(parseServeMarker(`${process.pid}\n`)!, me)).toBe(false);
    for (const junk of ['', '\n', 'not a pid\n', '-4\n', '1.5\n'])
      expect(parseServeMarker(junk)).toBeUndefined();
  });
});
