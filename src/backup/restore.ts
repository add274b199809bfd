/** `secryn restore`: checks a backup against the master key, then swaps it in (old one kept). */
import { Database, SQLiteError } from 'bun:sqlite';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { commitLocalChange } from '../changes/index.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config/schema.ts';
import { fsyncDirectory, renameNoReplace } from '../crypto/atomic-file.ts';
import { isDatabaseBusy } from '../db/write-lock.ts';
import { masterKeyFingerprint } from '../crypto/keyring.ts';
import { openInstance } from '../instance.ts';
import { verifyChain } from '../audit/verify.ts';
import { openDatabase } from '../db/client.ts';
import { runMigrations } from '../db/migrate.ts';
import { KeyringError, MasterKeyMismatchError } from '../keyring/errors.ts';
import { readIntegrityWith } from '../keyring/integrity.ts';
import { readKeyringSnapshot, unlockKeyring } from '../keyring/store.ts';
import { tamperedApiKeys } from '../keyring/api-key-mac.ts';
import { loadConfiguredMasterKey, type Env } from '../keyring/key-files.ts';
import type { Logger } from '../log/logger.ts';
import { BackupError, inspectBackup, syncFile, type BackupInfo } from './backup.ts';
import { runningServePid } from './serve-marker.ts';
import { decryptFile, isAgeFile, readIdentityFile } from './age.ts';

export type RestoreResult = {
  restored: BackupInfo;
  /** Where the database that was replaced now is (kept until the operator removes it). */
  previous: string | null;
  /** Every file moved aside: `previous`, and its -wal/-shm when it was moved as it was. */
  previousFiles: string[];
  /** SQLite's reason when the replaced database could not be read (it was moved as it was). */
  previousUnreadable: string | null;
};

/** The database file and the SQLite files that belong to it, which move together. */
const DATABASE_SUFFIXES = ['', '-wal', '-shm'] as const;

/** Where {@link moveAside} put the replaced database, so that a rollback can put it back. */
type SetAside = {
  /** The database file's new path; a moved -wal/-shm is this path plus its suffix. */
  path: string;
  /** Which of {@link DATABASE_SUFFIXES} were moved. */
  moved: string[];
  unreadable: string | null;
};

/**
 * Replaces the instance's database with a backup made by `secryn backup`:
 * 1. the backup must be a whole Secryn database sealed with the configured master key, and not
 *    the live database itself (or its -wal/-shm) by any path (else nothing is touched and the
 *    message says which);
 * 2. no `secryn serve` may be running on the database;
 * 3. the current database is checkpointed and moved aside to `<db>.pre-restore-<time>` (with
 *    `-2`, `-3`, … appended when that name is taken: a kept database is never overwritten); one
 *    that SQLite cannot read (damaged, truncated, not a database) is moved aside as it is,
 *    with its -wal and -shm, and `previousUnreadable` says why; while another process keeps
 *    the checkpoint from completing (past `storage.busy_timeout_ms`), nothing is moved and
 *    the restore is refused;
 * 4. the backup is copied in (0600, fsynced, renamed into place), migrated if it is older, and
 *    the restore is recorded in its audit log as `instance.restore`.
 * If anything fails after step 3, the previous database is put back.
 */
