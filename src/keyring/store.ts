/**
 * Persistence of the keyring: the state row, the wrapped data keys and the rotation records,
 * through prepared statements on the instance's own connection. Nothing here sees a plaintext
 * data key except {@link unlockKeyring} and {@link createKeyring}, which hand bytes straight to
 * the crypto layer.
 */
import type { Database } from 'bun:sqlite';
import type { DataKey } from '../crypto/envelope.ts';
import { DecryptionError, WrongMasterKeyError } from '../crypto/errors.ts';
import {
  generateDataKey,
  Keyring,
  masterKeyFingerprint,
  unwrapDataKey,
  wrapDataKey,
} from '../crypto/keyring.ts';
import { KeyringError } from './errors.ts';
import { createIntegrity } from './integrity.ts';

/** The keyring_state row. */
export type KeyringState = {
  fingerprint: string;
  currentVersion: number;
  generation: number;
  createdAt: number;
  lastRotatedAt: number | null;
};

/** A stored data key, still wrapped. */
export type WrappedDataKey = { version: number; wrapped: Uint8Array; createdAt: number };

/** A keyring_rotations row. */
export type RotationRecord = {
  id: number;
  rotatedAt: number;
  completedAt: number | null;
  actor: string;
  oldFingerprint: string;
  newFingerprint: string;
  keySource: 'file' | 'env' | 'credential';
  keyFile: string | null;
  backupFile: string | null;
  newKeyFile: string | null;
  newDataKeyVersion: number | null;
  reencryptCompletedAt: number | null;
  reencryptedValues: number;
};

const ROTATION_COLUMNS = `id, rotated_at AS rotatedAt, completed_at AS completedAt, actor,
  old_fingerprint AS oldFingerprint, new_fingerprint AS newFingerprint, key_source AS keySource,
  key_file AS keyFile, backup_file AS backupFile, new_key_file AS newKeyFile,
  new_data_key_version AS newDataKeyVersion, reencrypt_completed_at AS reencryptCompletedAt,
  reencrypted_values AS reencryptedValues`;

/** The keyring state, or undefined if this database has none. */
export function readKeyringState(sqlite: Database): KeyringState | undefined {
  return (
    sqlite
      .query<KeyringState, []>(
        `SELECT master_key_fingerprint AS fingerprint, current_data_key_version AS currentVersion,
           generation, created_at AS createdAt, last_rotated_at AS lastRotatedAt
         FROM keyring_state WHERE id = 1`,
      )
      .get() ?? undefined
  );
}

/** The keyring generation alone: the cheap query a running server polls. */
export function readKeyringGeneration(sqlite: Database): number | undefined {
  return (
    sqlite
      .query<{ generation: number }, []>('SELECT generation FROM keyring_state WHERE id = 1')
      .get()?.generation ?? undefined
  );
}

/** Every stored data key, ascending by version. */
export function readWrappedDataKeys(sqlite: Database): WrappedDataKey[] {
  return sqlite
    .query<WrappedDataKey, []>(
      `SELECT version, wrapped_key AS wrapped, created_at AS createdAt
       FROM keyring_data_keys ORDER BY version`,
    )
    .all();
}

/** State and wrapped keys read in one snapshot, so they always belong together. */
export function readKeyringSnapshot(
  sqlite: Database,
): { state: KeyringState; wrapped: WrappedDataKey[] } | undefined {
  try {
    return sqlite.transaction(() => {
      const state = readKeyringState(sqlite);
      return state ? { state, wrapped: readWrappedDataKeys(sqlite) } : undefined;
    })();
  } catch (error) {
    // The migrations ran, so a missing keyring table was dropped by hand (or by damage).
    if (error instanceof Error && /^no such table: keyring_/.test(error.message)) {
      throw new KeyringError(
        'damaged',
        `the database has no ${error.message.slice('no such table: '.length)} table: the ` +
          `stored keyring was removed (restore it from a backup)`,
      );
    }
    throw error;
  }
}

/**
 * Unwraps every stored data key with `masterKey` into an in-memory {@link Keyring}. A key that
 * does not open although the fingerprint matched means the stored keyring was altered:
 * KeyringError('damaged').
 */
