/**
 * The two rotations, neither of which needs a running server to restart or to read a key file:
 *
 * **Data-key rotation** ({@link rotateDataKey}): one transaction adds a new data key wrapped
 * under the *current* master key and makes it current. A running server holds that master key
 * in memory, so it unwraps the new data key live (live-keyring.ts) and seals new values under it
 * within its refresh interval; reencrypt.ts then re-seals the stored values in batches.
 *
 * **Master-key rotation** ({@link rotateMasterKey}) re-wraps the stored keys and changes
 * nothing else: every data key stays the same, so a running server keeps the data keys it has
 * and only learns the new fingerprint. The protocol, for a key file `master.key` (file source):
 *
 *  1. In one `BEGIN IMMEDIATE` transaction (the write lock also guards the key files):
 *     check the database still names the key we loaded; remove a stale `master.key.next`;
 *     write the new key to `master.key.next` (0600, fsync file and directory); re-wrap every
 *     wrapped key under the new key ({@link rewrapAllKeys}); record the new fingerprint and the
 *     rotation (with both fingerprints and the backup name); COMMIT.
 *  2. Under the write lock again: link `master.key` to `master.key.<stamp>.bak`, fsync the
 *     directory, rename `master.key.next` over `master.key`, fsync the directory, mark the
 *     rotation complete.
 *
 * Killed at any point, the next open (open.ts) finds one of:
 *  - database names the key in `master.key` (step 1 never committed): `.next` is removed;
 *  - database names the key in `master.key.next` (committed, swap not done): step 2 is
 *    finished, creating the same backup name;
 *  - database names the key in `master.key` and a rotation is unmarked (renamed, not marked):
 *    it is marked complete.
 * In every case the key file and the keyring agree and every value decrypts.
 *
 * With the key in `SECRYN_MASTER_KEY` or a systemd credential, Secryn cannot replace the
 * source: the new key goes to `--new-key-file` (0600, never overwritten) before the database
 * commits to it, and the operator installs it in the source.
 *
 * `master-key rotate --reencrypt` is a data-key rotation, its re-encryption, then a master-key
 * rotation, in that order: the new data key is wrapped under the key running servers hold.
 */
import type { Database } from 'bun:sqlite';
import { rewrapIntegrityKey } from './integrity.ts';
import { resolve } from 'node:path';
import type { Clock } from '../clock.ts';
import type { Config } from '../config/schema.ts';
import {
  generateDataKey,
  masterKeyFingerprint,
  unwrapDataKey,
  wrapDataKey,
} from '../crypto/keyring.ts';
import {
  generateMasterKey,
  writeNewMasterKeyFile,
  type LoadedMasterKey,
} from '../crypto/master-key.ts';
import type { Logger } from '../log/logger.ts';
import { crashPoint } from './crash-points.ts';
import { encryptedColumns, type EncryptedColumn } from '../db/schema/encrypted-columns.ts';
import { KeyringError } from './errors.ts';
import { emitMasterKeyRotated } from './hooks.ts';
import {
  backupKeyPath,
  loadConfiguredMasterKey,
  nextKeyPath,
  readKeyFileIfUsable,
  removeFileDurably,
  type Env,
} from './key-files.ts';
import type { LiveKeyring } from './live-keyring.ts';
import { completeRotationSwap, describeSource } from './open.ts';
import {
  readKeyringState,
  readRotation,
  readWrappedDataKeys,
  withWriteLock,
  type RotationRecord,
} from './store.ts';

/** What a rotation works on: an open instance's connection and keyring. */
export type KeyringContext = {
  sqlite: Database;
  config: Config;
  env: Env;
  clock: Clock;
  logger: Logger;
  keyring: LiveKeyring;
};

/** How to rotate the master key; see {@link rotateMasterKey}. */
export type RotateOptions = {
  /** Who rotates (recorded). */
  actor: string;
  /** Required (and only allowed) when the key comes from env or a systemd credential. */
  newKeyFile?: string;
};

/** How to rotate the data key; see {@link rotateDataKey}. */
export type RotateDataKeyOptions = {
  /** Who rotates (recorded). */
  actor: string;
  /** Columns whose re-encryption progress rows start; default: the registry. */
  columns?: EncryptedColumn[];
};

/**
 * Refuses a master-key rotation whose `--new-key-file` does not fit the key's source, before
 * anything changes (so `rotate --reencrypt` can check it before its data-key step).
 * Throws KeyringError('usage').
 */
