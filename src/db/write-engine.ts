/**
 * The one write engine of a connection: group commit for every write the server makes, in two
 * lanes that share one write lock, one lock-wait policy, one disk-full state and the one place
 * that decides when a commit is durable (fsync).
 *
 * - **Changes** ({@link WriteEngine.run}): jobs that change state (with their events, idempotent
 *   responses and audit entries: src/changes/). Every job queued during one turn of the event
 *   loop runs in a single `BEGIN IMMEDIATE … COMMIT`, each inside its own SAVEPOINT, and its
 *   promise settles only after the COMMIT has returned — durable at the connection's
 *   `synchronous` level — so N concurrent requests pay for one fsync instead of N. A job that
 *   throws is rolled back alone (its savepoint) and rejects with its error; the others commit.
 * - **Records** ({@link WriteEngine.append}): jobs that only append records that must be durable
 *   before a response but change nothing — the audit entries of reads, denials and errors. A
 *   batch is committed in one transaction; with `synchronous = FULL` that COMMIT runs at NORMAL
 *   (WAL frames written without fsync) and the WAL is then synced on the thread pool, the
 *   batch's promises settling only after that sync: exactly the sync FULL performs inside
 *   COMMIT, so an answered request's record is as durable as under FULL, while the event loop
 *   serves other requests. One sync runs at a time; records that arrive meanwhile are committed
 *   together once it ends. Under NORMAL a batch settles right after COMMIT, as chosen.
 *
 * Lock waiting: while another process (a CLI command) holds the write lock, queued work waits
 * on a timer ({@link WriteLock}), not in SQLite's busy handler (which would stall the event
 * loop); each job fails once it has waited longer than the connection's `busy_timeout` — a
 * change with {@link DatabaseBusyError}, a record with 503; a record queued with
 * `waitForLock: false` (its request already spent the wait) fails as soon as the lock is busy.
 *
 * Fail closed: when BEGIN or COMMIT fails, every job of the batch rejects (503) and nothing of
 * it is kept; a full disk is logged once ({@link DiskSpace}) and its records fail with
 * {@link DiskFullError}. When a WAL sync fails the kernel may already have dropped the unwritten
 * pages, so nothing later can be trusted: the record lane refuses everything until restart.
 * Both lanes run their transactions synchronously on one connection, so they never interleave.
 */