export function unlockKeyring(
  masterKey: Uint8Array,
  state: KeyringState,
  wrapped: readonly WrappedDataKey[],
): Keyring {
  const dataKeys: DataKey[] = [];
  try {
    for (const row of wrapped) {
      dataKeys.push({ version: row.version, key: unwrapStored(masterKey, row) });
    }
    if (!dataKeys.some((k) => k.version === state.currentVersion)) {
      throw new KeyringError(
        'damaged',
        `the keyring names data key v${state.currentVersion} as current but does not hold it`,
      );
    }
    return new Keyring(dataKeys, state.currentVersion);
  } catch (error) {
    if (error instanceof WrongMasterKeyError) {
      throw new KeyringError(
        'damaged',
        `data key v${error.dataKeyVersion} does not open with the master key whose fingerprint ` +
          `the database records: the stored keyring was altered (restore it from a backup)`,
      );
    }
    throw error;
  } finally {
    for (const dataKey of dataKeys) dataKey.key.fill(0);
  }
}

/** Unwraps one stored key; a blob that is not a wrapped key at all is an altered keyring too. */
function unwrapStored(masterKey: Uint8Array, row: WrappedDataKey): Uint8Array {
  try {
    return unwrapDataKey(masterKey, row.version, row.wrapped);
  } catch (error) {
    if (!(error instanceof DecryptionError)) throw error;
    throw new KeyringError(
      'damaged',
      `data key v${row.version} is not a wrapped key (${error.reason}): the stored keyring was ` +
        `altered (restore it from a backup)`,
    );
  }
}

/**
 * Creates the keyring of a new instance under `masterKey`: the state row, data key v1 and the
 * integrity record (keyed audit chain from entry #1), whose keys are registered on the connection
 * so that the first admin key gets its MAC. Runs inside the caller's transaction.
 */
export function createKeyring(sqlite: Database, masterKey: Uint8Array, now: number): void {
  const dek = generateDataKey();
  try {
    sqlite
      .query('INSERT INTO keyring_data_keys (version, wrapped_key, created_at) VALUES (?, ?, ?)')
      .run(1, wrapDataKey(masterKey, 1, dek), now);
  } finally {
    dek.fill(0);
  }
  sqlite
    .query(
      `INSERT INTO keyring_state (id, master_key_fingerprint, current_data_key_version, generation,
         created_at, value_format) VALUES (1, ?, 1, 1, ?, 2)`,
    )
    .run(masterKeyFingerprint(masterKey), now);
  createIntegrity(sqlite, masterKey, 1, now);
}

/**
 * The oldest envelope format the database may still hold (1 until the owner-binding migration
 * of src/keyring/bind-locations.ts has finished, 2 after).
 */
export function readValueFormat(sqlite: Database): number {
  return (
    sqlite
      .query<
        { format: number },
        []
      >('SELECT value_format AS format FROM keyring_state WHERE id = 1')
      .get()?.format ?? 1
  );
}

/** A rotation by id. */
export function readRotation(sqlite: Database, id: number): RotationRecord | undefined {
  return (
    sqlite
      .query<
        RotationRecord,
        [number]
      >(`SELECT ${ROTATION_COLUMNS} FROM keyring_rotations WHERE id = ?`)
      .get(id) ?? undefined
  );
}

/** Every rotation, oldest first. */
export function readRotations(sqlite: Database): RotationRecord[] {
  return sqlite
    .query<RotationRecord, []>(`SELECT ${ROTATION_COLUMNS} FROM keyring_rotations ORDER BY id`)
    .all();
}

/** File-source rotations whose key file swap has not been recorded as finished. */
export function readUnfinishedSwaps(sqlite: Database): RotationRecord[] {
  return sqlite
    .query<RotationRecord, []>(
      `SELECT ${ROTATION_COLUMNS} FROM keyring_rotations
       WHERE completed_at IS NULL AND key_source = 'file' ORDER BY id`,
    )
    .all();
}

/** The newest `--reencrypt` rotation whose re-encryption has not finished, if any. */
export function readUnfinishedReencryption(sqlite: Database): RotationRecord | undefined {
  return (
    sqlite
      .query<RotationRecord, []>(
        `SELECT ${ROTATION_COLUMNS} FROM keyring_rotations
         WHERE new_data_key_version IS NOT NULL AND reencrypt_completed_at IS NULL
         ORDER BY id DESC LIMIT 1`,
      )
      .get() ?? undefined
  );
}

/** Marks a rotation's key file swap finished. */
export function markRotationCompleted(sqlite: Database, id: number, now: number): void {
  sqlite
    .query('UPDATE keyring_rotations SET completed_at = ? WHERE id = ? AND completed_at IS NULL')
    .run(now, id);
}

/**
 * Runs `fn` in a `BEGIN IMMEDIATE` transaction: the database write lock is what serialises
 * every change to the key files between processes (rotation, recovery at start).
 */
export function withWriteLock<T>(sqlite: Database, fn: () => T): T {
  return sqlite.transaction(fn).immediate();
}
