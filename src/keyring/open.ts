/**
 * Opening the keyring at start: check the master key against the fingerprint the database
 * records and, if a rotation was interrupted, finish or discard it (crash recovery; the protocol
 * is described in rotate.ts). A refused start changes nothing: the mismatch is detected with
 * reads only, and recovery runs in a write transaction that rolls back when it refuses.
 */
import type { Database } from 'bun:sqlite';
import { existsSync } from 'node:fs';
import type { Clock } from '../clock.ts';
import type { Config } from '../config/schema.ts';
import { masterKeyFingerprint } from '../crypto/keyring.ts';
import { MASTER_KEY_ENV_VAR, type LoadedMasterKey } from '../crypto/master-key.ts';
import { toRfc3339 } from '../db/columns.ts';
import type { Logger } from '../log/logger.ts';
import { crashPoint } from './crash-points.ts';
import { KeyringError, MasterKeyMismatchError } from './errors.ts';
import {
  backupKeyPath,
  finishKeyFileSwap,
  nextKeyPath,
  readKeyFile,
  readKeyFileIfUsable,
  removeFileDurably,
  type Env,
} from './key-files.ts';
import { LiveKeyring } from './live-keyring.ts';
import { anyApiKeyMac, stampAllApiKeyMacs } from './api-key-mac.ts';
import {
  createIntegrity,
  nextAuditSeq,
  readIntegrityRow,
  registerIntegrity,
  unlockIntegrity,
} from './integrity.ts';
import {
  markRotationCompleted,
  readKeyringSnapshot,
  readKeyringState,
  readRotations,
  readUnfinishedSwaps,
  unlockKeyring,
  withWriteLock,
  type RotationRecord,
} from './store.ts';

/** What {@link openKeyring} needs besides the connection and the loaded key. */
export type OpenKeyringOptions = {
  config: Config;
  env: Env;
  clock: Clock;
  logger: Logger;
  /** See {@link LiveKeyring}; default 1000 ms. */
  refreshIntervalMs?: number;
};

/**
 * Opens the keyring of an initialised database with the master key `loaded` (zeroed here).
 * Throws MasterKeyMismatchError for a wrong key, KeyringError('not_initialized' | 'damaged'),
 * or MasterKeyError if an interrupted rotation cannot be finished.
 */
export function openKeyring(
  sqlite: Database,
  loaded: LoadedMasterKey,
  options: OpenKeyringOptions,
): LiveKeyring {
  let key = loaded.key;
  try {
    const snapshot = readKeyringSnapshot(sqlite);
    if (!snapshot) {
      throw new KeyringError(
        'not_initialized',
        'this database has no keyring (an interrupted `secryn init`, or it was removed): ' +
          'restore the database from a backup, or move it away and run `secryn init` again',
      );
    }
    let { state, wrapped } = snapshot;
    const fingerprint = masterKeyFingerprint(key);
    const interrupted =
      loaded.source === 'file' &&
      (existsSync(nextKeyPath(loaded.path!)) || readUnfinishedSwaps(sqlite).length > 0);
    if (interrupted) {
      const recovered = recoverInterruptedRotation(sqlite, loaded, fingerprint, options);
      key.fill(0);
      key = recovered;
      const after = readKeyringSnapshot(sqlite)!;
      ({ state, wrapped } = after);
    } else if (fingerprint !== state.fingerprint) {
      throw mismatchError(sqlite, loaded, fingerprint, state.fingerprint);
    }
    const ring = unlockKeyring(key, state, wrapped);
    openIntegrity(sqlite, key, options);
    return new LiveKeyring(
      {
        sqlite,
        config: options.config,
        env: options.env,
        logger: options.logger,
        refreshIntervalMs: options.refreshIntervalMs,
      },
      { ring, generation: state.generation, fingerprint: state.fingerprint },
      loaded.source,
      key,
    );
  } finally {
    key.fill(0);
  }
}

/**
 * Opens the integrity record and registers its keys on the connection. A database from before
 * integrity protection gets one now, in one write transaction: a new root key wrapped under the
 * master key, the keyed audit chain starting at the next entry, and a MAC on every API key as it
 * stands (so everything done before this moment is trusted as found; the log line says so).
 * A database whose keys carry MACs but has no record lost it: that is tampering, refused.
 */
function openIntegrity(sqlite: Database, key: Uint8Array, options: OpenKeyringOptions): void {
  const row = readIntegrityRow(sqlite);
  if (row) {
    registerIntegrity(sqlite, unlockIntegrity(key, row));
    return;
  }
  withWriteLock(sqlite, () => {
    const again = readIntegrityRow(sqlite); // another process may have migrated meanwhile
    if (again) {
      registerIntegrity(sqlite, unlockIntegrity(key, again));
      return;
    }
    if (anyApiKeyMac(sqlite)) {
      throw new KeyringError(
        'damaged',
        'the integrity record is missing although API keys carry MACs: it was removed from the ' +
          'database (restore it from a backup)',
      );
    }
    const from = nextAuditSeq(sqlite);
    const integrity = createIntegrity(sqlite, key, from, options.clock.now());
    const keys = stampAllApiKeyMacs(sqlite, integrity.apiKeyMac);
    options.logger.warn(
      'integrity protection initialised: API keys and the audit chain as they are now are ' +
        'trusted from here on (this happens once per instance; seen again, the database was ' +
        'rewritten)',
      { api_keys: keys, audit_keyed_from: from },
    );
  });
}

