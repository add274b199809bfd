import { Database } from 'bun:sqlite';
import { chmodSync, existsSync, openSync, closeSync, fsyncSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { appendAuditEntry, localAuditEntry } from '../audit/record.ts';
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
  constructor(message: string) {
    super(message);
    this.name = 'BackupError';
  }
}

/**
 * Writes a consistent snapshot of the database to `target` with `VACUUM INTO`, which reads one
 * transaction's view and is safe while `secryn serve` keeps writing. The copy holds values only as
 * ciphertext and never the master key: it is useless without the key, which the operator must
 * back up separately. The file is created 0600 (refusing an existing one), fsynced, checked with
 * `PRAGMA integrity_check`, and the backup is recorded in the audit log as `instance.backup`.
 */
export function createBackup(config: Config, target: string, clock: Clock): BackupInfo {
  const source = config.storage.path;
  if (!existsSync(source)) throw new NotInitializedError(source);
  if (existsSync(target))
    throw new BackupError(`${target} already exists; refusing to overwrite it`);
  if (!existsSync(dirname(target)))
    throw new BackupError(`directory ${dirname(target)} does not exist`);
  const sqlite = openDatabase(source, {
    synchronous: config.storage.synchronous,
    busyTimeoutMs: config.storage.busy_timeout_ms,
    mustExist: true,
  });
  try {
    sqlite.run('VACUUM INTO ?', [target]);
    chmodSync(target, 0o600);
    syncFile(target);
    fsyncDirectory(dirname(target));
    const info = inspectBackup(target);
    sqlite
      .transaction(() =>
        appendAuditEntry(
          createDb(sqlite),
          clock,
          localAuditEntry('instance.backup', { type: 'instance', id: null }),
        ),
      )
      .immediate();
    return info;
  } finally {
    sqlite.close();
  }
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
    const hasInstance = sqlite
      .query(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'instance'`)
      .get();
    const created = hasInstance
      ? sqlite
          .query<{ created_at: number }, []>('SELECT created_at FROM instance WHERE id = 1')
          .get()
      : null;
    const keyring = hasInstance ? safeKeyringState(sqlite) : undefined;
    if (!created || !keyring) throw new BackupError(`${path} is not a Secryn database`);
    return {
      path,
      bytes: statSync(path).size,
      masterKeyFingerprint: keyring.fingerprint,
      createdAt: created.created_at,
    };
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
