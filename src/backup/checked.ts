/**
 * Backups that are checked after they are written: the snapshot (optionally age-encrypted to the
 * operator's recipients) is read back as a restore would read it, and only then counts as a
 * backup. Shared by `secryn backup` and the scheduled backups of `serve` (./schedule.ts).
 */
import type { Database } from 'bun:sqlite';
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Config } from '../config/schema.ts';
import { randomBytes } from 'node:crypto';
import { fsyncDirectory, renameNoReplace } from '../crypto/atomic-file.ts';
import { BackupError, inspectBackup, snapshotTo, type BackupInfo } from './backup.ts';
import { decryptFile, encryptFile, ephemeralIdentity, isAgeFile } from './age.ts';
import { verifyBackupIntegrity } from './restore.ts';

/** A written and checked backup; `bytes` is the size of the file as stored (encrypted or not). */
export type CheckedBackup = BackupInfo & { encrypted: boolean; plainBytes: number };

/** Suffix of the private temporary files a backup or a check makes beside its target. */
export const TEMP_SUFFIX = '.secryn-tmp';

/** A private temporary name beside `target` (same file system, so nothing crosses devices). */
export function tempBeside(target: string, what: string): string {
  return join(
    dirname(target),
    `.${basename(target)}.${what}-${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`,
  );
}

/** Where one backup is staged beside its target; every name is private and temporary. */
export type StagedPaths = {
  /** The file that becomes the backup (renamed to the target once checked). */
  staging: string;
  /** The plain snapshot (the same as `staging` without recipients). */
  plain: string;
  /** The copy that is checked, as a restore would read it. */
  check: string;
};

/** The heavy part of a backup, which a server runs off its event loop (./off-thread.ts). */
export type PrepareJob = StagedPaths & {
  source: string;
  recipients: readonly string[];
  masterKey: Uint8Array;
  config: Config;
};

/**
 * Runs {@link prepareCheckedBackup}; `secryn backup` runs it in-process, `serve` in a worker
 * (./off-thread.ts) so that a backup of a large database never stalls requests.
 */
export type PrepareRunner = (job: PrepareJob) => Promise<BackupInfo>;

/**
 * Snapshots `sqlite` (the database at `job.source`) into `job.plain`, encrypts it to the
 * recipients plus a throwaway one (./age.ts `ephemeralIdentity`) into `job.staging`, decrypts
 * that again with the throwaway identity into `job.check` and checks it as restore does
 * ({@link verifyBackupFile}): what is checked is exactly what was stored. Without recipients
 * the snapshot itself is staged. On success only `job.staging` remains; on failure nothing.
 */
export async function prepareCheckedBackup(sqlite: Database, job: PrepareJob): Promise<BackupInfo> {
  let complete = false;
  try {
    const snapshot = snapshotTo(sqlite, job.source, job.plain);
    if (job.recipients.length === 0) {
      copyFileSync(job.plain, job.check);
    } else {
      const throwaway = await ephemeralIdentity(job.recipients);
      await encryptFile(job.plain, job.staging, [...job.recipients, throwaway.recipient]);
      rmSync(job.plain, { force: true });
      await decryptFile(job.staging, job.check, [throwaway.identity]);
    }
    verifyBackupFile(job.check, job.masterKey, job.config);
    complete = true;
    return snapshot;
  } finally {
    removeWithCompanions(job.check);
    if (job.plain !== job.staging) rmSync(job.plain, { force: true });
    if (!complete) rmSync(job.staging, { force: true });
  }
}

/**
 * Writes a backup of `sqlite` (the database at `source`) to `target` and checks it
 * ({@link prepareCheckedBackup}, in-process unless `prepare` runs it elsewhere). `record` runs
 * once the backup is known good (it records the backup in the audit log). On any failure
 * nothing is left at `target` and no temporary file remains; `target` appears only once the
 * backup has passed.
 */
export async function writeCheckedBackup(
  sqlite: Database,
  source: string,
  target: string,
  options: {
    recipients: readonly string[];
    masterKey: Uint8Array;
    config: Config;
    record: () => void | Promise<void>;
    prepare?: PrepareRunner;
  },
): Promise<CheckedBackup> {
  if (existsSync(target))
    throw new BackupError(`${target} already exists; refusing to overwrite it`);
  if (!existsSync(dirname(target)))
    throw new BackupError(`directory ${dirname(target)} does not exist`);
  // Everything is written under private temporary names; only a checked backup gets its name,
  // so a file named like a backup always is a good one (a crash leaves only temporary files).
  const staging = tempBeside(target, 'staging');
  const paths: StagedPaths = {
    staging,
    plain: options.recipients.length === 0 ? staging : tempBeside(target, 'plain'),
    check: tempBeside(target, 'check'),
  };
  const job: PrepareJob = {
    ...paths,
    source,
    recipients: options.recipients,
    masterKey: options.masterKey,
    config: options.config,
  };
  let renamed = false;
  let complete = false;
  try {
    const snapshot = options.prepare
      ? await options.prepare(job)
      : await prepareCheckedBackup(sqlite, job);
    renameNoReplace(staging, target);
    renamed = true;
    fsyncDirectory(dirname(target));
    await options.record();
    complete = true;
    return {
      ...snapshot,
      path: target,
      bytes: Bun.file(target).size,
      plainBytes: snapshot.bytes,
      encrypted: options.recipients.length > 0,
    };
  } finally {
    // Also when a worker died half-way: whatever it left is removed here.
    removeWithCompanions(paths.check);
    rmSync(paths.plain, { force: true });
    rmSync(staging, { force: true });
    if (renamed && !complete) rmSync(target, { force: true });
  }
}

/**
 * Checks a plain backup file completely, as restore does before replacing anything: SQLite's
 * integrity check, a Secryn database, its keyring opens with `masterKey`, every API key's MAC
 * and the keyed audit chain verify. The file is migrated if older, so pass a copy.
 * @throws BackupError (BackupIntegrityError for a failed MAC or chain) naming what is wrong.
 */
export function verifyBackupFile(path: string, masterKey: Uint8Array, config: Config): BackupInfo {
  const info = inspectBackup(path);
  verifyBackupIntegrity(path, masterKey, config);
  return info;
}

/**
 * `secryn backup verify`: checks the backup at `path` without restoring it. An encrypted one
 * needs `identities`; it is decrypted to a private temporary file in `scratchDirectory` (a
 * plain one is copied there, since the check migrates what it checks). Nothing else is written.
 */
export async function verifyBackup(
  path: string,
  options: {
    identities?: readonly string[];
    masterKey: Uint8Array;
    config: Config;
    scratchDirectory: string;
  },
): Promise<BackupInfo & { encrypted: boolean }> {
  if (!existsSync(path)) throw new BackupError(`${path} does not exist`);
  const encrypted = isAgeFile(path);
  const scratch = tempBeside(join(options.scratchDirectory, basename(path)), 'verify');
  try {
    if (encrypted) {
      if (!options.identities) {
        throw new BackupError(
          `${path} is encrypted with age; pass --identity with the file of the key it was encrypted to`,
        );
      }
      await decryptFile(path, scratch, options.identities);
    } else {
      copyFileSync(path, scratch);
    }
    const info = verifyBackupFile(scratch, options.masterKey, options.config);
    return { ...info, path, bytes: Bun.file(path).size, encrypted };
  } finally {
    removeWithCompanions(scratch);
  }
}

/** A checked copy and the -wal/-shm its check may have left. */
function removeWithCompanions(path: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(path + suffix, { force: true });
}