export async function restoreBackup(
  config: Config,
  source: string,
  options: { env: Env; clock: Clock; logger: Logger },
): Promise<RestoreResult> {
  const target = config.storage.path;
  refuseLiveDatabase(source, target);
  const info = inspectBackup(source);
  const pid = runningServePid(target);
  if (pid !== undefined) {
    throw new BackupError(
      `secryn serve (pid ${pid}) is running on ${target}; stop it before restoring`,
    );
  }
  const key = loadConfiguredMasterKey(config, options.env);
  const staging = stagingPath(target);
  try {
    refuseOtherMasterKey(info, key.key);
    // Checked on a private copy, before anything is moved: a refused backup replaces nothing.
    rmSync(staging, { force: true });
    copyFileSync(source, staging);
    chmodSync(staging, 0o600);
    verifyBackupIntegrity(staging, key.key, config);
  } catch (error) {
    rmSync(staging, { force: true });
    throw error;
  } finally {
    key.key.fill(0);
  }
  let previous: SetAside | null = null;
  try {
    // Read before the database moves: the restored one gets the same owner and mode, so a
    // restore run as root leaves a database the service user can still open.
    const ownership = ownershipFor(target);
    previous = existsSync(target)
      ? moveAside(target, options.clock.now(), config.storage.busy_timeout_ms)
      : null;
    applyOwnership(staging, ownership);
    syncFile(staging);
    renameSync(staging, target);
    fsyncDirectory(dirname(target));
    const instance = openInstance(config, options.logger, {
      env: options.env,
      clock: options.clock,
    });
    try {
      commitLocalChange(
        instance,
        'instance.restore',
        { type: 'instance', id: null },
        () => undefined,
      );
    } finally {
      await instance.close();
    }
    // A -wal/-shm SQLite left behind was created by this process: the service user needs them.
    for (const suffix of ['-wal', '-shm']) {
      if (existsSync(target + suffix)) applyOwnership(target + suffix, ownership);
    }
  } catch (error) {
    rmSync(staging, { force: true });
    if (previous) {
      // What is at the target now is the copy of the backup (and its -wal/-shm): ours to remove.
      for (const suffix of DATABASE_SUFFIXES) rmSync(target + suffix, { force: true });
      putBack(previous, target);
    }
    throw error;
  }
  return {
    restored: info,
    previous: previous?.path ?? null,
    previousFiles: previous?.moved.map((suffix) => previous.path + suffix) ?? [],
    previousUnreadable: previous?.unreadable ?? null,
  };
}

/** @throws BackupError when the backup is sealed with another master key than `masterKey`. */
export function refuseOtherMasterKey(info: BackupInfo, masterKey: Uint8Array): void {
  const fingerprint = masterKeyFingerprint(masterKey);
  if (fingerprint !== info.masterKeyFingerprint) {
    throw new BackupError(
      `the backup is sealed with master key ${info.masterKeyFingerprint}, but the configured key is ` +
        `${fingerprint}; configure the master key that belongs to this backup`,
    );
  }
}

/** A backup that fails its integrity check: nothing was replaced (exit 65, see docs). */
export class BackupIntegrityError extends BackupError {
  override name = 'BackupIntegrityError';
  /**
   * What failed, without the sentence around it (`restore` says "backup refused…", other
   * callers of the verifier speak of their own copy).
   */
  readonly reason: string;

  constructor(message: string, reason: string = message) {
    super(message);
    this.reason = reason;
  }
}

/**
 * Verifies a copy of a backup completely with the configured master key: the keyring opens (every
 * data key and the integrity key unwrap), every API key's MAC verifies, and the audit chain
 * verifies keyed. The copy is migrated first if it is older (it is the copy that will be put in
 * place). Throws BackupIntegrityError naming the first thing that failed.
 */
export function verifyBackupIntegrity(path: string, masterKey: Uint8Array, config: Config): void {
  const refuse = (what: string) =>
    new BackupIntegrityError(`backup refused, nothing was replaced: ${what}`, what);
  const sqlite = openDatabase(path, {
    synchronous: 'full',
    busyTimeoutMs: config.storage.busy_timeout_ms,
    mustExist: true,
  });
  try {
    runMigrations(sqlite);
    let integrity;
    try {
      const snapshot = readKeyringSnapshot(sqlite);
      if (!snapshot) throw refuse('it has no keyring');
      unlockKeyring(masterKey, snapshot.state, snapshot.wrapped);
      integrity = readIntegrityWith(sqlite, masterKey);
    } catch (error) {
      if (error instanceof KeyringError || error instanceof MasterKeyMismatchError) {
        throw refuse(`its keyring does not open with the configured master key (${error.message})`);
      }
      throw error;
    }
    try {
      const tampered = tamperedApiKeys(sqlite, integrity.apiKeyMac);
      if (tampered.length > 0) {
        throw refuse(
          `${tampered.length} API key${tampered.length === 1 ? '' : 's'} fail their integrity ` +
            `check (${tampered
              .slice(0, 3)
              .map((id) => id.slice(0, 40))
              .join(', ')}${tampered.length > 3 ? ', …' : ''}): ` +
            'planted or edited in the file',
        );
      }
      const chain = verifyChain(sqlite, { key: integrity });
      if (!chain.intact) {
        throw refuse(`its audit log is broken (${chain.problem!.kind}): ${chain.problem!.message}`);
      }
    } finally {
      integrity.apiKeyMac.fill(0);
      integrity.auditChain.fill(0);
      integrity.state.fill(0);
    }
  } finally {
    sqlite.close(true);
  }
}

