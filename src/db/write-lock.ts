/** The SQLite write lock: taking it without blocking the event loop, and how long to wait. */
import { SQLiteError, type Database } from 'bun:sqlite';

/** Longest pause between two attempts, so that a freed lock is taken again quickly. */
const MAX_RETRY_DELAY_MS = 16;

/**
 * SQLite's write lock (`BEGIN IMMEDIATE`) for the server's queues, taken without waiting in
 * SQLite's busy handler: that handler sleeps on the calling thread, which is the event loop, so
 * every request would stall for as long as another process (a CLI command) held the lock. A
 * queue instead tries the lock, and while it is busy retries on a timer ({@link nextDelay}: 1,
 * 2, 4 … 16 ms apart) as the server keeps serving; it fails each piece of work that has waited
 * longer than the connection's own `busy_timeout` ({@link waitLimitMs}), as SQLite would have.
 */
export class WriteLock {
  /** The connection's `busy_timeout` (ms), restored after each attempt. */
  readonly waitLimitMs: number;
  private attempts = 0;

  constructor(private readonly sqlite: Database) {
    const row = sqlite.query<{ timeout: number }, []>('PRAGMA busy_timeout').get();
    this.waitLimitMs = row?.timeout ?? 0;
  }

  /**
   * Runs `BEGIN IMMEDIATE` if the write lock is free: true when it began, false when another
   * connection holds the lock (any `SQLITE_BUSY*` code). Any other failure throws.
   */
  tryBegin(): boolean {
    this.sqlite.run('PRAGMA busy_timeout = 0');
    try {
      this.sqlite.run('BEGIN IMMEDIATE');
    } catch (error) {
      if (isDatabaseBusy(error)) return false;
      this.attempts = 0;
      throw error;
    } finally {
      this.sqlite.run(`PRAGMA busy_timeout = ${this.waitLimitMs}`);
    }
    this.attempts = 0;
    return true;
  }

  /** After {@link tryBegin} returned false: how long (ms) to wait before the next attempt. */
  nextDelay(): number {
    return Math.min(MAX_RETRY_DELAY_MS, 2 ** this.attempts++);
  }

  /** True when work queued at `queuedAt` (performance.now()) has waited past the limit. */
  waitedTooLong(queuedAt: number, now: number = performance.now()): boolean {
    return now - queuedAt >= this.waitLimitMs;
  }
}

/**
 * Whether `error` (or an error in its `cause` chain) is SQLite's SQLITE_BUSY, any extended code
 * included: another connection held the lock; nothing is wrong with the database.
 */
export function isDatabaseBusy(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (e instanceof SQLiteError && e.code?.startsWith('SQLITE_BUSY')) return true;
  }
  return false;
}

/** The error the queues fail their work with when the lock stayed busy too long. */
export function lockBusyTooLong(waitLimitMs: number): Error {
  return new Error(`the database write lock stayed busy for more than ${waitLimitMs} ms`);
}

/**
 * How many items at the head of `queue` (oldest first, as queued) have waited past the lock's
 * limit: they are a prefix, since `queuedAt` only grows along the queue.
 */
export function expiredCount(
  queue: readonly { queuedAt: number }[],
  lock: WriteLock,
  now: number = performance.now(),
): number {
  const firstWaiting = queue.findIndex((item) => !lock.waitedTooLong(item.queuedAt, now));
  return firstWaiting === -1 ? queue.length : firstWaiting;
}

/**
 * Rolls back the connection's open transaction, if any. A failing ROLLBACK is ignored: the
 * connection has then already rolled back (e.g. SQLITE_FULL aborts the transaction itself), and
 * the caller reports the error that got it here.
 */
export function rollbackIfOpen(sqlite: Database): void {
  try {
    if (sqlite.inTransaction) sqlite.run('ROLLBACK');
  } catch {
    // Already rolled back.
  }
}
