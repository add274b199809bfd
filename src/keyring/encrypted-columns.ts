/**
 * The registry of encrypted columns. Every feature that stores a sealed value registers the
 * column once (at module load, next to its table definition) and builds each value's
 * {@link ValueLocation} with {@link EncryptedColumn.at}, so the value is bound to exactly the
 * place that `master-key rotate --reencrypt` and `master-key status` walk.
 *
 * Contract for a registered column:
 * - `idColumn` is the row's stable, unique key (text or integer); the AAD binds `String(id)`.
 * - `column` is a BLOB holding values sealed by the instance keyring (or NULL).
 * - `versionColumn`, if given, is an integer bound into the AAD as `version` (a secret's
 *   version number); it must never change for a stored value.
 * Register in a module that `src/keyring/known-columns.ts` imports, so that the `master-key`
 * commands see the column too.
 */
import { getTableName } from 'drizzle-orm';
import type { SQLiteColumn, SQLiteTable } from 'drizzle-orm/sqlite-core';
import type { ValueLocation } from '../crypto/envelope.ts';

/** What a feature declares about one encrypted column (drizzle objects of its own table). */
export type EncryptedColumnSpec = {
  table: SQLiteTable;
  idColumn: SQLiteColumn;
  column: SQLiteColumn;
  versionColumn?: SQLiteColumn;
};

/** A registered encrypted column, by SQL names, with the location builder for its values. */
export type EncryptedColumn = {
  readonly tableName: string;
  readonly idColumnName: string;
  readonly columnName: string;
  readonly versionColumnName: string | undefined;
  /** The AAD location of the value in row `rowId` (and secret version `version`, if any). */
  at(rowId: string | number | bigint, version?: number): ValueLocation;
};

const registry = new Map<string, EncryptedColumn>();

/**
 * Registers an encrypted column and returns its handle. Registering the same column again with
 * the same id/version columns returns the existing handle; with different ones it throws, since
 * two AAD layouts for one column would make values unreadable.
 */
export function registerEncryptedColumn(spec: EncryptedColumnSpec): EncryptedColumn {
  const tableName = getTableName(spec.table);
  const owner = (column: SQLiteColumn) => getTableName(column.table);
  for (const column of [spec.idColumn, spec.column, spec.versionColumn]) {
    if (column && owner(column) !== tableName) {
      throw new TypeError(`column ${column.name} does not belong to table ${tableName}`);
    }
  }
  const entry: EncryptedColumn = {
    tableName,
    idColumnName: spec.idColumn.name,
    columnName: spec.column.name,
    versionColumnName: spec.versionColumn?.name,
    at(rowId, version) {
      const where: ValueLocation = {
        table: tableName,
        column: spec.column.name,
        rowId: String(rowId),
      };
      if (spec.versionColumn) {
        if (version === undefined) {
          throw new TypeError(`${tableName}.${spec.column.name} values need a version`);
        }
        where.version = version;
      }
      return where;
    },
  };
  const key = `${tableName}.${entry.columnName}`;
  const existing = registry.get(key);
  if (existing) {
    if (
      existing.idColumnName !== entry.idColumnName ||
      existing.versionColumnName !== entry.versionColumnName
    ) {
      throw new TypeError(`encrypted column ${key} is already registered differently`);
    }
    return existing;
  }
  registry.set(key, entry);
  return entry;
}

/** Every registered column, in a stable order (table, then column). */
export function encryptedColumns(): EncryptedColumn[] {
  return [...registry.values()].sort(
    (a, b) => a.tableName.localeCompare(b.tableName) || a.columnName.localeCompare(b.columnName),
  );
}
