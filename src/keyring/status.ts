/**
 * `secryn master-key status`: what the keyring looks like, without any secret. Field names are
 * the `--json` output (snake_case, RFC 3339 times), which scripts rely on.
 */
import type { Database } from 'bun:sqlite';
import { existsSync } from 'node:fs';
import { toRfc3339 } from '../db/columns.ts';
import { encryptedColumns, type EncryptedColumn } from '../db/schema/encrypted-columns.ts';
import type { InstanceKeyring } from './live-keyring.ts';
import {
  readKeyringState,
  readRotations,
  readUnfinishedReencryption,
  readWrappedDataKeys,
} from './store.ts';
import { countValuesByDataKey, countValuesNotUnder } from './value-census.ts';

/** The status report. */
export type KeyringStatus = {
  fingerprint: string;
  source: 'file' | 'env' | 'credential';
  /** The key file, for the file source. */
  key_file: string | null;
  created_at: string;
  last_rotated_at: string | null;
  rotations: number;
  current_data_key_version: number;
  data_keys: { version: number; created_at: string; current: boolean; values: number }[];
  /** Stored values whose header names no data key this keyring holds, or is malformed. */
  unreadable_values: number;
  /** An unfinished `--reencrypt` (rerun `master-key rotate --reencrypt` to finish it). */
  reencryption: {
    rotation_id: number;
    data_key_version: number;
    started_at: string;
    remaining: number;
  } | null;
  /** Old key files still on disk, to be removed once the new key is backed up. */
  backup_files: string[];
};

/** Builds the status of an open keyring over `columns` (default: every registered column). */
export function keyringStatus(
  sqlite: Database,
  keyring: InstanceKeyring,
  keyFile: string | null,
  columns: readonly EncryptedColumn[] = encryptedColumns(),
): KeyringStatus {
  const state = readKeyringState(sqlite)!;
  const rotations = readRotations(sqlite);
  const { byVersion, malformed } = countValuesByDataKey(sqlite, columns);
  const dataKeys = readWrappedDataKeys(sqlite).map((k) => ({
    version: k.version,
    created_at: toRfc3339(k.createdAt),
    current: k.version === state.currentVersion,
    values: byVersion.get(k.version) ?? 0,
  }));
  const known = new Set(dataKeys.map((k) => k.version));
  let unknown = malformed;
  for (const [version, n] of byVersion) if (!known.has(version)) unknown += n;
  const pending = readUnfinishedReencryption(sqlite);
  return {
    fingerprint: state.fingerprint,
    source: keyring.source,
    key_file: keyring.source === 'file' ? keyFile : null,
    created_at: toRfc3339(state.createdAt),
    last_rotated_at: toRfc3339(state.lastRotatedAt),
    rotations: rotations.length,
    current_data_key_version: state.currentVersion,
    data_keys: dataKeys,
    unreadable_values: unknown,
    reencryption: pending
      ? {
          rotation_id: pending.id,
          data_key_version: pending.newDataKeyVersion!,
          started_at: toRfc3339(pending.rotatedAt),
          remaining: columns.reduce(
            (sum, column) => sum + countValuesNotUnder(sqlite, column, state.currentVersion),
            0,
          ),
        }
      : null,
    backup_files: rotations
      .map((r) => r.backupFile)
      .filter((file): file is string => file !== null && existsSync(file)),
  };
}
