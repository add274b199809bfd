import type { Database } from 'bun:sqlite';
import { describe, expect, test } from 'bun:test';
import { readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ServiceUnavailableError } from '../errors.ts';
import { tempDir } from '../../test/harness.ts';
import { openDatabase } from './client.ts';
import { createLogger } from '../log/logger.ts';
import { WriteEngine, type WriteEngineOptions } from './write-engine.ts';

/** The change lane of an engine on `sqlite` (records settle at COMMIT: no WAL path). */
function changeLane(sqlite: Database, options: Partial<WriteEngineOptions> = {}): WriteEngine {
  return new WriteEngine(sqlite, {
    logger: createLogger({ level: 'silent', format: 'json' }),
    walPath: null,
    ...options,
  });
}

function setup(dir: string) {
  const sqlite = openDatabase(join(dir, 'q.db'), { synchronous: 'full', busyTimeoutMs: 1000 });
  sqlite.run('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
  const insert = sqlite.prepare('INSERT INTO t (v) VALUES (?)');
  const count = () => (sqlite.query('SELECT count(*) AS n FROM t').get() as { n: number }).n;
  return { sqlite, insert, count };
}

describe('WriteEngine change lane (group commit)', () => {
  test('concurrent jobs share one transaction and settle only after it commits', async () => {
    using dir = tempDir();
    const { sqlite, insert, count } = setup(dir.path);
    const queue = changeLane(sqlite);
    // total_changes() does not reset per transaction; the WAL frame count does grow per commit,
    // so count commits through the data_version a second connection observes.
    const observer = openDatabase(join(dir.path, 'q.db'), {
      synchronous: 'full',
      busyTimeoutMs: 1000,
    });
    const version = () =>
      (observer.query('PRAGMA data_version').get() as { data_version: number }).data_version;
    const before = version();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => queue.run(() => insert.run(`v${i}`).lastInsertRowid)),
    );
    expect(new Set(results).size).toBe(50);
    expect(count()).toBe(50);
    expect(version() - before).toBe(1); // one commit for all 50 jobs
    observer.close();
    await queue.close();
    sqlite.close();
  });

  test('a failing job is rolled back alone; the rest of its batch commits', async () => {
    using dir = tempDir();
    const { sqlite, insert, count } = setup(dir.path);
    const queue = changeLane(sqlite);
    const outcomes = await Promise.allSettled([
      queue.run(() => insert.run('a')),
      queue.run(() => {
        insert.run('half-done');
        throw new Error('job failed');
      }),
      queue.run(() => insert.run('b')),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason.message).toBe('job failed');
    expect(sqlite.query('SELECT v FROM t ORDER BY id').all()).toEqual([{ v: 'a' }, { v: 'b' }]);
    expect(count()).toBe(2);
    await queue.close();
    sqlite.close();
  });

  test('when the commit cannot happen, every job of the batch fails with 503 and nothing is kept', async () => {
    using dir = tempDir();
    const { sqlite, insert, count } = setup(dir.path);
    const failures: unknown[] = [];
    const queue = changeLane(sqlite, { onCommitFailure: (e) => failures.push(e) });
    sqlite.run('PRAGMA query_only = ON');
    const outcomes = await Promise.allSettled([
      queue.run(() => insert.run('x')),
      queue.run(() => 42),
    ]);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(ServiceUnavailableError);
    }
    expect(failures.length).toBeGreaterThan(0);
    sqlite.run('PRAGMA query_only = OFF');
    expect(count()).toBe(0);
    expect(await queue.run(() => insert.run('after').changes)).toBe(1);
    await queue.close();
    sqlite.close();
  });

  test('while another connection holds the write lock, jobs wait off the event loop', async () => {
    using dir = tempDir();
    const { sqlite, insert, count } = setup(dir.path);
    const queue = changeLane(sqlite);
    const other = openDatabase(join(dir.path, 'q.db'), { synchronous: 'full', busyTimeoutMs: 0 });
    other.run('BEGIN IMMEDIATE');
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    let settled = false;
    const job = queue.run(() => insert.run('waited').changes).finally(() => (settled = true));
    await Bun.sleep(200);
    // Waiting in SQLite's busy handler would have frozen the loop: no ticks, no sleep's end.
    expect(settled).toBe(false);
    expect(ticks).toBeGreaterThanOrEqual(10);
    const later = queue.run(() => insert.run('joined').changes);
    other.run('COMMIT');
    expect(await Promise.all([job, later])).toEqual([1, 1]);
    clearInterval(ticker);
    expect(count()).toBe(2);
    other.close();
    await queue.close();
    sqlite.close();
  });

  test('past the busy timeout the waiting batch fails with 503; the freed lock is taken again', async () => {
    using dir = tempDir();
    const sqlite = openDatabase(join(dir.path, 'q.db'), {
      synchronous: 'full',
      busyTimeoutMs: 100,
    });
    sqlite.run('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
    const failures: unknown[] = [];
    const queue = changeLane(sqlite, { onCommitFailure: (e) => failures.push(e) });
    const other = openDatabase(join(dir.path, 'q.db'), { synchronous: 'full', busyTimeoutMs: 0 });
    other.run('BEGIN IMMEDIATE');
    const started = performance.now();
    const job = queue.run(() => sqlite.run("INSERT INTO t (v) VALUES ('x')").changes);
    await expect(job).rejects.toBeInstanceOf(ServiceUnavailableError);
    expect(performance.now() - started).toBeGreaterThanOrEqual(100);
    expect(String(failures[0])).toContain('busy for more than 100 ms');
    // The connection's own busy_timeout is intact for everything else.
    expect(sqlite.query('PRAGMA busy_timeout').get()).toEqual({ timeout: 100 });
    other.run('COMMIT');
    expect(await queue.run(() => sqlite.run("INSERT INTO t (v) VALUES ('y')").changes)).toBe(1);
    expect(sqlite.query('SELECT v FROM t').all()).toEqual([{ v: 'y' }]);
    other.close();
    await queue.close();
    sqlite.close();
  });

  test('a backlog waits as long as each job may, not a busy timeout per batch', async () => {
    using dir = tempDir();
    const sqlite = openDatabase(join(dir.path, 'q.db'), {
      synchronous: 'full',
      busyTimeoutMs: 100,
    });
    const queue = changeLane(sqlite, { maxBatch: 2 });
    const other = openDatabase(join(dir.path, 'q.db'), { synchronous: 'full', busyTimeoutMs: 0 });
    other.run('BEGIN IMMEDIATE');
    const started = performance.now();
    const failedAt = (job: Promise<unknown>) =>
      job.then(
        () => Number.NaN,
        () => performance.now() - started,
      );
    const early = Array.from({ length: 5 }, () => failedAt(queue.run(() => 1)));
    await Bun.sleep(60);
    const late = failedAt(queue.run(() => 2));
    const earlyTimes = await Promise.all(early);
    // All five failed after their own 100 ms, together: not one batch of two per 100 ms.
    for (const t of earlyTimes) expect(t).toBeGreaterThanOrEqual(100);
    expect(Math.max(...earlyTimes)).toBeLessThan(150);
    expect(await late).toBeGreaterThanOrEqual(160);
    other.run('COMMIT');
    expect(await queue.run(() => 3)).toBe(3);
    other.close();
    await queue.close();
    sqlite.close();
  });

  test('close during a wait for the lock commits the queued jobs once it is free', async () => {
    using dir = tempDir();
    const { sqlite, insert, count } = setup(dir.path);
    const queue = changeLane(sqlite);
    const other = openDatabase(join(dir.path, 'q.db'), { synchronous: 'full', busyTimeoutMs: 0 });
    other.run('BEGIN IMMEDIATE');
    const job = queue.run(() => insert.run('queued').changes);
    await Bun.sleep(20);
    let closed = false;
    const closing = queue.close().then(() => (closed = true));
    await Bun.sleep(50);
    expect(closed).toBe(false);
    other.run('COMMIT');
    await closing;
    expect(await job).toBe(1);
    expect(count()).toBe(1);
    other.close();
    sqlite.close();
  });

  test('close flushes queued jobs and refuses new ones', async () => {
    using dir = tempDir();
    const { sqlite, insert, count } = setup(dir.path);
    const queue = changeLane(sqlite);
    const pending = queue.run(() => insert.run('last'));
    await queue.close();
    await pending;
    expect(count()).toBe(1);
    await expect(queue.run(() => 1)).rejects.toBeInstanceOf(ServiceUnavailableError);
    sqlite.close();
  });
});

