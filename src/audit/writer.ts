/** Group commit of audit entries: many requests' entries in one transaction and one fsync. */
import { closeSync, fdatasync, openSync } from 'node:fs';
import { expiredCount, lockBusyTooLong, rollbackIfOpen, WriteLock } from '../db/write-lock.ts';
import { registerQueueDepth, reportCommit } from '../db/commit-observer.ts';
import { DiskFullError, diskSpaceFor, type DiskSpace } from '../db/disk-full.ts';
import { ServiceUnavailableError } from '../errors.ts';
import type { Instance } from '../instance.ts';
import { appendAuditEntries, type AuditEntryInput } from './record.ts';

/** Makes the WAL file durable; injectable so tests can make the disk fail or stall. */
export type SyncWal = (walPath: string) => Promise<void>;

/**
 * `fdatasync` of the WAL on the thread pool, on a descriptor kept open: one round trip to the
 * pool per sync instead of three (open, sync, close), each of which would wait for a turn of a
 * busy event loop. The WAL keeps its inode while this process holds the database open (SQLite
 * deletes it only when the last connection closes), so the descriptor stays valid; it is closed
 * with the instance. `fdatasync` is what SQLite itself uses for the WAL on Linux.
 */
export function walSyncer(instance: Instance): SyncWal {
  let fd: number | undefined;
  instance.onClose(() => {
    if (fd !== undefined) closeSync(fd);
    fd = undefined;
  });
  return (walPath) =>
    new Promise<void>((resolve, reject) => {
      try {
        fd ??= openSync(walPath, 'r');
      } catch (error) {
        reject(error);
        return;
      }
      fdatasync(fd, (error) => (error ? reject(error) : resolve()));
    });
}

type Waiter = { resolve: () => void; reject: (error: unknown) => void };
/**
 * An entry waiting for its commit; `queuedAt` (performance.now()) bounds its wait for the lock,
 * which `waitForLock: false` skips: such an entry fails as soon as it finds the lock busy.
 */
type Queued = { entry: AuditEntryInput; waiter: Waiter; queuedAt: number; waitForLock: boolean };

/**
 * Group commit for the audit entries of requests that change nothing (reads, denials, errors),
 * durable before their responses but without stalling the event loop on the disk.
 *
 * Queued entries are appended in one `BEGIN IMMEDIATE … COMMIT` on the instance's connection
 * (so they join the same chain, in the same lock order, as every other writer). With
 * `storage.synchronous = "full"` that COMMIT runs at `synchronous=NORMAL` (it writes the WAL
 * frames without fsync) and the WAL file is then synced on the thread pool; the batch's
 * promises settle only after that sync. This is exactly the sync FULL performs inside COMMIT,
 * so an answered request's entry is as durable as under FULL — but the event loop serves other
 * requests while the disk works. One sync runs at a time; entries that arrive meanwhile wait
 * and are committed together as soon as it ends (they could not be acknowledged before the
 * next sync anyway, and one commit of many entries costs much less than many small ones). With
 * `synchronous = "normal"` a batch is committed once per event-loop turn and settles right
 * after COMMIT, as the operator chose.
 *
 * Writes keep using the instance's WriteQueue (commitAudited): their entry must share the
 * change's transaction. Both queues run their transactions synchronously on one connection, so
 * they never interleave. While another process (a CLI command) holds the write lock, queued
 * entries wait on a timer ({@link WriteLock}) rather than in SQLite's busy handler, which would
 * stall the event loop; past `storage.busy_timeout_ms` they fail (503).
 *
 * Fail closed: when a batch cannot be committed its requests fail (503). When a sync fails the
 * kernel may already have dropped the unwritten pages, so nothing later can be trusted: every
 * later entry fails too, until the server is restarted.
 */
export class AuditWriter {
  private queued: Queued[] = [];
  private scheduled = false;
  private syncing = false;
  private broken: unknown = null;
  private readonly walPath: string | null;
  private waitingForLock = false;
  private readonly lock: WriteLock;
  private readonly diskSpace: DiskSpace;

  constructor(
    private readonly instance: Instance,
    private readonly syncWal: SyncWal = walSyncer(instance),
  ) {
    const { path, synchronous } = instance.config.storage;
    this.walPath = synchronous === 'full' && path !== ':memory:' ? `${path}-wal` : null;
    this.lock = new WriteLock(instance.sqlite);
    this.diskSpace = diskSpaceFor(instance.sqlite, instance.logger);
    registerQueueDepth(instance.sqlite, 'audit', () => this.queued.length);
  }

  /** True once a WAL sync failed: every later entry fails until restart (readiness says so). */
  get isBroken(): boolean {
    return this.broken !== null;
  }

