/**
 * `master-key rotate --reencrypt`, second half: seal every registered value under the current
 * data key, in short batches, while a server may keep reading and writing.
 *
 * - Each batch is read without a lock, decrypted and re-sealed in memory, then written in one
 *   short `BEGIN IMMEDIATE` transaction with a compare-and-set per row (`… WHERE value = old`),
 *   together with the progress row. A row the server changed meanwhile is left alone; a row
 *   already under the new key is never selected (its header names the new version).
 * - Progress (last id per column) is committed with each batch, so a rerun continues there.
 * - A server switches to the new data key within its refresh interval (1 s) of the rotation's
 *   commit; a value it sealed with the old key just before is caught by a final sweep, which
 *   starts no earlier than {@link SWEEP_GRACE_MS} after the commit and repeats until clean
 *   (at most `maxPasses`). Old data keys are never deleted, so a straggler still decrypts and
 *   `master-key status` shows it.
 */
import type { Database } from 'bun:sqlite';
import { DecryptionError, UnknownDataKeyError } from '../crypto/errors.ts';
import { crashPoint } from './crash-points.ts';
import { encryptedColumns, type EncryptedColumn } from '../db/schema/encrypted-columns.ts';
import type { KeyringContext } from './rotate.ts';
import { startReencryptProgress } from './rotate.ts';
import { readKeyringState, readRotation, withWriteLock } from './store.ts';
import {
  assertTableExists,
  countValuesNotUnder,
  headerOf,
  quoteIdentifier,
  selectValueRows,
  type ValueRow,
} from './value-census.ts';

/** How long after the rotation's commit the final sweep waits for servers to switch keys. */
export const SWEEP_GRACE_MS = 1500;

/** A progress report after each batch. */
export type ReencryptProgress = { done: number; total: number; table: string; column: string };

/** Tuning and observation of {@link reencryptValues}; the defaults are what the CLI uses. */
export type ReencryptOptions = {
  /** Rows per transaction; default 500. */
  batchSize?: number;
  /** Default: every registered column. */
  columns?: EncryptedColumn[];
  onProgress?: (progress: ReencryptProgress) => void;
  /** Default {@link SWEEP_GRACE_MS}. */
  sweepGraceMs?: number;
  /** Full passes at most (the first plus sweeps); default 10. */
  maxPasses?: number;
};

/** What a {@link reencryptValues} run did. */
export type ReencryptResult = {
  rotationId: number;
  dataKeyVersion: number;
  /** Values re-sealed by this run. */
  reencrypted: number;
  /** Values that did not decrypt (corrupt or tampered); left as they are. */
  undecryptable: number;
  /** Values still under an older data key after the last pass. */
  remaining: number;
  completed: boolean;
};

type ProgressRow = { lastRowId: string | null; done: number };

/**
 * Re-encrypts every value of the `--reencrypt` rotation `rotationId` (starting, or resuming
 * after an interruption). Marks the rotation re-encrypted when no value is left under an older
 * key (undecryptable ones excepted).
 */
export async function reencryptValues(
  ctx: KeyringContext,
  rotationId: number,
  options: ReencryptOptions = {},
): Promise<ReencryptResult> {
  const { sqlite, keyring, clock } = ctx;
  const rotation = readRotation(sqlite, rotationId);
  if (!rotation?.newDataKeyVersion) throw new Error(`rotation ${rotationId} has no new data key`);
  const columns = options.columns ?? encryptedColumns();
  const batchSize = options.batchSize ?? 500;
  const maxPasses = options.maxPasses ?? 10;
  const graceMs = options.sweepGraceMs ?? SWEEP_GRACE_MS;
  for (const column of columns) assertTableExists(sqlite, column);
  startReencryptProgress(sqlite, rotationId, columns);

  // Seal under whatever is current now (the rotation's key, or a newer one).
  const target = readKeyringState(sqlite)!.currentVersion;
  if (keyring.currentVersion !== target) keyring.reload();
  if (keyring.currentVersion !== target)
    throw new Error('the keyring did not load the current data key');

  const undecryptable = new Set<string>();
  let reencrypted = 0;
  let done = 0;
  let total = columns.reduce((sum, column) => sum + countValuesNotUnder(sqlite, column, target), 0);
  let remaining = total;
  for (let pass = 1; pass <= maxPasses; pass++) {
    for (const column of columns) {
      const result = await reencryptColumn(
        ctx,
        rotationId,
        column,
        target,
        batchSize,
        undecryptable,
        (n) => {
          done += n;
          options.onProgress?.({ done, total, table: column.tableName, column: column.columnName });
        },
      );
      reencrypted += result;
    }
    const wait = rotation.rotatedAt + graceMs - clock.now();
    if (wait > 0) await Bun.sleep(wait);
    remaining =
      columns.reduce((sum, column) => sum + countValuesNotUnder(sqlite, column, target), 0) -
      undecryptable.size;
    if (remaining <= 0 || pass === maxPasses) break;
    // Stragglers (sealed by a server that had not switched yet): go over them again.
    total += remaining;
    sqlite
      .query(
        'UPDATE keyring_reencrypt_progress SET done = 0, last_row_id = NULL WHERE rotation_id = ?',
      )
      .run(rotationId);
  }
  const completed = remaining <= 0;
  if (completed) {
    crashPoint('reencrypt:before-complete');
    withWriteLock(sqlite, () => {
      sqlite
        .query(
          `UPDATE keyring_rotations SET reencrypt_completed_at = ?, reencrypted_values =
             (SELECT coalesce(sum(reencrypted), 0) FROM keyring_reencrypt_progress WHERE rotation_id = ?)
           WHERE id = ?`,
        )
        .run(clock.now(), rotationId, rotationId);
      sqlite.query('DELETE FROM keyring_reencrypt_progress WHERE rotation_id = ?').run(rotationId);
    });
  }
  if (undecryptable.size > 0) {
    ctx.logger.warn('values that do not decrypt were left as they are', {
      count: undecryptable.size,
      first: [...undecryptable][0],
    });
  }
  return {
    rotationId,
    dataKeyVersion: target,
    reencrypted,
    undecryptable: undecryptable.size,
    remaining: Math.max(remaining, 0),
    completed,
  };
}

