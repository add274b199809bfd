/** Opens the SQLite database (pragmas, WAL) and wraps it in drizzle. */
import { Database } from 'bun:sqlite';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { drizzle, type BunSQLiteDatabase } from 'drizzle-orm/bun-sqlite';

/** The drizzle handle every service uses; built on one `bun:sqlite` connection. */
export type Db = BunSQLiteDatabase;

export type OpenDatabaseOptions = {
  /** `full` makes every commit durable against power loss; `normal` only against crashes. */
  synchronous: 'full' | 'normal';
  busyTimeoutMs: number;
  /** Open an existing file only; used by commands that must not create an instance. */
  mustExist?: boolean;
  readonly?: boolean;
};

/**
 * Opens the SQLite file in WAL mode with foreign keys on, a busy timeout and the chosen
 * `synchronous` level, creating its directory (mode 0700) if needed.
 */
export function openDatabase(path: string, options: OpenDatabaseOptions): Database {
  if (path !== ':memory:' && !options.mustExist) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  }
  const sqlite = new Database(path, {
    create: !options.mustExist && !options.readonly,
    readwrite: !options.readonly,
    readonly: options.readonly ?? false,
    strict: true,
  });
  // busy_timeout first, so that the journal-mode switch itself waits for another process.
  sqlite.run(`PRAGMA busy_timeout = ${Math.trunc(options.busyTimeoutMs)}`);
  if (!options.readonly) sqlite.run('PRAGMA journal_mode = WAL');
  sqlite.run('PRAGMA foreign_keys = ON');
  sqlite.run(`PRAGMA synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
  // Freed pages are zeroed so that deleted (encrypted) values do not linger in the file.
  sqlite.run('PRAGMA secure_delete = ON');
  return sqlite;
}

/** Wraps a connection in drizzle. */
export function createDb(sqlite: Database): Db {
  return drizzle({ client: sqlite });
}

/**
 * The bun:sqlite connection under a drizzle handle. `Db` does not declare `$client`, though
 * `drizzle({ client })` always sets it.
 */
export function connectionOf(db: Db): Database {
  const client: unknown = (db as { $client?: unknown }).$client;
  if (!(client instanceof Database)) throw new Error('expected a bun:sqlite connection');
  return client;
}