  /**
   * Appends `entry` with the next group commit; resolves once it is durable. With
   * `waitForLock: false` (its request already waited the whole busy timeout) it fails as soon as
   * another process is found holding the write lock.
   */
  append(entry: AuditEntryInput, options: { waitForLock?: boolean } = {}): Promise<void> {
    if (this.broken !== null) return Promise.reject(unavailable());
    const waitForLock = options.waitForLock ?? true;
    return new Promise<void>((resolve, reject) => {
      this.queued.push({
        entry,
        waiter: { resolve, reject },
        queuedAt: performance.now(),
        waitForLock,
      });
      if (!this.scheduled && !this.syncing && !this.waitingForLock) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    // The end of the running sync, or of the wait for the lock, flushes again.
    if (this.syncing || this.waitingForLock) return;
    if (this.queued.length === 0) return;
    let committed: boolean;
    try {
      committed = this.commit(this.queued.map((job) => job.entry));
    } catch (error) {
      const failed = this.queued;
      this.queued = [];
      this.fail(failed, error);
      return;
    }
    if (!committed) {
      // Another process holds the write lock: wait on a timer, keep queueing meanwhile. Each
      // entry fails once it has waited longer than the connection's busy_timeout.
      const expired = this.queued.splice(0, expiredCount(this.queued, this.lock));
      const unwaiting = this.queued.filter((job) => !job.waitForLock);
      if (unwaiting.length > 0) this.queued = this.queued.filter((job) => job.waitForLock);
      if (expired.length + unwaiting.length > 0) {
        this.fail([...expired, ...unwaiting], lockBusyTooLong(this.lock.waitLimitMs));
        if (this.queued.length === 0) return;
      }
      this.waitingForLock = true;
      setTimeout(() => {
        this.waitingForLock = false;
        this.flush();
      }, this.lock.nextDelay());
      return;
    }
    this.diskSpace.succeeded();
    const batch = this.queued;
    this.queued = [];
    const queuedAt = batch[0]!.queuedAt;
    if (this.walPath === null) {
      reportCommit(this.instance.sqlite, 'audit', batch.length, queuedAt, true);
      for (const job of batch) job.waiter.resolve();
      return;
    }
    this.sync(
      this.walPath,
      batch.map((job) => job.waiter),
      queuedAt,
    );
  }

  /** Appends `entries` in one transaction: false (nothing done) when the write lock is busy. */
  private commit(entries: AuditEntryInput[]): boolean {
    const { sqlite, db, clock } = this.instance;
    const deferSync = this.walPath !== null;
    // Not prepared statements: SQLite applies this pragma when it compiles it.
    if (deferSync) sqlite.run('PRAGMA synchronous = NORMAL');
    try {
      if (!this.lock.tryBegin()) return false;
      try {
        appendAuditEntries(db, clock, entries);
        sqlite.run('COMMIT');
      } catch (error) {
        rollbackIfOpen(sqlite);
        throw error;
      }
      return true;
    } finally {
      // The connection is shared: every other commit on it stays FULL.
      if (deferSync) sqlite.run('PRAGMA synchronous = FULL');
    }
  }

  private fail(failed: Queued[], error: unknown): void {
    const oldest = failed[0];
    if (oldest) reportCommit(this.instance.sqlite, 'audit', failed.length, oldest.queuedAt, false);
    // A full disk is logged once (DiskSpace), and its 503s are not logged again per request.
    if (this.diskSpace.failed(error)) {
      for (const job of failed) job.waiter.reject(new DiskFullError(error));
      return;
    }
    this.instance.logger.error(
      'audit entries could not be committed',
      { entries: failed.length },
      error instanceof Error ? error : undefined,
    );
    for (const job of failed) job.waiter.reject(unavailable());
  }

  private sync(walPath: string, covered: Waiter[], queuedAt: number): void {
    this.syncing = true;
    this.syncWal(walPath).then(
      () => {
        this.syncing = false;
        reportCommit(this.instance.sqlite, 'audit', covered.length, queuedAt, true);
        for (const waiter of covered) waiter.resolve();
        this.flush();
      },
      (error: unknown) => {
        this.syncing = false;
        this.broken = error;
        reportCommit(this.instance.sqlite, 'audit', covered.length, queuedAt, false);
        this.instance.logger.error(
          'fsync of the database WAL failed: refusing further audited requests until restart',
          {},
          error instanceof Error ? error : undefined,
        );
        const waiting = this.queued;
        this.queued = [];
        for (const waiter of [...covered, ...waiting.map((job) => job.waiter)]) {
          waiter.reject(unavailable());
        }
      },
    );
  }
}

function unavailable(): ServiceUnavailableError {
  return new ServiceUnavailableError('The audit log cannot be written right now');
}

const writers = new WeakMap<Instance, AuditWriter>();

/** The one {@link AuditWriter} of an instance (created on first use). */
export function auditWriterFor(instance: Instance): AuditWriter {
  let writer = writers.get(instance);
  if (!writer) {
    writer = new AuditWriter(instance);
    writers.set(instance, writer);
  }
  return writer;
}
