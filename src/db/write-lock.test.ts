import { describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { tempDir } from '../../test/harness.ts';
import { openDatabase } from './client.ts';
import { WriteLock } from './write-lock.ts';

describe('WriteLock', () => {
  test('busy: false at once, the busy_timeout kept; free: begins; delays grow to 16 ms', () => {
    using dir = tempDir();
    const path = join(dir.path, 'l.db');
    const sqlite = openDatabase(path, { synchronous: 'full', busyTimeoutMs: 3000 });
    const other = openDatabase(path, { synchronous: 'full', busyTimeoutMs: 0 });
    const lock = new WriteLock(sqlite);
    expect(lock.waitLimitMs).toBe(3000);
    other.run('BEGIN IMMEDIATE');
    const started = performance.now();
    expect(lock.tryBegin()).toBe(false);
    expect(performance.now() - started).toBeLessThan(100); // did not sleep in the busy handler
    expect(sqlite.query('PRAGMA busy_timeout').get()).toEqual({ timeout: 3000 });
    expect(Array.from({ length: 7 }, () => lock.nextDelay())).toEqual([1, 2, 4, 8, 16, 16, 16]);
    other.run('COMMIT');
    expect(lock.tryBegin()).toBe(true);
    expect(sqlite.inTransaction).toBe(true);
    sqlite.run('COMMIT');
    expect(lock.nextDelay()).toBe(1); // a success starts the next wait afresh
    expect(lock.waitedTooLong(0, 2999)).toBe(false);
    expect(lock.waitedTooLong(0, 3000)).toBe(true);
    other.close();
    sqlite.close();
  });

  test('another failure throws, restores the busy_timeout and resets the delays', () => {
    using dir = tempDir();
    const path = join(dir.path, 'l.db');
    openDatabase(path, { synchronous: 'full', busyTimeoutMs: 0 }).close();
    const sqlite = openDatabase(path, { synchronous: 'full', busyTimeoutMs: 250 });
    const lock = new WriteLock(sqlite);
    lock.nextDelay();
    lock.nextDelay();
    sqlite.run('BEGIN'); // already in a transaction: BEGIN IMMEDIATE fails, and not as busy
    expect(() => lock.tryBegin()).toThrow(/within a transaction/);
    sqlite.run('COMMIT');
    expect(sqlite.query('PRAGMA busy_timeout').get()).toEqual({ timeout: 250 });
    expect(lock.nextDelay()).toBe(1);
    sqlite.close();
  });
});
