/** `secryn backup`: a consistent, integrity-checked copy of the database (values stay sealed). */
import { Database, SQLiteError } from 'bun:sqlite';
import {
  closeSync,
  constants,
  existsSync,
  fchmodSync,
  fsyncSync,
  openSync,
  readSync,
  rmSync,
  statSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { commitLocalChange } from '../changes/index.ts';
import { forgetIntegrity, readIntegrityWith, registerIntegrity } from '../keyring/integrity.ts';
import { loadConfiguredMasterKey, type Env } from '../keyring/key-files.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config/schema.ts';
import { createDb, openDatabase } from '../db/client.ts';
import { fsyncDirectory } from '../crypto/atomic-file.ts';
import { NotInitializedError } from '../instance.ts';
import { readKeyringState } from '../keyring/store.ts';

/** What a backup file holds, as far as an operator needs to know to restore it. */
export type BackupInfo = {
  path: string;
  bytes: number;
  /** Fingerprint of the master key the backup's keyring is sealed with. */
  masterKeyFingerprint: string;
  createdAt: number;
};

/** A backup (or restore) that cannot be made; the message says why, without secrets. */
export class BackupError extends Error {
  /** @param busy another process holds the database: the command may simply be run again. */
  constructor(
    message: string,
    readonly busy = false,
  ) {
    super(message);
    this.name = 'BackupError';
  }
}

/**
 * Writes a consistent snapshot of the database to `target` with `VACUUM INTO`, which reads one
 * transaction's view and is safe while `secryn serve` keeps writing. The copy holds values only as
 * ciphertext and never the master key (its metadata is readable: keep it private); its secrets
 * cannot be read, nor its keys and audit log edited undetected, without the key, which the operator must
 * back up separately. The source must be a Secryn database (else it is left untouched and nothing
 * is written). The target is created exclusively with mode 0600 before any byte is written
 * (refusing an existing file), fsynced, checked with `PRAGMA integrity_check`, and the backup is
 * recorded in the audit log as `instance.backup`. If any step fails, the partial file is removed.
 * @throws NotInitializedError when there is no database; BackupError for anything else an
 *   operator can act on (target exists, source not a Secryn database or unreadable).
 */
export function createBackup(
  config: Config,
  target: string,
  clock: Clock,
  env: Env = process.env,
): BackupInfo {
  return withSourceDatabase(config, target, env, (sqlite, source) =>
    writeBackup(sqlite, source, target, clock),
  );
}

/**
 * Opens the configured database for a backup to `target`, after the checks every backup
 * makes ({@link createBackup}), with the master key's integrity key registered (the backup's
 * own audit entry is keyed); `write` gets the connection, the database path and the master
 * key (zeroed once `write` settles). The connection is closed afterwards.
 */
export function withSourceDatabase<T>(
  config: Config,
  target: string,
  env: Env,
  write: (sqlite: Database, source: string, masterKey: Uint8Array) => T,
): T {
  const source = config.storage.path;
  if (!existsSync(source)) throw new NotInitializedError(source);
  if (existsSync(target))
    throw new BackupError(`${target} already exists; refusing to overwrite it`);
  if (!existsSync(dirname(target)))
    throw new BackupError(`directory ${dirname(target)} does not exist`);
  // Checked before opening: opening switches the file to WAL, which would write a header into
  // an empty or foreign file that the operator may still want to examine.
  if (!hasSqliteHeader(source)) throw notSecrynSource(source);
  const sqlite = openDatabase(source, {
    synchronous: config.storage.synchronous,
    busyTimeoutMs: config.storage.busy_timeout_ms,
    mustExist: true,
  });
  let masterKey: Uint8Array | undefined;
  let result: T | undefined;
  const release = () => {
    masterKey?.fill(0);
    forgetIntegrity(sqlite);
    sqlite.close();
  };
  try {
    if (!readSourceIdentity(sqlite, source)) throw notSecrynSource(source);
    // The backup's own audit entry is keyed: it needs the master key's integrity key.
    masterKey = loadConfiguredMasterKey(config, env).key;
    registerIntegrity(sqlite, readIntegrityWith(sqlite, masterKey));
    result = write(sqlite, source, masterKey);
  } finally {
    if (!(result instanceof Promise)) release();
  }
  return result instanceof Promise ? (result.finally(release) as T) : (result as T);
}

/**
 * The body of {@link createBackup} once the source is known to be a Secryn database: creates
 * `target`, fills it, checks it and records it; on any failure nothing is left at `target`.
 */
function writeBackup(sqlite: Database, source: string, target: string, clock: Clock): BackupInfo {
  return snapshotTo(sqlite, source, target, () =>
    commitLocalChange(
      { sqlite, db: createDb(sqlite), clock },
      'instance.backup',
      { type: 'instance', id: null },
      () => undefined,
    ),
  );
}

/**
 * Creates `target` (0600, exclusively), fills it with `VACUUM INTO` from `sqlite`, fsyncs it,
 * checks it ({@link inspectBackup}) and runs `record` (which records it); on any failure
 * nothing is left at `target`. Shared by `secryn backup` and the scheduled backups of `serve`.
 */
export function snapshotTo(
  sqlite: Database,
  source: string,
  target: string,
  record: () => void = () => {},
): BackupInfo {
  const journal = `${target}-journal`;
  const journalExisted = existsSync(journal);
  createPrivateFile(target);
  let complete = false;
  try {
    vacuumInto(sqlite, source, target);
    syncFile(target);
    fsyncDirectory(dirname(target));
    const info = inspectBackup(target);
    record();
    complete = true;
    return info;
  } finally {
    if (!complete) {
      // A half-written or unrecorded backup must not look like one, nor block the next attempt.
      rmSync(target, { force: true });
      if (!journalExisted) rmSync(journal, { force: true });
      fsyncDirectory(dirname(target));
    }
  }
}

/**
 * Creates `path` empty with mode 0600, failing if it exists. SQLite would create the file with
 * 0644 (less the umask) and `VACUUM INTO` accepts an existing empty file, so creating it here
 * keeps the copy private from its first byte whatever the caller's umask.
 */
export function createPrivateFile(path: string): void {
  let fd: number;
  try {
    fd = openSync(
      path,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST')
      throw new BackupError(`${path} already exists; refusing to overwrite it`);
    throw error;
  }
  try {
    // The umask may have removed bits SQLite needs to write; set exactly 0600.
    fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
}

/** `VACUUM INTO`, with SQLite's failure (a damaged page, a full disk) as one BackupError line. */
function vacuumInto(sqlite: Database, source: string, target: string): void {
  asBackupError(`could not back up ${source}`, () => sqlite.run('VACUUM INTO ?', [target]));
}

/** {@link readSecrynIdentity} of the source, with SQLite's failure as one BackupError line. */
function readSourceIdentity(sqlite: Database, source: string): boolean {
  return asBackupError(`could not read ${source}`, () => readSecrynIdentity(sqlite) !== undefined);
}

/** Runs `step`; a SQLiteError becomes `BackupError("<what>: <SQLite's message>; nothing was written")`. */
function asBackupError<T>(what: string, step: () => T): T {
  try {
    return step();
  } catch (error) {
    if (error instanceof SQLiteError) {
      throw new BackupError(`${what}: ${error.message}; nothing was written`);
    }
    throw error;
  }
}

function notSecrynSource(source: string): BackupError {
  return new BackupError(`${source} (storage.path) is not a Secryn database; nothing was written`);
}

/** Whether the file starts with SQLite's 16-byte magic string (an empty file does not). */
function hasSqliteHeader(path: string): boolean {
  const magic = Buffer.from('SQLite format 3\0', 'latin1');
  const head = Buffer.alloc(magic.length);
  const fd = openSync(path, 'r');
  try {
    return readSync(fd, head, 0, head.length, 0) === head.length && head.equals(magic);
  } finally {
    closeSync(fd);
  }
}

/**
 * What makes a file a Secryn database: the instance row and a readable keyring. Undefined for
 * any other SQLite database.
 */
function readSecrynIdentity(
  sqlite: Database,
): { createdAt: number; masterKeyFingerprint: string } | undefined {
  const hasInstance = sqlite
    .query(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'instance'`)
    .get();
  if (!hasInstance) return undefined;
  const created = sqlite
    .query<{ created_at: number }, []>('SELECT created_at FROM instance WHERE id = 1')
    .get();
  const keyring = safeKeyringState(sqlite);
  if (!created || !keyring) return undefined;
  return { createdAt: created.created_at, masterKeyFingerprint: keyring.fingerprint };
}

/**
 * Checks that `path` is a whole Secryn database (integrity check, instance row, keyring) and
 * reads what restoring it needs.
 * @throws BackupError naming what is wrong.
 */
export function inspectBackup(path: string): BackupInfo {
  if (!existsSync(path)) throw new BackupError(`${path} does not exist`);
  let sqlite: Database;
  try {
    sqlite = new Database(path, { readonly: true, strict: true });
  } catch {
    throw new BackupError(`${path} is not a SQLite database`);
  }
  try {
    let integrity: string | undefined;
    try {
      integrity = sqlite
        .query<{ integrity_check: string }, []>('PRAGMA integrity_check')
        .get()?.integrity_check;
    } catch {
      throw new BackupError(`${path} is not a SQLite database`);
    }
    if (integrity !== 'ok') throw new BackupError(`${path} is damaged (integrity check failed)`);
    const identity = readSecrynIdentity(sqlite);
    if (!identity) throw new BackupError(`${path} is not a Secryn database`);
    return { path, bytes: statSync(path).size, ...identity };
  } finally {
    sqlite.close();
  }
}

function safeKeyringState(sqlite: Database) {
  try {
    return readKeyringState(sqlite);
  } catch {
    return undefined;
  }
}

/** fsync of a whole file (durable before we say it is written). */
export function syncFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