import type { Database, Statement } from 'bun:sqlite';
import { closeSync, fdatasync, openSync } from 'node:fs';
import { DatabaseBusyError, ServiceUnavailableError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { registerQueueDepth, reportCommit } from './commit-observer.ts';
import { DiskFullError, diskSpaceFor, type DiskSpace } from './disk-full.ts';
import { expiredCount, lockBusyTooLong, rollbackIfOpen, WriteLock } from './write-lock.ts';

/** A unit of work run inside the shared write transaction. Synchronous: bun:sqlite is. */
export type WriteJob<T> = () => T;

/** Makes the WAL file durable; injectable so tests can make the disk fail or stall. */
export type SyncWal = (walPath: string) => Promise<void>;

export type WriteEngineOptions = {
  /** Logs failed commits (a full disk once, through the connection's {@link DiskSpace}). */
  logger: Logger;
  /**
   * The WAL file to sync after a record batch, or null when records settle at COMMIT
   * (`synchronous = NORMAL`, or an in-memory database). See {@link walPathOf}.
   */
  walPath: string | null;
  /** Default {@link walSyncer}'s. */
  syncWal?: SyncWal;
  /** Change jobs per transaction at most; a larger burst is split. Default 512. */
  maxBatch?: number;
  /** Also told about each failed commit of changes (which the engine has logged already). */
  onCommitFailure?: (error: unknown) => void;
};

type Waiting = {
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  /** performance.now() when queued: how long it may still wait for the write lock. */
  queuedAt: number;
};
type Change = Waiting & { job: WriteJob<unknown> };
type Record = Waiting & { job: WriteJob<void>; waitForLock: boolean };
type Lane = 'changes' | 'records';

/** The WAL file whose sync makes records durable, or null when COMMIT alone decides. */
export function walPathOf(path: string, synchronous: 'full' | 'normal'): string | null {
  return synchronous === 'full' && path !== ':memory:' ? `${path}-wal` : null;
}

/**
 * `fdatasync` of the WAL on the thread pool, on a descriptor kept open: one round trip to the
 * pool per sync instead of three (open, sync, close), each of which would wait for a turn of a
 * busy event loop. The WAL keeps its inode while this process holds the database open (SQLite
 * deletes it only when the last connection closes), so the descriptor stays valid until
 * `close`. `fdatasync` is what SQLite itself uses for the WAL on Linux.
 */
export function walSyncer(): { sync: SyncWal; close(): void } {
  let fd: number | undefined;
  return {
    sync: (walPath) =>
      new Promise<void>((resolve, reject) => {
        try {
          fd ??= openSync(walPath, 'r');
        } catch (error) {
          reject(error);
          return;
        }
        fdatasync(fd, (error) => (error ? reject(error) : resolve()));
      }),
    close() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}

export class WriteEngine {
  private changes: Change[] = [];
  private records: Record[] = [];
  private scheduled = false;
  private waitingForLock = false;
  private syncing = false;
  private broken: unknown = null;
  private closed = false;
  private idle: Promise<void> = Promise.resolve();
  private markIdle: () => void = () => {};
  private busy = false;
  private readonly maxBatch: number;
  private readonly lock: WriteLock;
  private readonly diskSpace: DiskSpace;
  private readonly syncWal: SyncWal;
  private readonly closeSyncer: () => void;
  /**
   * The statements every change job runs, prepared once: `sqlite.run(sql)` compiles its SQL on
   * each call, which cost more than the savepoint itself (three per job).
   */
  private readonly savepoint: { open: Statement; release: Statement; rollbackTo: Statement };
  private readonly commitStatement: Statement;

  constructor(
    private readonly sqlite: Database,
    private readonly options: WriteEngineOptions,
  ) {
    this.maxBatch = options.maxBatch ?? 512;
    this.lock = new WriteLock(sqlite);
    this.diskSpace = diskSpaceFor(sqlite, options.logger);
    this.savepoint = {
      open: sqlite.prepare('SAVEPOINT job'),
      release: sqlite.prepare('RELEASE job'),
      rollbackTo: sqlite.prepare('ROLLBACK TO job'),
    };
    this.commitStatement = sqlite.prepare('COMMIT');
    // Metrics (src/metrics/): what waits for the next commit, per lane.
    registerQueueDepth(sqlite, 'writes', () => this.changes.length);
    registerQueueDepth(sqlite, 'audit', () => this.records.length);
    if (options.syncWal) {
      this.syncWal = options.syncWal;
      this.closeSyncer = () => {};
    } else {
      const syncer = walSyncer();
      this.syncWal = syncer.sync;
      this.closeSyncer = syncer.close;
    }
  }

  /** Queues a change for the next group commit; resolves with its result once committed. */
  run<T>(job: WriteJob<T>): Promise<T> {
    if (this.closed) return Promise.reject(shuttingDown());
    return new Promise<T>((resolve, reject) => {
      this.changes.push({
        job,
        resolve: resolve as (value: unknown) => void,
        reject,
        queuedAt: performance.now(),
      });
      this.schedule();
    });
  }

  /** True once a WAL sync failed: every later record fails until restart (readiness says so). */
  get isBroken(): boolean {
    return this.broken !== null;
  }

  /**
   * Queues a record (e.g. a read's audit entry) for the next record batch; resolves once it is
   * durable. With `waitForLock: false` it fails as soon as another process holds the lock.
   */
  append(job: WriteJob<void>, options: { waitForLock?: boolean } = {}): Promise<void> {
    if (this.broken !== null) return Promise.reject(recordsUnavailable());
    if (this.closed) return Promise.reject(shuttingDown());
    return new Promise<void>((resolve, reject) => {
      this.records.push({
        job,
        resolve: resolve as (value: unknown) => void,
        reject,
        queuedAt: performance.now(),
        waitForLock: options.waitForLock ?? true,
      });
      this.schedule();
    });
  }

  /** Stops accepting work, waits for what is queued to be durable and closes the WAL syncer. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.changes.length + this.records.length > 0) this.schedule();
    await this.idle;
    this.closeSyncer();
  }

  private schedule(): void {
    if (!this.busy) {
      this.busy = true;
      this.idle = new Promise((resolve) => (this.markIdle = resolve));
    }
    if (this.scheduled || this.waitingForLock) return;
    this.scheduled = true;
    // setImmediate runs after the I/O callbacks of this turn, so requests that arrived together
    // share one transaction.
    setImmediate(() => this.flush());
  }

  /** Records can be committed now: some are queued and no WAL sync is running. */
  private recordsReady(): boolean {
    return this.records.length > 0 && !this.syncing;
  }

  private flush(): void {
    this.scheduled = false;
    // The end of the wait for the lock flushes again.
    if (this.waitingForLock) return;
    for (;;) {
      const lane: Lane | null =
        this.changes.length > 0 ? 'changes' : this.recordsReady() ? 'records' : null;
      if (lane === null) break;
      let began: boolean;
      try {
        began = this.begin(lane);
      } catch (error) {
        if (lane === 'changes') this.failChanges(this.changes.splice(0, this.maxBatch), error);
        else this.failRecords(this.records.splice(0), error);
        continue;
      }
      if (!began) {
        if (this.waitForLock()) return;
        continue;
      }
      if (lane === 'changes') this.commitChanges(this.changes.splice(0, this.maxBatch));
      else this.commitRecords(this.records.splice(0));
    }
    if (!this.syncing) {
      this.busy = false;
      this.markIdle();
    }
  }

  /**
   * `BEGIN IMMEDIATE` for `lane`: false (nothing begun) when another process holds the lock. A
   * record batch whose durability the WAL sync provides begins at `synchronous = NORMAL`.
   */
  private begin(lane: Lane): boolean {
    const deferSync = lane === 'records' && this.options.walPath !== null;
    // Not prepared statements: SQLite applies this pragma when it compiles it.
    if (deferSync) this.sqlite.run('PRAGMA synchronous = NORMAL');
    let began = false;
    try {
      began = this.lock.tryBegin();
      return began;
    } finally {
      if (deferSync && !began) this.restoreSynchronous();
    }
  }

  /** The connection is shared: every commit on it but a record batch's stays FULL. */
  private restoreSynchronous(): void {
    this.sqlite.run('PRAGMA synchronous = FULL');
  }

  /**
   * Another process holds the write lock: fails what has waited too long and, if work is left,
   * retries on a timer (true). Later jobs join the queue meanwhile, in order.
   */
  private waitForLock(): boolean {
    const limit = lockBusyTooLong(this.lock.waitLimitMs);
    const expiredChanges = this.changes.splice(0, expiredCount(this.changes, this.lock));
    if (expiredChanges.length > 0) this.failChanges(expiredChanges, limit, new DatabaseBusyError());
    if (this.recordsReady()) {
      const expired = this.records.splice(0, expiredCount(this.records, this.lock));
      const unwaiting = this.records.filter((record) => !record.waitForLock);
      if (unwaiting.length > 0) this.records = this.records.filter((record) => record.waitForLock);
      if (expired.length + unwaiting.length > 0)
        this.failRecords([...expired, ...unwaiting], limit);
    }
    if (this.changes.length === 0 && !this.recordsReady()) return false;
    this.waitingForLock = true;
    setTimeout(() => {
      this.waitingForLock = false;
      this.flush();
    }, this.lock.nextDelay());
    return true;
  }

  /** Runs `batch` in the transaction {@link flush} has just begun, and commits it. */
  private commitChanges(batch: Change[]): void {
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    for (const item of batch) {
      this.savepoint.open.run();
      try {
        const value = item.job();
        this.savepoint.release.run();
        outcomes.push({ ok: true, value });
      } catch (error) {
        try {
          this.savepoint.rollbackTo.run();
          this.savepoint.release.run();
        } catch (rollbackError) {
          rollbackIfOpen(this.sqlite);
          this.failChanges(batch, rollbackError);
          return;
        }
        outcomes.push({ ok: false, error });
      }
    }
    try {
      this.commitStatement.run();
    } catch (error) {
      rollbackIfOpen(this.sqlite);
      this.failChanges(batch, error);
      return;
    }
    reportCommit(this.sqlite, 'writes', batch.length, batch[0]!.queuedAt, true);
    batch.forEach((item, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) item.resolve(outcome.value);
      else item.reject(outcome.error);
    });
  }

  /** Runs the record batch in the transaction just begun, commits it, then syncs the WAL. */
  private commitRecords(batch: Record[]): void {
    try {
      try {
        for (const item of batch) item.job();
        this.commitStatement.run();
      } catch (error) {
        rollbackIfOpen(this.sqlite);
        this.failRecords(batch, error);
        return;
      }
    } finally {
      if (this.options.walPath !== null) this.restoreSynchronous();
    }
    this.diskSpace.succeeded();
    if (this.options.walPath === null) {
      reportCommit(this.sqlite, 'audit', batch.length, batch[0]!.queuedAt, true);
      for (const item of batch) item.resolve(undefined);
      return;
    }
    this.sync(this.options.walPath, batch);
  }

  private sync(walPath: string, covered: Record[]): void {
    this.syncing = true;
    this.syncWal(walPath).then(
      () => {
        this.syncing = false;
        reportCommit(this.sqlite, 'audit', covered.length, covered[0]!.queuedAt, true);
        for (const item of covered) item.resolve(undefined);
        this.flush();
      },
      (error: unknown) => {
        this.syncing = false;
        this.broken = error;
        reportCommit(this.sqlite, 'audit', covered.length, covered[0]!.queuedAt, false);
        this.options.logger.error(
          'fsync of the database WAL failed: refusing further audited requests until restart',
          {},
          error instanceof Error ? error : undefined,
        );
        const waiting = this.records.splice(0);
        for (const item of [...covered, ...waiting]) item.reject(recordsUnavailable());
        this.flush();
      },
    );
  }

  private failChanges(
    batch: Change[],
    cause: unknown,
    error = new ServiceUnavailableError('The database cannot accept writes right now'),
  ): void {
    // A full disk is logged once by its DiskSpace, not once per failed batch.
    if (!this.diskSpace.failed(cause)) {
      this.options.logger.error(
        'database commit failed',
        cause instanceof Error ? cause : undefined,
      );
    }
    this.options.onCommitFailure?.(cause);
    if (batch.length > 0)
      reportCommit(this.sqlite, 'writes', batch.length, batch[0]!.queuedAt, false);
    // Kept for classification (e.g. a full disk: src/db/disk-full.ts), never shown to clients.
    error.cause ??= cause;
    for (const item of batch) item.reject(error);
  }

  private failRecords(batch: Record[], error: unknown): void {
    if (batch.length > 0)
      reportCommit(this.sqlite, 'audit', batch.length, batch[0]!.queuedAt, false);
    // A full disk is logged once (DiskSpace), and its 503s are not logged again per request.
    if (this.diskSpace.failed(error)) {
      for (const item of batch) item.reject(new DiskFullError(error));
      return;
    }
    this.options.logger.error(
      'audit entries could not be committed',
      { entries: batch.length },
      error instanceof Error ? error : undefined,
    );
    for (const item of batch) item.reject(recordsUnavailable());
  }
}

function recordsUnavailable(): ServiceUnavailableError {
  return new ServiceUnavailableError('The audit log cannot be written right now');
}

function shuttingDown(): ServiceUnavailableError {
  return new ServiceUnavailableError('The server is shutting down');
}
