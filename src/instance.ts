/** An open Secryn instance (database, keyring, config, clock, logger): created and opened here. */
import type { Database } from 'bun:sqlite';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import type { Clock } from './clock.ts';
import { systemClock } from './clock.ts';
import type { Config } from './config/schema.ts';
import { createDb, openDatabase, type Db } from './db/client.ts';
import { pendingMigrationCount, runMigrations } from './db/migrate.ts';
import { instance as instanceTable } from './db/schema/instance.ts';
import { walPathOf, WriteEngine } from './db/write-engine.ts';
import { MasterKeyError } from './crypto/errors.ts';
import {
  generateMasterKey,
  MASTER_KEY_CREDENTIAL_NAME,
  MASTER_KEY_ENV_VAR,
  writeNewMasterKeyFile,
  type LoadedMasterKey,
} from './crypto/master-key.ts';
import { configuredKeyPath, loadConfiguredMasterKey, type Env } from './keyring/key-files.ts';
import type { LiveKeyring } from './keyring/live-keyring.ts';
import { bindValueLocations } from './keyring/bind-locations.ts';
import { openKeyring } from './keyring/open.ts';
import { createKeyring } from './keyring/store.ts';
import type { Logger } from './log/logger.ts';
import { localActor } from './os-user.ts';

/** An open Secryn instance: the database and what every feature needs to work on it. */
export type Instance = {
  config: Config;
  logger: Logger;
  clock: Clock;
  sqlite: Database;
  db: Db;
  /** The write engine: group-committed changes and durable records; see {@link WriteEngine}. */
  writes: WriteEngine;
  /**
   * Seals and opens every encrypted column (see src/keyring/live-keyring.ts for the contract and
   * src/db/schema/encrypted.ts for declaring a column). Always loaded on an open instance.
   */
  keyring: LiveKeyring;
  /** Flushes pending writes, forgets the data keys and closes the database. */
  close(): Promise<void>;
  /** Runs `hook` when the instance closes, before the database does (e.g. to close files). */
  onClose(hook: () => void): void;
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

export type OpenInstanceOptions = {
  clock?: Clock;
  /** Where the master key source variables are read; default `process.env`. */
  env?: Env;
  /** How often the keyring checks for data keys added by another process; default 1000 ms. */
  keyringRefreshMs?: number;
};

/**
 * Opens an existing instance: the database must exist and have been initialised, and the master
 * key must be the one its keyring is sealed with. The key is loaded before the database is
 * opened, and pending migrations are applied only when there are some, so a refused start (no
 * key, key file too open, invalid or wrong key) leaves the database file untouched. An
 * interrupted master-key rotation is finished or discarded here (src/keyring/open.ts).
 * @throws NotInitializedError when there is no database or it was never initialised.
 * @throws MasterKeyError (missing, bad_permissions, invalid, unreadable), MasterKeyMismatchError
 *   (wrong key) or KeyringError (keyring absent or altered).
 */
export function openInstance(
  config: Config,
  logger: Logger,
  options: OpenInstanceOptions = {},
): Instance {
  const path = config.storage.path;
  if (path !== ':memory:' && !existsSync(path)) throw new NotInitializedError(path);
  const clock = options.clock ?? systemClock;
  const env = options.env ?? process.env;
  const masterKey = loadConfiguredMasterKey(config, env);
  let sqlite: Database | undefined;
  try {
    sqlite = openDatabase(path, {
      synchronous: config.storage.synchronous,
      busyTimeoutMs: config.storage.busy_timeout_ms,
      mustExist: true,
    });
    if (pendingMigrationCount(sqlite) > 0) {
      const applied = runMigrations(sqlite);
      if (applied.length > 0) logger.info('database migrated', { applied: applied.join(',') });
    }
    const db = createDb(sqlite);
    const row = db
      .select({ id: instanceTable.id })
      .from(instanceTable)
      .where(eq(instanceTable.id, 1))
      .get();
    if (!row) throw new NotInitializedError(path);
    const keyring = openKeyring(sqlite, masterKey, {
      config,
      env,
      clock,
      logger,
      refreshIntervalMs: options.keyringRefreshMs,
    });
    // Values sealed before owners were bound are re-sealed before anything reads them.
    bindValueLocations({ sqlite, keyring, logger });
    return assemble(config, logger, sqlite, db, clock, keyring);
  } catch (error) {
    if (sqlite) closeNow(sqlite);
    throw error;
  } finally {
    masterKey.key.fill(0);
  }
}

/**
 * Creates a new instance: the master key, the database file, its schema, the instance row and
 * the keyring (data key v1 wrapped under the master key). The master key comes from a systemd
 * credential or `SECRYN_MASTER_KEY` if one is set (no file is written: `keyring.source` says
 * so); otherwise a new key is written to `encryption.master_key_file` (0600, directory 0700)
 * before the database commits. Feature set-up that must happen at creation (first admin key)
 * runs in `setup` inside the same transaction, so a failed init leaves nothing half-made
 * behind: the database and a key file written here are removed.
 * @throws AlreadyInitializedError when the database file already exists.
 * @throws MasterKeyError('exists') when the key file already exists (neither file is touched).
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
  const env = options.env ?? process.env;
  const { key: masterKey, wroteFile } = initialMasterKey(config, env);
  let sqlite: Database | undefined;
  try {
    sqlite = openDatabase(path, {
      synchronous: config.storage.synchronous,
      busyTimeoutMs: config.storage.busy_timeout_ms,
    });
    runMigrations(sqlite);
    const db = createDb(sqlite);
    const created = sqlite;
    sqlite
      .transaction(() => {
        db.insert(instanceTable)
          .values({ id: 1, createdAt: clock.now(), createdBy: localActor() })
          .run();
        createKeyring(created, masterKey.key, clock.now());
        setup(db, created);
      })
      .immediate();
    const keyring = openKeyring(sqlite, masterKey, {
      config,
      env,
      clock,
      logger,
      refreshIntervalMs: options.keyringRefreshMs,
    });
    return assemble(config, logger, sqlite, db, clock, keyring);
  } catch (error) {
    if (sqlite) closeNow(sqlite);
    // Leave no half-made instance behind: a later `init` must be able to start over.
    if (path !== ':memory:')
      for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
    if (wroteFile) rmSync(configuredKeyPath(config), { force: true });
    throw error;
  } finally {
    masterKey.key.fill(0);
  }
}

/**
 * The master key for a new instance: the one from a systemd credential or the environment if
 * set, else a new one written to the configured file, which must not exist yet.
 */
function initialMasterKey(config: Config, env: Env): { key: LoadedMasterKey; wroteFile: boolean } {
  const keyPath = configuredKeyPath(config);
  const refuse = () =>
    new MasterKeyError(
      'exists',
      `a master key file already exists at ${keyPath}; refusing to overwrite it ` +
        '(an instance may live here already: move the file away to create a new one)',
    );
  let loaded: LoadedMasterKey;
  try {
    loaded = loadConfiguredMasterKey(config, env);
  } catch (error) {
    if (error instanceof MasterKeyError && error.reason === 'missing') {
      const key = generateMasterKey();
      writeNewMasterKeyFile(keyPath, key);
      return { key: { key, source: 'file', path: keyPath }, wroteFile: true };
    }
    // A key file that exists but cannot be used is still someone's key file: leave it alone.
    const fromEnv = Boolean(env[MASTER_KEY_ENV_VAR]) || credentialPresent(env);
    if (error instanceof MasterKeyError && !fromEnv && existsSync(keyPath)) throw refuse();
    throw error;
  }
  if (loaded.source === 'file') {
    loaded.key.fill(0);
    throw refuse();
  }
  return { key: loaded, wroteFile: false };
}

function credentialPresent(env: Env): boolean {
  const dir = env.CREDENTIALS_DIRECTORY;
  return Boolean(dir) && existsSync(join(dir!, MASTER_KEY_CREDENTIAL_NAME));
}

/**
 * Closes the connection now. A plain `close()` leaves SQLite's connection open as long as any
 * prepared statement (drizzle's included) is not finalised — until garbage collection — so the
 * WAL is not checkpointed and removed when the command ends, and the database file changes
 * later, at an unpredictable time. `close(true)` finalises them first.
 */
function closeNow(sqlite: Database): void {
  try {
    sqlite.close(true);
  } catch {
    sqlite.close();
  }
}

function assemble(
  config: Config,
  logger: Logger,
  sqlite: Database,
  db: Db,
  clock: Clock,
  keyring: LiveKeyring,
): Instance {
  const writes = new WriteEngine(sqlite, {
    logger,
    walPath: walPathOf(config.storage.path, config.storage.synchronous),
  });
  let closed = false;
  const closeHooks: (() => void)[] = [];
  return {
    config,
    logger,
    clock,
    sqlite,
    db,
    writes,
    keyring,
    async close() {
      if (closed) return;
      closed = true;
      await writes.close();
      // Hooks run while the keys are still held: a hook may append a keyed audit entry (the
      // rejection summaries flushed on a clean stop).
      for (const hook of closeHooks.splice(0)) {
        try {
          hook();
        } catch (error) {
          logger.warn('a close hook failed', {
            error: error instanceof Error ? error.message : String(error),
          });
        }
      }
      keyring.close();
      try {
        // Best effort and never worth a wait: another process may hold the lock.
        sqlite.run('PRAGMA busy_timeout = 0');
        sqlite.run('PRAGMA optimize');
      } catch {
        // Best effort; the database may be read-only or locked.
      }
      closeNow(sqlite);
    },
    onClose(hook) {
      closeHooks.push(hook);
    },
  };
}