/** One column, from its recorded progress to its end; returns how many values it re-sealed. */
async function reencryptColumn(
  ctx: KeyringContext,
  rotationId: number,
  column: EncryptedColumn,
  target: number,
  batchSize: number,
  undecryptable: Set<string>,
  advanced: (rows: number) => void,
): Promise<number> {
  const { sqlite, keyring } = ctx;
  const key = [rotationId, column.tableName, column.columnName] as const;
  const progress = sqlite
    .query<ProgressRow, [number, string, string]>(
      `SELECT last_row_id AS lastRowId, done FROM keyring_reencrypt_progress
       WHERE rotation_id = ? AND table_name = ? AND column_name = ?`,
    )
    .get(...key);
  if (progress?.done) return 0;
  let lastId: string | number | undefined =
    progress?.lastRowId == null ? undefined : (JSON.parse(progress.lastRowId) as string | number);

  const table = quoteIdentifier(column.tableName);
  const id = quoteIdentifier(column.idColumnName);
  const value = quoteIdentifier(column.columnName);
  // The location (owner included) is computed from the row as it is now, like every read.
  const select = (after: boolean) =>
    sqlite.query<ValueRow, (Uint8Array | string | number)[]>(
      `${selectValueRows(column)}
       WHERE t.${value} IS NOT NULL AND substr(t.${value}, 1, 5) <> ?${after ? ` AND t.${id} > ?` : ''}
       ORDER BY t.${id} LIMIT ?`,
    );
  const update = sqlite.query<never, [Uint8Array, string | number, Uint8Array]>(
    `UPDATE ${table} SET ${value} = ? WHERE ${id} = ? AND ${value} = ?`,
  );
  const saveProgress = sqlite.query(
    `UPDATE keyring_reencrypt_progress SET last_row_id = ?, reencrypted = reencrypted + ?
     WHERE rotation_id = ? AND table_name = ? AND column_name = ?`,
  );
  const header = headerOf(target);
  let resealed = 0;
  for (;;) {
    const rows =
      lastId === undefined
        ? select(false).all(header, batchSize)
        : select(true).all(header, lastId, batchSize);
    if (rows.length === 0) break;
    const changes: [Uint8Array, string | number, Uint8Array][] = [];
    for (const row of rows) {
      const where = column.at(row.id, row.version ?? undefined, row);
      let plaintext: Uint8Array;
      try {
        plaintext = keyring.decrypt(row.value, where);
      } catch (error) {
        if (!(error instanceof DecryptionError || error instanceof UnknownDataKeyError))
          throw error;
        undecryptable.add(`${column.tableName}.${column.columnName}:${row.id}`);
        continue;
      }
      try {
        changes.push([keyring.encrypt(plaintext, where), row.id, row.value]);
      } finally {
        plaintext.fill(0);
      }
    }
    lastId = rows.at(-1)!.id;
    const batchLastId = JSON.stringify(lastId);
    resealed += withWriteLock(sqlite, () => {
      let changed = 0;
      for (const change of changes) changed += update.run(...change).changes;
      saveProgress.run(batchLastId, changed, ...key);
      crashPoint('reencrypt:batch-written');
      return changed;
    });
    crashPoint('reencrypt:batch-committed');
    advanced(rows.length);
    // Let the event loop (progress output, signals) run between batches.
    await new Promise((resolve) => setImmediate(resolve));
  }
  sqlite
    .query(
      `UPDATE keyring_reencrypt_progress SET done = 1
       WHERE rotation_id = ? AND table_name = ? AND column_name = ?`,
    )
    .run(...key);
  return resealed;
}