/**
 * Finishes the file swap of a committed rotation (the database already names the new key):
 * link the old key to the rotation's backup name, rename `.next` over the key file, and mark the
 * rotation complete. Idempotent; call with the write lock held (see {@link withWriteLock}).
 */
export function completeRotationSwap(
  sqlite: Database,
  rotation: RotationRecord,
  now: number,
): void {
  if (rotation.keyFile) {
    finishKeyFileSwap(
      {
        keyFile: rotation.keyFile,
        backupFile: rotation.backupFile,
        oldFingerprint: rotation.oldFingerprint,
        newFingerprint: rotation.newFingerprint,
      },
      (step) => crashPoint(`rotate:${step}`),
    );
  }
  markRotationCompleted(sqlite, rotation.id, now);
}

/**
 * Under the write lock (so no rotation is half-way through its transaction): if the database
 * names the key in the key file, a leftover `.next` belongs to a rotation that never committed
 * and is removed; if it names the key in `.next`, the rotation committed and its swap is
 * finished. Returns the master key that matches the database; otherwise refuses (rolling back,
 * so nothing changes).
 */
function recoverInterruptedRotation(
  sqlite: Database,
  loaded: LoadedMasterKey,
  configuredFingerprint: string,
  options: OpenKeyringOptions,
): Uint8Array {
  const keyFile = loaded.path!;
  const next = nextKeyPath(keyFile);
  return withWriteLock(sqlite, () => {
    const state = readKeyringState(sqlite)!;
    const now = options.clock.now();
    // Re-read under the lock: another process may have finished the swap meanwhile.
    const current = readKeyFile(keyFile);
    if (current?.fingerprint === state.fingerprint) {
      if (existsSync(next)) {
        removeFileDurably(next);
        options.logger.warn('removed the new key of a master key rotation that did not commit', {
          file: next,
        });
      }
      for (const rotation of readUnfinishedSwaps(sqlite)) {
        if (rotation.newFingerprint === state.fingerprint)
          markRotationCompleted(sqlite, rotation.id, now);
      }
      return current.key;
    }
    const incoming = readKeyFileIfUsable(next);
    if (incoming?.fingerprint === state.fingerprint) {
      const rotation = readUnfinishedSwaps(sqlite).find(
        (r) => r.newFingerprint === state.fingerprint,
      );
      const swap: RotationRecord = rotation ?? {
        id: -1,
        rotatedAt: now,
        completedAt: null,
        actor: 'recovery',
        oldFingerprint: current?.fingerprint ?? '',
        newFingerprint: state.fingerprint,
        keySource: 'file',
        keyFile,
        backupFile: backupKeyPath(keyFile, now),
        newKeyFile: null,
        newDataKeyVersion: null,
        reencryptCompletedAt: null,
        reencryptedValues: 0,
      };
      current?.key.fill(0);
      completeRotationSwap(sqlite, { ...swap, keyFile }, now);
      options.logger.warn('finished an interrupted master key rotation', {
        file: keyFile,
        backup: swap.backupFile ?? undefined,
      });
      return incoming.key;
    }
    current?.key.fill(0);
    incoming?.key.fill(0);
    throw mismatchError(sqlite, loaded, configuredFingerprint, state.fingerprint);
  });
}

/** Where a key came from, for messages. */
export function describeSource(loaded: Pick<LoadedMasterKey, 'source' | 'path'>): string {
  if (loaded.source === 'env') return `environment variable ${MASTER_KEY_ENV_VAR}`;
  if (loaded.source === 'credential') return `systemd credential ${loaded.path}`;
  return `file ${loaded.path}`;
}

/** One line saying the key is wrong, with what the rotation history tells about it. */
function mismatchError(
  sqlite: Database,
  loaded: LoadedMasterKey,
  actual: string,
  expected: string,
): MasterKeyMismatchError {
  let hint = 'configure the key this instance was created or last rotated with';
  const replaced = readRotations(sqlite)
    .reverse()
    .find((r) => r.oldFingerprint === actual);
  if (replaced) {
    const when = toRfc3339(replaced.rotatedAt);
    hint = replaced.newKeyFile
      ? `this key was replaced by the rotation of ${when}, which wrote the new key to ` +
        `${replaced.newKeyFile}: configure that key instead`
      : `this is the old key that the rotation of ${when} replaced; the current key was written ` +
        `to ${replaced.keyFile}: restore that file (from your backup if it is lost)`;
  }
  return new MasterKeyMismatchError(
    `wrong master key: the key from ${describeSource(loaded)} (fingerprint ${actual}) is not ` +
      `the one this instance is sealed with (fingerprint ${expected}); ${hint}`,
    expected,
    actual,
  );
}
