/**
 * Whether the database's disk is full, as learned from failed and successful writes: health
 * reports it (503 `reason: disk_full`), the log says it once on entering and once on leaving
 * the state (not per request), and the first write that succeeds again clears it, so the
 * instance recovers by itself when space returns.
 */
import { SQLiteError, type Database } from 'bun:sqlite';
import { ServiceUnavailableError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { perConnection } from './per-connection.ts';

/**
 * A write failed because the disk is full. Thrown instead of the generic 503 so that callers
 * which log per request can stay quiet: {@link DiskSpace} has said it once. The public message
 * names no path or internals.
 */
export class DiskFullError extends ServiceUnavailableError {
  constructor(cause?: unknown) {
    super('The service cannot store anything right now');
    this.cause = cause;
  }
}

/**
 * True when `error`, or an error in its `cause` chain, is SQLite's SQLITE_FULL (SQLite maps a
 * write's ENOSPC to it) or a file system's ENOSPC/EDQUOT (e.g. the WAL sync).
 */
export function isDiskFull(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof DiskFullError) return true;
    if (e instanceof SQLiteError && e.code?.startsWith('SQLITE_FULL')) return true;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return true;
  }
  return false;
}

/** The disk state of one database connection's file; see {@link diskSpaceFor}. */
export class DiskSpace {
  private fullSince: number | null = null;
  private failures = 0;

  constructor(private readonly logger: Logger) {}

  /** True while the last write ended with a full disk. */
  get isFull(): boolean {
    return this.fullSince !== null;
  }

  /**
   * Notes a failed write. Returns true when it failed for a full disk (logged on the first
   * such failure only), false for any other cause, which the caller reports itself.
   */
  failed(error: unknown): boolean {
    if (!isDiskFull(error)) return false;
    this.failures++;
    if (this.fullSince === null) {
      this.fullSince = Date.now();
      this.logger.error(
        'database disk is full: requests that must be audited answer 503 and health reports ' +
          'disk_full until space is freed (recovers by itself)',
        {},
        error instanceof Error ? error : undefined,
      );
    }
    return true;
  }

  /** Notes a write that committed: leaves the full state, saying so once. */
  succeeded(): void {
    if (this.fullSince === null) return;
    this.logger.warn('database disk has space again: writes resumed', {
      full_for_ms: Date.now() - this.fullSince,
      failed_writes: this.failures,
    });
    this.fullSince = null;
    this.failures = 0;
  }
}

/** The one {@link DiskSpace} of a connection (created on first use, with that caller's logger). */
export const diskSpaceFor = perConnection(
  (_sqlite: Database, logger: Logger): DiskSpace => new DiskSpace(logger),
);
