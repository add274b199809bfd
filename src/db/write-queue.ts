/** Group commit of change jobs: many writes in one transaction and one fsync. */
import type { Database } from 'bun:sqlite';
import { DatabaseBusyError, ServiceUnavailableError } from '../errors.ts';
import { registerQueueDepth, reportCommit } from './commit-observer.ts';
import { expiredCount, lockBusyTooLong, rollbackIfOpen, WriteLock } from './write-lock.ts';

/** A unit of work run inside the shared write transaction. Synchronous: bun:sqlite is. */
export type WriteJob<T> = () => T;

type Pending = {
  job: WriteJob<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  /** performance.now() when queued: how long it may still wait for the write lock. */
  queuedAt: number;
};

export type WriteQueueOptions = {
  /** Jobs per transaction at most; a larger burst is split across consecutive transactions. */
  maxBatch?: number;
  /** Told about a failed commit (the jobs themselves are rejected with a 503-class error). */
  onCommitFailure?: (error: unknown) => void;
};

/**
 * Group commit. Every job queued during one turn of the event loop runs in a single
 * `BEGIN IMMEDIATE … COMMIT`, each inside its own SAVEPOINT, and its promise settles only after
 * the COMMIT has returned — so a caller that awaits `run` knows its change (and its audit
 * entry) is durable, while N concurrent requests pay for one fsync instead of N.
 *
 * A job that throws is rolled back alone (its savepoint) and its promise rejects with that
 * error; the others still commit. If BEGIN or COMMIT fails, every job of the batch rejects with
 * {@link ServiceUnavailableError} and nothing of the batch is kept (fail closed). While another
 * process holds the write lock the batch waits on a timer ({@link WriteLock}), not in SQLite's
 * busy handler, so the event loop keeps serving; past the connection's `busy_timeout` it fails.
 */
export class WriteQueue {
  private pending: Pending[] = [];
  private scheduled = false;
  private closed = false;
  private idle: Promise<void> = Promise.resolve();
  private markIdle: () => void = () => {};
  private readonly maxBatch: number;
  private readonly lock: WriteLock;

  constructor(
    private readonly sqlite: Database,
    private readonly options: WriteQueueOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 512;
    this.lock = new WriteLock(sqlite);
    registerQueueDepth(sqlite, 'writes', () => this.pending.length);
  }

  /** Queues `job` for the next group commit and resolves with its result once committed. */
  run<T>(job: WriteJob<T>): Promise<T> {
    if (this.closed)
      return Promise.reject(new ServiceUnavailableError('The server is shutting down'));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({
        job,
        resolve: resolve as (value: unknown) => void,
        reject,
        queuedAt: performance.now(),
      });
      this.schedule();
    });
  }

  /** Stops accepting jobs and waits for those already queued to commit. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.pending.length > 0) this.schedule();
    await this.idle;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.idle = new Promise((resolve) => (this.markIdle = resolve));
    // setImmediate runs after the I/O callbacks of this turn, so requests that arrived together
    // share one transaction.
    setImmediate(() => this.flush());
  }

  private flush(): void {
    while (this.pending.length > 0) {
      let began: boolean;
      try {
        began = this.lock.tryBegin();
      } catch (error) {
        this.failBatch(this.pending.splice(0, this.maxBatch), error);
        continue;
      }
      if (!began) {
        // Another process holds the write lock: wait for it off the event loop. Jobs stay
        // queued in order (later ones join them) and `scheduled` stays set until all are done;
        // each job fails once it has waited longer than the connection's busy_timeout.
        const expired = this.pending.splice(0, expiredCount(this.pending, this.lock));
        if (expired.length > 0) {
          this.failBatch(expired, lockBusyTooLong(this.lock.waitLimitMs), new DatabaseBusyError());
          continue;
        }
        setTimeout(() => this.flush(), this.lock.nextDelay());
        return;
      }
      this.commitBatch(this.pending.splice(0, this.maxBatch));
    }
    this.scheduled = false;
    this.markIdle();
  }

  /** Runs `batch` in the transaction {@link flush} has just begun, and commits it. */
  private commitBatch(batch: Pending[]): void {
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    for (const item of batch) {
      this.sqlite.run('SAVEPOINT job');
      try {
        const value = item.job();
        this.sqlite.run('RELEASE job');
        outcomes.push({ ok: true, value });
      } catch (error) {
        try {
          this.sqlite.run('ROLLBACK TO job');
          this.sqlite.run('RELEASE job');
        } catch (rollbackError) {
          rollbackIfOpen(this.sqlite);
          this.failBatch(batch, rollbackError);
          return;
        }
        outcomes.push({ ok: false, error });
      }
    }
    try {
      this.sqlite.run('COMMIT');
    } catch (error) {
      rollbackIfOpen(this.sqlite);
      this.failBatch(batch, error);
      return;
    }
    reportCommit(this.sqlite, 'writes', batch.length, batch[0]!.queuedAt, true);
    batch.forEach((item, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) item.resolve(outcome.value);
      else item.reject(outcome.error);
    });
  }

  private failBatch(
    batch: Pending[],
    cause: unknown,
    error = new ServiceUnavailableError('The database cannot accept writes right now'),
  ): void {
    this.options.onCommitFailure?.(cause);
    if (batch.length > 0)
      reportCommit(this.sqlite, 'writes', batch.length, batch[0]!.queuedAt, false);
    // Kept for classification (e.g. a full disk: src/db/disk-full.ts), never shown to clients.
    error.cause ??= cause;
    for (const item of batch) item.reject(error);
  }
}
