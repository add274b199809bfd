import { describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { ServiceUnavailableError } from '../errors.ts';
import { tempDir } from '../../test/harness.ts';
import { openDatabase } from './client.ts';
import { WriteQueue } from './write-queue.ts';

function setup(dir: string) {
  const sqlite = openDatabase(join(dir, 'q.db'), { synchronous: 'full', busyTimeoutMs: 1000 });
  sqlite.run('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
  const insert = sqlite.prepare('INSERT INTO t (v) VALUES (?)');
  const count = () => (sqlite.query('SELECT count(*) AS n FROM t').get() as { n: number }).n;
  return { sqlite, insert, count };
}

describe('WriteQueue (group commit)', () => {
  test('concurrent jobs share one transaction and settle only after it commits', async () => {
    using dir = tempDir();
    const { sqlite, insert, count } = setup(dir.path);
    const queue = new WriteQueue(sqlite);
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
    const queue = new WriteQueue(sqlite);
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
    const queue = new WriteQueue(sqlite, { onCommitFailure: (e) => failures.push(e) });
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

  test('close flushes queued jobs and refuses new ones', async () => {
    using dir = tempDir();
    const { sqlite, insert, count } = setup(dir.path);
    const queue = new WriteQueue(sqlite);
    const pending = queue.run(() => insert.run('last'));
    await queue.close();
    await pending;
    expect(count()).toBe(1);
    await expect(queue.run(() => 1)).rejects.toBeInstanceOf(ServiceUnavailableError);
    sqlite.close();
  });
});