export function assertMasterKeyRotatable(
  loaded: Pick<LoadedMasterKey, 'source' | 'path'>,
  newKeyFile: string | undefined,
): void {
  if (loaded.source === 'file' && newKeyFile !== undefined) {
    throw new KeyringError(
      'usage',
      `--new-key-file is for a master key from the environment or a systemd credential; ` +
        `this one is the file ${loaded.path}, which the rotation replaces in place`,
    );
  }
  if (loaded.source !== 'file' && !newKeyFile) {
    throw new KeyringError(
      'usage',
      `the master key comes from ${describeSource(loaded)}, which secryn cannot replace: ` +
        'rerun with --new-key-file PATH to write the new key there',
    );
  }
}

/**
 * Re-wraps every wrapped key the keyring stores from `oldKey` to `newKey`, inside the caller's
 * transaction. This is the one place that knows which keys the master key wraps.
 */
export function rewrapAllKeys(sqlite: Database, oldKey: Uint8Array, newKey: Uint8Array): void {
  const rewrap = sqlite.query('UPDATE keyring_data_keys SET wrapped_key = ? WHERE version = ?');
  for (const row of readWrappedDataKeys(sqlite)) {
    const dek = unwrapDataKey(oldKey, row.version, row.wrapped);
    try {
      rewrap.run(wrapDataKey(newKey, row.version, dek), row.version);
    } finally {
      dek.fill(0);
    }
  }
  rewrapIntegrityKey(sqlite, oldKey, newKey);
}

/**
 * Adds a new data key, wrapped under the instance's current master key (the one this process's
 * keyring holds), and makes it current; starts the re-encryption progress of `columns`. A
 * running server loads it live. Returns the rotation as recorded (its `newDataKeyVersion` is
 * what reencrypt.ts seals under). Throws KeyringError('conflict') if this process does not hold
 * the current master key.
 */
export function rotateDataKey(ctx: KeyringContext, options: RotateDataKeyOptions): RotationRecord {
  const { sqlite, clock, keyring } = ctx;
  const rotationId = withWriteLock(sqlite, () => {
    const state = readKeyringState(sqlite)!;
    const now = clock.now();
    const version = Math.max(0, ...readWrappedDataKeys(sqlite).map((row) => row.version)) + 1;
    const dek = generateDataKey();
    try {
      sqlite
        .query('INSERT INTO keyring_data_keys (version, wrapped_key, created_at) VALUES (?, ?, ?)')
        .run(version, keyring.wrapNewDataKey(state.fingerprint, version, dek), now);
    } finally {
      dek.fill(0);
    }
    sqlite
      .query(
        `UPDATE keyring_state SET current_data_key_version = ?, generation = generation + 1
         WHERE id = 1`,
      )
      .run(version);
    // Recorded with the rotations (same fingerprint before and after, nothing to swap).
    const inserted = sqlite
      .query<{ id: number }, (string | number | null)[]>(
        `INSERT INTO keyring_rotations (rotated_at, completed_at, actor, old_fingerprint,
           new_fingerprint, key_source, new_data_key_version) VALUES (?, ?, ?, ?, ?, ?, ?)
         RETURNING id`,
      )
      .get(now, now, options.actor, state.fingerprint, state.fingerprint, keyring.source, version)!;
    startReencryptProgress(sqlite, inserted.id, options.columns);
    return inserted.id;
  });
  keyring.reload();
  ctx.logger.info('data key rotated', {
    rotation: rotationId,
    data_key_version: readRotation(sqlite, rotationId)!.newDataKeyVersion,
  });
  return readRotation(sqlite, rotationId)!;
}

/**
 * Rotates the master key (see the module doc for the protocol) and returns the rotation as
 * recorded. Re-wrapping only: the data keys are unchanged, so running servers keep the keys they
 * hold and need neither a restart nor the new key. Throws KeyringError('usage') for a source/flag mismatch, KeyringError('conflict') if the
 * keyring changed under us, MasterKeyError('exists') if `newKeyFile` exists.
 */
