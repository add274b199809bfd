import { Database } from 'bun:sqlite';
import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../config/load.ts';
import { ServiceUnavailableError } from '../errors.ts';
import { createInstance, type Instance } from '../instance.ts';
import { createLogger } from '../log/logger.ts';
import { walPathOf, WriteEngine, type SyncWal } from '../db/write-engine.ts';
import {
  appendAuditEntry,
  appendAuditEntryDurably,
  localAuditEntry,
  type AuditEntryInput,
} from '../ledger/audit-record.ts';
import { verifyChain } from './verify.ts';

/**
 * The write engine's record lane (src/db/write-engine.ts) with the entries it exists for: the
 * audit entries of requests that change nothing.
 */
describe('audit entries through the record lane', () => {
  let dir: string;
  let instance: Instance;

  const open = (synchronous: 'full' | 'normal') => {
    dir = mkdtempSync(join(tmpdir(), 'secryn-'));
    const config = validateConfig({
      storage: { path: join(dir, 'secryn.db'), synchronous },
      encryption: { master_key_file: join(dir, 'master.key') },
    });
    instance = createInstance(config, createLogger({ level: 'silent', format: 'json' }));
  };
  afterEach(async () => {
    await instance.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const count = () =>
    instance.sqlite.query<{ n: number }, []>('SELECT count(*) AS n FROM audit_log').get()!.n;
  /** A WAL sync that reports each call and waits until the test releases it. */
  const gatedSync = () => {
    const calls: { path: string; release: (error?: Error) => void }[] = [];
    const sync = (path: string) =>
      new Promise<void>((resolve, reject) =>
        calls.push({ path, release: (error) => (error ? reject(error) : resolve()) }),
      );
    return { calls, sync };
  };
  /** A second engine on the instance's connection, with `syncWal` injected. */
  const recordLane = (syncWal: SyncWal) => {
    const { path, synchronous } = instance.config.storage;
    const engine = new WriteEngine(instance.sqlite, {
      logger: instance.logger,
      walPath: walPathOf(path, synchronous),
      syncWal,
    });
    return {
      append: (entry: AuditEntryInput, options?: { waitForLock?: boolean }) =>
        engine.append(() => void appendAuditEntry(instance.db, instance.clock, entry), options),
    };
  };

  test('under FULL an entry resolves only after the WAL fsync that follows its commit', async () => {
    open('full');
    const gate = gatedSync();
    const writer = recordLane(gate.sync);
    let settled = 0;
    const first = Array.from({ length: 100 }, (_, i) =>
      writer.append(localAuditEntry(`a.${i}`, null)).then(() => void settled++),
    );
    await Bun.sleep(10);
    // One transaction, committed (visible) but not yet acknowledged, and one fsync for all.
    expect(count()).toBe(100);
    expect(gate.calls).toHaveLength(1);
    expect(gate.calls[0]!.path).toBe(`${instance.config.storage.path}-wal`);
    expect(settled).toBe(0);
    // The shared connection is back at FULL for every other commit.
    expect(instance.sqlite.query('PRAGMA synchronous').get()).toEqual({ synchronous: 2 });

    // Entries that arrive while the sync runs wait for it, then commit together and get a
    // sync of their own.
    const second = Array.from({ length: 3 }, (_, i) =>
      writer.append(localAuditEntry(`b.${i}`, null)).then(() => void settled++),
    );
    await Bun.sleep(10);
    expect(count()).toBe(100);
    expect(gate.calls).toHaveLength(1);
    gate.calls[0]!.release();
    await Promise.all(first);
    expect(settled).toBe(100);
    await Bun.sleep(10);
    expect(count()).toBe(103);
    expect(gate.calls).toHaveLength(2);
    gate.calls[1]!.release();
    await Promise.all(second);
    expect(settled).toBe(103);
    expect(verifyChain(instance.sqlite)).toMatchObject({ intact: true, verified: 103 });
  });

  test('the real WAL sync: one descriptor for every sync, closed with the instance', async () => {
    open('full');
    const wal = `${instance.config.storage.path}-wal`;
    const walDescriptors = () =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`) === wal;
        } catch {
          return false; // closed while listing
        }
      }).length;
    const sqliteOwn = walDescriptors();
    // The instance's own engine, with its real syncer.
    await Promise.all(
      [1, 2, 3].map((i) => appendAuditEntryDurably(instance, localAuditEntry(`x.${i}`, null))),
    );
    await appendAuditEntryDurably(instance, localAuditEntry('y', null));
    expect(count()).toBe(4);
    expect(walDescriptors()).toBe(sqliteOwn + 1);
    await instance.close();
    expect(walDescriptors()).toBe(0);
  });

  test('under NORMAL there is no fsync: entries resolve after COMMIT', async () => {
    open('normal');
    const gate = gatedSync();
    const writer = recordLane(gate.sync);
    await writer.append(localAuditEntry('a', null));
    expect(gate.calls).toHaveLength(0);
    expect(instance.sqlite.query('PRAGMA synchronous').get()).toEqual({ synchronous: 1 });
  });

  test('a failed fsync fails its requests and every later one (503) until restart', async () => {
    open('full');
    const gate = gatedSync();
    const writer = recordLane(gate.sync);
    const pending = writer.append(localAuditEntry('a', null));
    await Bun.sleep(10);
    gate.calls[0]!.release(new Error('EIO'));
    await expect(pending).rejects.toBeInstanceOf(ServiceUnavailableError);
    await expect(writer.append(localAuditEntry('b', null))).rejects.toBeInstanceOf(
      ServiceUnavailableError,
    );
  });

  test('while another process holds the write lock, entries wait off the event loop', async () => {
    open('full');
    const writer = recordLane(async () => {});
    const other = new Database(instance.config.storage.path);
    other.run('BEGIN IMMEDIATE');
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    let settled = 0;
    const first = writer.append(localAuditEntry('a', null)).then(() => void settled++);
    await Bun.sleep(200);
    expect(settled).toBe(0);
    expect(ticks).toBeGreaterThanOrEqual(10);
    const second = writer.append(localAuditEntry('b', null)).then(() => void settled++);
    other.run('COMMIT');
    await Promise.all([first, second]);
    clearInterval(ticker);
    expect(count()).toBe(2);
    expect(verifyChain(instance.sqlite).intact).toBe(true);
    expect(instance.sqlite.query('PRAGMA synchronous').get()).toEqual({ synchronous: 2 });
    other.close();
  });

  test('past the busy timeout waiting entries fail with 503, and later ones are written', async () => {
    dir = mkdtempSync(join(tmpdir(), 'secryn-'));
    const config = validateConfig({
      storage: { path: join(dir, 'secryn.db'), synchronous: 'full', busy_timeout_ms: 100 },
      encryption: { master_key_file: join(dir, 'master.key') },
    });
    instance = createInstance(config, createLogger({ level: 'silent', format: 'json' }));
    const writer = recordLane(async () => {});
    const other = new Database(config.storage.path);
    other.run('BEGIN IMMEDIATE');
    const started = performance.now();
    const failedAt = (entry: Promise<void>) =>
      entry.then(
        () => Number.NaN,
        (error: unknown) => {
          expect(error).toBeInstanceOf(ServiceUnavailableError);
          return performance.now() - started;
        },
      );
    const first = failedAt(writer.append(localAuditEntry('a', null)));
    await Bun.sleep(60);
    const second = failedAt(writer.append(localAuditEntry('b', null)));
    // Each entry waits its own 100 ms: the later one is not failed with the earlier one.
    expect(await first).toBeGreaterThanOrEqual(100);
    expect(await first).toBeLessThan(150);
    expect(await second).toBeGreaterThanOrEqual(160);
    other.run('COMMIT');
    other.close();
    await writer.append(localAuditEntry('c', null));
    expect(
      instance.sqlite.query<{ action: string }, []>('SELECT action FROM audit_log').all(),
    ).toEqual([{ action: 'c' }]);
  });

  test('a failed commit fails that batch only; the connection is left usable', async () => {
    open('full');
    const writer = recordLane(async () => {});
    instance.sqlite.run('PRAGMA query_only = ON');
    await expect(writer.append(localAuditEntry('a', null))).rejects.toBeInstanceOf(
      ServiceUnavailableError,
    );
    expect(instance.sqlite.inTransaction).toBe(false);
    expect(instance.sqlite.query('PRAGMA synchronous').get()).toEqual({ synchronous: 2 });
    instance.sqlite.run('PRAGMA query_only = OFF');
    await writer.append(localAuditEntry('b', null));
    expect(count()).toBe(1);
    // The instance's own write queue still works on the shared connection.
    expect(await instance.writes.run(() => 42)).toBe(42);
  });
});
