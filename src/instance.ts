import type { Database } from 'bun:sqlite';
import { existsSync, rmSync } from 'node:fs';
import { userInfo } from 'node:os';
import { eq } from 'drizzle-orm';
import type { Clock } from './clock.ts';
import { systemClock } from './clock.ts';
import type { Config } from './config/schema.ts';
import { createDb, openDatabase, type Db } from './db/client.ts';
import { runMigrations } from './db/migrate.ts';
import { instance as instanceTable } from './db/tables.ts';
import { WriteQueue } from './db/write-queue.ts';
import type { Logger } from './log/logger.ts';

/** An open Secryn instance: the database and what every feature needs to work on it. */
export type Instance = {
  config: Config;
  logger: Logger;
  clock: Clock;
  sqlite: Database;
  db: Db;
  /** Group-committed writes; see {@link WriteQueue}. */
  writes: WriteQueue;
  /** Flushes pending writes and closes the database. */
  close(): Promise<void>;
};

/** The instance has not been created yet (`secryn init` has not run). */
export class NotInitializedError extends Error {
  constructor(readonly databasePath: string) {
    super(`no Secryn instance at ${databasePath}; run \`secryn init\` first`);
    this.name = 'NotInitializedError';
  }
}

/** An instance already exists where `init` was asked to create one. */
export class AlreadyInitializedError extends Error {
  constructor(readonly databasePath: string) {
    super(`a Secryn instance already exists at ${databasePath}; refusing to overwrite it`);
    this.name = 'AlreadyInitializedError';
  }
}

export type OpenInstanceOptions = { clock?: Clock };

/**
 * Opens an existing instance: the database must exist and have been initialised. Pending
 * migrations are applied first (idempotent), so a new binary upgrades the schema on start.
 * @throws NotInitializedError when there is no database or it was never initialised.
 */
export function openInstance(
  config: Config,
  logger: Logger,
  options: OpenInstanceOptions = {},
): Instance {
  const path = config.storage.path;
  if (path !== ':memory:' && !existsSync(path)) throw new NotInitializedError(path);
  const sqlite = openDatabase(path, {
    synchronous: config.storage.synchronous,
    busyTimeoutMs: config.storage.busy_timeout_ms,
    mustExist: true,
  });
  try {
    const applied = runMigrations(sqlite);
    if (applied.length > 0) logger.info('database migrated', { applied: applied.join(',') });
    const db = createDb(sqlite);
    const row = db
      .select({ id: instanceTable.id })
      .from(instanceTable)
      .where(eq(instanceTable.id, 1))
      .get();
    if (!row) throw new NotInitializedError(path);
    return assemble(config, logger, sqlite, db, options.clock ?? systemClock);
  } catch (error) {
    sqlite.close();
    throw error;
  }
}

/**
 * Creates a new instance: the database file, its schema and the instance row, all in one
 * transaction. Feature set-up that must happen at creation (keyring, first admin key) runs in
 * `setup` inside the same transaction, so a failed init leaves nothing half-made behind.
 * @throws AlreadyInitializedError when the database file already exists.
 */
export function createInstance(
  config: Config,
  logger: Logger,
  setup: (db: Db, sqlite: Database) => void = () => {},
  options: OpenInstanceOptions = {},
): Instance {
  const path = config.storage.path;
  if (path !== ':memory:' && existsSync(path)) throw new AlreadyInitializedError(path);
  const clock = options.clock ?? systemClock;
  const sqlite = openDatabase(path, {
    synchronous: config.storage.synchronous,
    busyTimeoutMs: config.storage.busy_timeout_ms,
  });
  try {
    runMigrations(sqlite);
    const db = createDb(sqlite);
    sqlite
      .transaction(() => {
        db.insert(instanceTable)
          .values({ id: 1, createdAt: clock.now(), createdBy: localActor() })
          .run();
        setup(db, sqlite);
      })
      .immediate();
    return assemble(config, logger, sqlite, db, clock);
  } catch (error) {
    sqlite.close();
    // Leave no half-made instance behind: a later `init` must be able to start over.
    if (path !== ':memory:')
      for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
    throw error;
  }
}

/** The local OS user, recorded as the actor of CLI actions. */
export function localActor(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid:${process.getuid?.() ?? 'unknown'}`;
  }
}

function assemble(
  config: Config,
  logger: Logger,
  sqlite: Database,
  db: Db,
  clock: Clock,
): Instance {
  const writes = new WriteQueue(sqlite, {
    onCommitFailure: (error) =>
      logger.error('database commit failed', error instanceof Error ? error : undefined),
  });
  let closed = false;
  return {
    config,
    logger,
    clock,
    sqlite,
    db,
    writes,
    async close() {
      if (closed) return;
      closed = true;
      await writes.close();
      try {
        sqlite.run('PRAGMA optimize');
      } catch {
        // Best effort; the database may be read-only.
      }
      sqlite.close();
    },
  };
}