describe('WriteEngine savepoints', () => {
  /** Unlinked temporary files this process holds open (where SQLite spills its journals). */
  const unlinkedTempFiles = () =>
    readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).endsWith('(deleted)');
      } catch {
        return false; // closed meanwhile
      }
    }).length;

  test('jobs that rewrite many pages keep their savepoint journal in memory, not in a temp file', async () => {
    using dir = tempDir();
    const { sqlite, insert } = setup(dir.path);
    // ~1 MiB of rows that each job rewrites: every page a job changes is journaled for its
    // savepoint, far past SQLite's 64 KiB in-memory limit for a file-backed temp store.
    sqlite.transaction(() => {
      for (let i = 0; i < 250; i++) insert.run('x'.repeat(4000));
    })();
    const queue = changeLane(sqlite);
    const before = unlinkedTempFiles();
    const during = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        queue.run(() => {
          sqlite.run(`UPDATE t SET v = '${'y'.repeat(4000 - i)}'`);
          return unlinkedTempFiles();
        }),
      ),
    );
    expect(during).toEqual([before, before, before, before]);
    await queue.close();
    sqlite.close();
  });
});

describe('WriteEngine: both lanes', () => {
  test('changes and records wait for a busy lock together and both commit once it is free', async () => {
    using dir = tempDir();
    const { sqlite, insert, count } = setup(dir.path);
    const engine = changeLane(sqlite);
    const other = openDatabase(join(dir.path, 'q.db'), { synchronous: 'full', busyTimeoutMs: 0 });
    other.run('BEGIN IMMEDIATE');
    const settled: string[] = [];
    const change = engine.run(() => insert.run('change')).then(() => settled.push('change'));
    const record = engine
      .append(() => void insert.run('record'))
      .then(() => settled.push('record'));
    await Bun.sleep(100);
    expect(settled).toEqual([]);
    other.run('COMMIT');
    await Promise.all([change, record]);
    // Changes go first: a request's change never waits behind the audit entries of reads.
    expect(settled).toEqual(['change', 'record']);
    expect(count()).toBe(2);
    other.close();
    await engine.close();
    sqlite.close();
  });

  test('close waits for queued records as well as changes, then refuses both', async () => {
    using dir = tempDir();
    const { sqlite, insert, count } = setup(dir.path);
    const engine = changeLane(sqlite);
    const record = engine.append(() => void insert.run('record'));
    const change = engine.run(() => insert.run('change'));
    await engine.close();
    await Promise.all([record, change]);
    expect(count()).toBe(2);
    await expect(engine.append(() => {})).rejects.toBeInstanceOf(ServiceUnavailableError);
    await expect(engine.run(() => 1)).rejects.toBeInstanceOf(ServiceUnavailableError);
    sqlite.close();
  });
});
