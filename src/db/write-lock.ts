import { SQLiteError, type Database } from 'bun:sqlite';

/** Longest pause between two attempts, so that a freed lock is taken again quickly. */
const MAX_RETRY_DELAY_MS = 16;

/**
 * SQLite's write lock (`BEGIN IMMEDIATE`) for the server's queues, taken without waiting in
 * SQLite's busy handler: that handler sleeps on the calling thread, which is the event loop, so
 * every request would stall for as long as another process (a CLI command) held the lock. Here
 * a busy lock is retried on a timer instead (1, 2, 4 … 16 ms apart) while the server keeps
 * serving, and given up after the connection's own `busy_timeout`, as SQLite would have done.
 */
export class WriteLock {
  /** The connection's `busy_timeout` (ms), restored after each attempt. */
  readonly waitLimitMs: number;
  private busySince: number | undefined;
  private attempts = 0;

  constructor(private readonly sqlite: Database) {
    const row = sqlite.query<{ timeout: number }, []>('PRAGMA busy_timeout').get();
    this.waitLimitMs = row?.timeout ?? 0;
  }

  /**
   * Runs `BEGIN IMMEDIATE` if the write lock is free: true when it began, false when another
   * connection holds the lock. Any other failure throws.
   */
  tryBegin(): boolean {
    this.sqlite.run('PRAGMA busy_timeout = 0');
    try {
      this.sqlite.run('BEGIN IMMEDIATE');
    } catch (error) {
      if (error instanceof SQLiteError && error.code === 'SQLITE_BUSY') return false;
      throw error;
    } finally {
      this.sqlite.run(`PRAGMA busy_timeout = ${this.waitLimitMs}`);
    }
    this.busySince = undefined;
    this.attempts = 0;
    return true;
  }

  /**
   * After {@link tryBegin} returned false: the delay (ms) before the next attempt, or null once
   * the lock has been busy for longer than the wait limit (the caller then fails its work, and
   * the next attempt starts a new wait).
   */
  retryDelay(now: number = performance.now()): number | null {
    this.busySince ??= now;
    if (now - this.busySince >= this.waitLimitMs) {
      this.busySince = undefined;
      this.attempts = 0;
      return null;
    }
    return Math.min(MAX_RETRY_DELAY_MS, 2 ** this.attempts++);
  }
}

/** The error the queues fail their work with when the lock stayed busy too long. */
export function lockBusyTooLong(waitLimitMs: number): Error {
  return new Error(`the database write lock stayed busy for more than ${waitLimitMs} ms`);
}