/**
 * Moves the database at `path` out of the way, to a free `<path>.pre-restore-<time>[-n]`
 * ({@link claimAsideName}); nothing already there is ever replaced. A database SQLite
 * can read is checkpointed first, so that the one file holds everything, and its emptied
 * -wal/-shm are removed. One it cannot read is moved as it is, together with its -wal and -shm:
 * that is when an operator restores, and the damaged files are all there is to examine.
 * If a move fails, what was already moved is put back.
 */
function moveAside(path: string, now: number, busyTimeoutMs: number): SetAside {
  // Listed before SQLite looks at them: reading a damaged database may create a -shm.
  const present = DATABASE_SUFFIXES.filter((suffix) => existsSync(path + suffix));
  const unreadable = checkpoint(path, busyTimeoutMs);
  const aside: SetAside = { path: claimAsideName(path, now), moved: [''], unreadable };
  const companions = unreadable === null ? [] : present.filter((suffix) => suffix !== '');
  try {
    for (const suffix of companions) {
      renameNoReplace(path + suffix, aside.path + suffix);
      aside.moved.push(suffix);
    }
  } catch (error) {
    putBack(aside, path);
    throw error;
  }
  // Left now: an emptied WAL and its index, or a -shm this process created while reading.
  for (const suffix of ['-wal', '-shm']) rmSync(path + suffix, { force: true });
  fsyncDirectory(dirname(path));
  return aside;
}

/**
 * Folds the WAL into the database file. Returns null when done, or SQLite's reason when the
 * database cannot be read, in which case nothing has been written to it or its WAL.
 * @throws BackupError when another process keeps the checkpoint from completing (waiting up to
 *   `busyTimeoutMs`): its WAL then still holds commits, which moving the file would lose.
 */
function checkpoint(path: string, busyTimeoutMs: number): string | null {
  const problem = readProblem(path, busyTimeoutMs);
  if (problem !== null) return problem;
  let sqlite: Database | undefined;
  try {
    sqlite = new Database(path, { readwrite: true, create: false });
    sqlite.run(`PRAGMA busy_timeout = ${Math.trunc(busyTimeoutMs)}`);
    const result = sqlite.query<{ busy: number }, []>('PRAGMA wal_checkpoint(TRUNCATE)').get();
    if (result?.busy !== 0) throw heldByAnotherProcess(path);
    return null;
  } catch (error) {
    return unreadableReason(error, path);
  } finally {
    closeQuietly(sqlite);
  }
}

/**
 * SQLite's message for a database at `path` it cannot read. A lock held by another process is
 * not damage: it refuses the restore ({@link heldByAnotherProcess}). Anything else is rethrown.
 */
function unreadableReason(error: unknown, path: string): string {
  if (isLockError(error)) throw heldByAnotherProcess(path);
  if (error instanceof SQLiteError) return error.message;
  throw error;
}

/** SQLITE_BUSY or SQLITE_LOCKED (and their extended codes): another process, not damage. */
function isLockError(error: unknown): boolean {
  return (
    isDatabaseBusy(error) ||
    (error instanceof SQLiteError && (error.code ?? '').startsWith('SQLITE_LOCKED'))
  );
}

function heldByAnotherProcess(path: string): BackupError {
  return new BackupError(
    `another process has ${path} open or locked (its WAL could not be checkpointed); stop it ` +
      'before restoring',
    true,
  );
}

/**
 * SQLite's reason why the database at `path` cannot be read (`quick_check`), or null. The
 * connection is read-only: a read-write one would checkpoint on close, copying the WAL into a
 * damaged file and deleting the WAL, which would change what is set aside.
 */
function readProblem(path: string, busyTimeoutMs: number): string | null {
  let sqlite: Database | undefined;
  try {
    sqlite = new Database(path, { readonly: true });
    sqlite.run(`PRAGMA busy_timeout = ${Math.trunc(busyTimeoutMs)}`);
    const first = sqlite
      .query<{ quick_check: string }, []>('PRAGMA quick_check')
      .get()?.quick_check;
    return first === 'ok' ? null : `damaged (${first ?? 'quick_check returned nothing'})`;
  } catch (error) {
    return unreadableReason(error, path);
  } finally {
    closeQuietly(sqlite);
  }
}