export function rotateMasterKey(ctx: KeyringContext, options: RotateOptions): RotationRecord {
  const { sqlite, clock } = ctx;
  const loaded = loadConfiguredMasterKey(ctx.config, ctx.env);
  const oldKey = loaded.key;
  const newKey = generateMasterKey();
  try {
    assertMasterKeyRotatable(loaded, options.newKeyFile);
    const oldFingerprint = masterKeyFingerprint(oldKey);
    const newFingerprint = masterKeyFingerprint(newKey);
    const newKeyFile = options.newKeyFile ? resolve(options.newKeyFile) : null;
    if (newKeyFile) {
      writeNewMasterKeyFile(newKeyFile, newKey);
      crashPoint('rotate:new-key-file-written');
    }
    const keyFile = loaded.source === 'file' ? loaded.path! : null;
    let rotationId: number;
    try {
      rotationId = withWriteLock(sqlite, () => {
        const state = readKeyringState(sqlite)!;
        if (state.fingerprint !== oldFingerprint) {
          throw new KeyringError(
            'conflict',
            'the master key changed while this rotation started (another rotation?); run it again',
          );
        }
        const now = clock.now();
        let backupFile: string | null = null;
        if (keyFile) {
          const next = nextKeyPath(keyFile);
          removeFileDurably(next); // we hold the lock and the database names keyFile: stale
          writeNewMasterKeyFile(next, newKey);
          crashPoint('rotate:next-key-written');
          backupFile = backupKeyPath(keyFile, now);
        }
        rewrapAllKeys(sqlite, oldKey, newKey);
        // The generation moves so that running servers learn the new fingerprint.
        sqlite
          .query(
            `UPDATE keyring_state SET master_key_fingerprint = ?, last_rotated_at = ?,
               generation = generation + 1 WHERE id = 1`,
          )
          .run(newFingerprint, now);
        const inserted = sqlite
          .query<{ id: number }, (string | number | null)[]>(
            `INSERT INTO keyring_rotations (rotated_at, completed_at, actor, old_fingerprint,
               new_fingerprint, key_source, key_file, backup_file, new_key_file, new_data_key_version)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
          )
          .get(
            now,
            keyFile ? null : now,
            options.actor,
            oldFingerprint,
            newFingerprint,
            loaded.source,
            keyFile,
            backupFile,
            newKeyFile,
            null,
          )!;
        emitMasterKeyRotated({ rotation: readRotation(sqlite, inserted.id)!, sqlite });
        crashPoint('rotate:keyring-rewrapped');
        return inserted.id;
      });
    } catch (error) {
      // Nothing committed: the new key is worthless, do not leave it lying around.
      if (newKeyFile) removeFileDurably(newKeyFile);
      if (keyFile) discardUncommittedNextKey(sqlite, keyFile, newFingerprint);
      throw error;
    }
    crashPoint('rotate:committed');
    if (keyFile) {
      withWriteLock(sqlite, () =>
        completeRotationSwap(sqlite, readRotation(sqlite, rotationId)!, clock.now()),
      );
    }
    crashPoint('rotate:completed');
    ctx.logger.info('master key rotated', {
      rotation: rotationId,
      old_fingerprint: oldFingerprint,
      new_fingerprint: newFingerprint,
    });
    // This process holds the new key now (a later data-key rotation wraps under it).
    ctx.keyring.reload();
    return readRotation(sqlite, rotationId)!;
  } finally {
    oldKey.fill(0);
    newKey.fill(0);
  }
}

/** Records where a re-encryption starts for each column (idempotent). */
export function startReencryptProgress(
  sqlite: Database,
  rotationId: number,
  columns: EncryptedColumn[] = encryptedColumns(),
): void {
  const insert = sqlite.query(
    `INSERT OR IGNORE INTO keyring_reencrypt_progress (rotation_id, table_name, column_name)
     VALUES (?, ?, ?)`,
  );
  for (const column of columns) insert.run(rotationId, column.tableName, column.columnName);
}

/** Best effort: remove `.next` written by a transaction that rolled back (open.ts would too). */
function discardUncommittedNextKey(
  sqlite: Database,
  keyFile: string,
  newFingerprint: string,
): void {
  try {
    withWriteLock(sqlite, () => {
      const next = readKeyFileIfUsable(nextKeyPath(keyFile));
      next?.key.fill(0);
      // Only our own key, and only if the database does not name it; a `.next` holding another
      // key may belong to a concurrent rotation that did commit.
      if (
        next?.fingerprint === newFingerprint &&
        readKeyringState(sqlite)?.fingerprint !== newFingerprint
      ) {
        removeFileDurably(nextKeyPath(keyFile));
      }
    });
  } catch {
    // Left for the next open to clean up.
  }
}
