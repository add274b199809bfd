import { Database } from 'bun:sqlite';
import { chmodSync, copyFileSync, existsSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { recordLocalAction } from '../audit/record.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config/schema.ts';
import { fsyncDirectory } from '../crypto/atomic-file.ts';
import { masterKeyFingerprint } from '../crypto/keyring.ts';
import { openInstance } from '../instance.ts';
import { loadConfiguredMasterKey, type Env } from '../keyring/key-files.ts';
import type { Logger } from '../log/logger.ts';
import { BackupError, inspectBackup, syncFile, type BackupInfo } from './backup.ts';
import { runningServePid } from './serve-marker.ts';

export type RestoreResult = {
  restored: BackupInfo;
  /** Where the database that was replaced now is (kept until the operator removes it). */
  previous: string | null;
};

/**
 * Replaces the instance's database with a backup made by `secryn backup`:
 * 1. the backup must be a whole Secryn database sealed with the configured master key (else
 *    nothing is touched and the message names both fingerprints);
 * 2. no `secryn serve` may be running on the database;
 * 3. the current database is checkpointed and moved aside to `<db>.pre-restore-<time>`;
 * 4. the backup is copied in (0600, fsynced, renamed into place), migrated if it is older, and
 *    the restore is recorded in its audit log as `instance.restore`.
 * If anything fails after step 3, the previous database is put back.
 */
export function restoreBackup(
  config: Config,
  source: string,
  options: { env: Env; clock: Clock; logger: Logger },
): RestoreResult {
  const info = inspectBackup(source);
  const target = config.storage.path;
  const pid = runningServePid(target);
  if (pid !== undefined) {
    throw new BackupError(
      `secryn serve (pid ${pid}) is running on ${target}; stop it before restoring`,
    );
  }
  const key = loadConfiguredMasterKey(config, options.env);
  const fingerprint = masterKeyFingerprint(key.key);
  key.key.fill(0);
  if (fingerprint !== info.masterKeyFingerprint) {
    throw new BackupError(
      `the backup is sealed with master key ${info.masterKeyFingerprint}, but the configured key is ` +
        `${fingerprint}; configure the master key that belongs to this backup`,
    );
  }
  const previous = existsSync(target) ? moveAside(target, options.clock.now()) : null;
  const staging = `${target}.restore-tmp`;
  try {
    rmSync(staging, { force: true });
    copyFileSync(source, staging);
    chmodSync(staging, 0o600);
    syncFile(staging);
    renameSync(staging, target);
    fsyncDirectory(dirname(target));
    const instance = openInstance(config, options.logger, {
      env: options.env,
      clock: options.clock,
    });
    try {
      recordLocalAction(
        instance,
        'instance.restore',
        { type: 'instance', id: null },
        () => undefined,
      );
    } finally {
      void instance.close();
    }
  } catch (error) {
    rmSync(staging, { force: true });
    if (previous) {
      for (const suffix of ['', '-wal', '-shm']) rmSync(target + suffix, { force: true });
      renameSync(previous, target);
      fsyncDirectory(dirname(target));
    }
    throw error;
  }
  return { restored: info, previous };
}

/** Folds the WAL into the database file and renames it (without -wal/-shm) out of the way. */
function moveAside(path: string, now: number): string {
  const sqlite = new Database(path, { readwrite: true, create: false });
  try {
    sqlite.run('PRAGMA wal_checkpoint(TRUNCATE)');
  } finally {
    sqlite.close();
  }
  const stamp = new Date(now)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
  const aside = `${path}.pre-restore-${stamp}`;
  renameSync(path, aside);
  for (const suffix of ['-wal', '-shm']) rmSync(path + suffix, { force: true });
  fsyncDirectory(dirname(path));
  return aside;
}
