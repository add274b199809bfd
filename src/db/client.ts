/**
 * The database layer: opening the SQLite connection and wrapping it for drizzle. How the data
 * layer fits together (read this before adding a table, a query or a write):
 *
 * - **Schema** — every table is defined in `src/db/schema/<area>.ts` and exported from
 *   `schema/index.ts`; drizzle-kit diffs that into `migrations/` (`scripts/db-generate.ts`). A
 *   column holding sealed values is declared next to its table with `encryptedColumn()`
 *   (schema/encrypted.ts): that export is what makes `master-key rotate --reencrypt` walk it.
 * - **Writes** — one write engine per connection (write-engine.ts): group commit for changes
 *   and a record lane for the audit entries of reads, one lock-wait policy, one owner of
 *   fsync. Features never call it directly: every state change goes through the change
 *   pipeline (src/changes/), which puts the change, its events, its idempotent response and
 *   its audit entry in one transaction.
 * - **Persistence style** — SQL lives in store modules only (a feature's `store.ts`, or the
 *   service module that plays that role, e.g. keys/service.ts), behind plain synchronous
 *   functions that take the connection (`Db` or `Database`) and return plain rows/objects.
 *   Routes and the logic above them call those functions and never build a query, so a second
 *   dialect (PostgreSQL, issue 20) is added behind the same functions. Inside a store: drizzle's
 *   query builder over the schema for ordinary queries; for hot paths (one statement per
 *   request) a prepared `bun:sqlite` statement made once per connection through
 *   {@link import('./per-connection.ts').perConnection} — the one per-connection cache — on the
 *   connection {@link connectionOf} returns. Nothing else keeps a `WeakMap<Database, …>`.
 */
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
  // Savepoint journals (each group-committed change runs in a savepoint, src/db/write-engine.ts)
  // in memory: past 64 KiB SQLite spills them to an unlinked file in /var/tmp, which then takes
  // two write syscalls per page each job touches, for the rest of the transaction, and puts
  // copies of database pages outside the data directory.
  sqlite.run('PRAGMA temp_store = MEMORY');
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