/** Closes a connection whose file may be damaged; a failure to close changes nothing here. */
function closeQuietly(sqlite: Database | undefined): void {
  try {
    sqlite?.close();
  } catch {
    // the files are moved as they are either way
  }
}

/**
 * Moves the database file at `path` to the first free `<path>.pre-restore-<UTC time>[-n]` (free:
 * neither it nor its -wal/-shm exists) and returns that name. The move is a hard link that
 * fails rather than replace a file, so two restores in the same second keep both databases.
 */
function claimAsideName(path: string, now: number): string {
  const stamp = new Date(now)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
  for (let n = 1; ; n++) {
    const candidate = `${path}.pre-restore-${stamp}${n === 1 ? '' : `-${n}`}`;
    if (DATABASE_SUFFIXES.some((suffix) => existsSync(candidate + suffix))) continue;
    try {
      renameNoReplace(path, candidate);
      return candidate;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}

/** Where the backup is copied before it is renamed over the database. */
function stagingPath(target: string): string {
  return `${target}.restore-tmp`;
}

/**
 * @throws BackupError when `source` is the live database, its -wal/-shm or the restore's own
 *   staging file: compared by device and inode, so another spelling, a symlink or a hard link
 *   to it is refused too. Restoring it would move it aside and then copy from nothing.
 */
function refuseLiveDatabase(source: string, target: string): void {
  const backup = statIfExists(source);
  if (!backup) return; // inspectBackup says that it does not exist
  for (const live of [...DATABASE_SUFFIXES.map((s) => target + s), stagingPath(target)]) {
    const stat = statIfExists(live);
    if (stat && stat.dev === backup.dev && stat.ino === backup.ino) {
      throw new BackupError(
        `${source} is ${live}, a file of the live database, not a backup; restore from a file ` +
          'written by `secryn backup`',
      );
    }
  }
}

function statIfExists(path: string): { dev: number; ino: number } | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** Undoes {@link moveAside}: the set-aside files return to `path`, which must be free. */
function putBack(aside: SetAside, path: string): void {
  for (const suffix of aside.moved) renameSync(aside.path + suffix, path + suffix);
  fsyncDirectory(dirname(path));
}

/** The owner and permission bits a restored database must get. */
type Ownership = { uid: number; gid: number; mode: number };

/**
 * The replaced database's owner and mode; with none, the directory's owner and 0600. Only
 * root can give a file away, so for anyone else the owner is left as it is (it is already
 * theirs, or they could not have replaced the database).
 */
function ownershipFor(target: string): Ownership {
  if (existsSync(target)) {
    const stat = statSync(target);
    return { uid: stat.uid, gid: stat.gid, mode: stat.mode & 0o777 };
  }
  const directory = statSync(dirname(target));
  return { uid: directory.uid, gid: directory.gid, mode: 0o600 };
}

function applyOwnership(path: string, ownership: Ownership): void {
  if (process.getuid?.() === 0) chownSync(path, ownership.uid, ownership.gid);
  // Never wider for others than the replaced file, never unreadable to its owner.
  chmodSync(path, (ownership.mode | 0o600) & 0o770);
}

/**
 * Restores from a file written by `secryn backup` or a scheduled backup: an age-encrypted one
 * (see ./age.ts) is decrypted with the identities of `identityFile` to a private file beside the
 * database first, which is removed afterwards; a plain one is restored as it is. Then
 * {@link restoreBackup}.
 * @throws BackupError when an encrypted backup comes without an identity, or does not open.
 */
export async function restoreFromFile(
  config: Config,
  source: string,
  options: { env: Env; clock: Clock; logger: Logger; identityFile?: string },
): Promise<RestoreResult> {
  if (!existsSync(source)) throw new BackupError(`${source} does not exist`);
  if (!isAgeFile(source)) return restoreBackup(config, source, options);
  if (options.identityFile === undefined) {
    throw new BackupError(
      `${source} is encrypted with age; pass --identity with the file of the key it was encrypted to`,
    );
  }
  const identities = readIdentityFile(options.identityFile);
  const decrypted = `${config.storage.path}.restore-decrypted`;
  rmSync(decrypted, { force: true });
  try {
    await decryptFile(source, decrypted, identities);
    const result = await restoreBackup(config, decrypted, options);
    return { ...result, restored: { ...result.restored, path: source } };
  } finally {
    rmSync(decrypted, { force: true });
  }
}
