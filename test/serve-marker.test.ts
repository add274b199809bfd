/**
 * The serve marker (`<db>.serve.pid`): a marker left by a killed server must not block `serve`
 * or `restore` once its pid belongs to another process (the same user's or another user's),
 * a failed start must not leave one, and the staleness rules hold for each field.
 */
import { describe, expect, test } from 'bun:test';
import { chownSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  formatServeMarker,
  isMarkerLive,
  ownServeMarker,
  parseServeMarker,
  serveMarkerPath,
} from '../src/backup/serve-marker.ts';
import {
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
      expect(serve.stderr.trim().split('\n')).toHaveLength(1);
      expect(existsSync(marker)).toBe(false);
    } finally {
      squatter.stop(true);
    }
  });
});

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
