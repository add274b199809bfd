/**
 * One-time migration to envelope format 2: re-seals every value sealed before owners (vault,
 * project, parent row) were bound into the associated data, so that a row moved to another
 * vault or project no longer opens. Runs at every open of an instance until it has finished,
 * then records that in `keyring_state.value_format`, after which a format-1 value is refused
 * everywhere (src/crypto/envelope.ts), so one planted later does not open.
 *
 * Crash-safe and resumable without a progress table: a value is selected by its format byte,
 * and each batch is re-sealed in memory and written in one short `BEGIN IMMEDIATE` transaction
 * with a compare-and-set per row, so after a crash the next start continues with what is left
 * and a row changed meanwhile is left to its writer. The owner bound is the one the row has
 * when the migration runs: whoever could move rows before the upgrade could read them anyway.
 */
import type { Database } from 'bun:sqlite';
import { LEGACY_VALUE_FORMAT_VERSION } from '../crypto/envelope.ts';
import { DecryptionError, UnknownDataKeyError } from '../crypto/errors.ts';
import type { Logger } from '../log/logger.ts';
// Every registered column, not only those the running command imported: completion is final.
import { encryptedColumns, type EncryptedColumn } from '../db/schema/encrypted-columns.ts';
import type { InstanceKeyring } from './live-keyring.ts';
import { markValueFormatBound } from './integrity.ts';
import { readValueFormat, withWriteLock } from './store.ts';
import {
  assertTableExists,
  quoteIdentifier,
  selectValueRows,
  type ValueRow,
} from './value-census.ts';

/** What {@link bindValueLocations} did; all zero when the migration had finished before. */
export type BindResult = { resealed: number; undecryptable: number; completed: boolean };

/**
 * Re-seals every format-1 value of `columns` (default: every registered column) in batches of
 * `batchSize`, then marks the migration finished. A value that does not open even as format 1
 * (corrupt or tampered) is left as it is, logged, and stays unreadable.
 */
export function bindValueLocations(
  ctx: { sqlite: Database; keyring: InstanceKeyring; logger: Logger },
  options: { columns?: EncryptedColumn[]; batchSize?: number } = {},
): BindResult {
  const { sqlite, keyring, logger } = ctx;
  if (readValueFormat(sqlite) >= 2) return { resealed: 0, undecryptable: 0, completed: true };
  const columns = options.columns ?? encryptedColumns();
  const batchSize = options.batchSize ?? 500;
  let resealed = 0;
  let undecryptable = 0;
  for (const column of columns) {
    assertTableExists(sqlite, column);
    const id = quoteIdentifier(column.idColumnName);
    const value = quoteIdentifier(column.columnName);
    const select = sqlite.query<ValueRow, [string | number, number]>(
      `${selectValueRows(column)}
       WHERE t.${value} IS NOT NULL AND substr(t.${value}, 1, 1) = x'0${LEGACY_VALUE_FORMAT_VERSION}'
         AND t.${id} > ? ORDER BY t.${id} LIMIT ?`,
    );
    const update = sqlite.query<never, [Uint8Array, string | number, Uint8Array]>(
      `UPDATE ${quoteIdentifier(column.tableName)} SET ${value} = ? WHERE ${id} = ? AND ${value} = ?`,
    );
    // '' sorts before every text id and, in SQLite, after every integer id: start below both.
    let lastId: string | number = -Infinity;
    for (;;) {
      const rows = select.all(lastId, batchSize);
      if (rows.length === 0) break;
      const changes: [Uint8Array, string | number, Uint8Array][] = [];
      for (const row of rows) {
        const where = column.at(row.id, row.version ?? undefined, row);
        let plaintext: Uint8Array;
        try {
          plaintext = keyring.decrypt(row.value, { ...where, legacyFormat: true });
        } catch (error) {
          if (!(error instanceof DecryptionError || error instanceof UnknownDataKeyError))
            throw error;
          undecryptable++;
          logger.warn('a stored value does not open: tampered or corrupt; left as it is', {
            table: column.tableName,
            column: column.columnName,
            row: String(row.id),
          });
          continue;
        }
        try {
          changes.push([keyring.encrypt(plaintext, where), row.id, row.value]);
        } finally {
          plaintext.fill(0);
        }
      }
      lastId = rows.at(-1)!.id;
      resealed += withWriteLock(sqlite, () => {
        let changed = 0;
        for (const change of changes) changed += update.run(...change).changes;
        return changed;
      });
    }
  }
  withWriteLock(sqlite, () => markValueFormatBound(sqlite));
  if (resealed > 0 || undecryptable > 0) {
    logger.info('stored values re-sealed bound to their vault and project', {
      resealed,
      undecryptable,
    });
  }
  return { resealed, undecryptable, completed: true };
}
