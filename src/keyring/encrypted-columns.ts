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
 * - `owner`, if given, names where the row belongs: its vault and project (on the row itself,
 *   or on a parent row reached through `parent`, whose key is then bound too). A row moved to
 *   another vault, project or parent no longer opens. A feature that legitimately moves a row
 *   must re-seal its values.
 * Register in a module that `src/keyring/known-columns.ts` imports, so that the `master-key`
 * commands see the column too.
 */
import { getTableName } from 'drizzle-orm';
import type { SQLiteColumn, SQLiteTable } from 'drizzle-orm/sqlite-core';
import type { ValueLocation, ValueOwner } from '../crypto/envelope.ts';

/** What a feature declares about one encrypted column (drizzle objects of its own table). */
export type EncryptedColumnSpec = {
  table: SQLiteTable;
  idColumn: SQLiteColumn;
  column: SQLiteColumn;
  versionColumn?: SQLiteColumn;
  owner?: {
    /** The parent row holding the owner columns: `foreignKey` (this table) = `key` (its). */
    parent?: { foreignKey: SQLiteColumn; key: SQLiteColumn };
    /** The vault and project columns (of the parent table if there is one). */
    vaultId?: SQLiteColumn;
    projectId?: SQLiteColumn;
  };
};

/** SQL names of a column's owner, for the statements that walk every value (value-census.ts). */
export type OwnerColumns = {
  parent: { table: string; foreignKey: string; key: string } | undefined;
  vaultId: string | undefined;
  projectId: string | undefined;
};

/** A registered encrypted column, by SQL names, with the location builder for its values. */
export type EncryptedColumn = {
  readonly tableName: string;
  readonly idColumnName: string;
  readonly columnName: string;
  readonly versionColumnName: string | undefined;
  /** Where the owner comes from; undefined when the column binds no owner. */
  readonly owner: OwnerColumns | undefined;
  /**
   * The AAD location of the value in row `rowId` (and secret version `version`, if any),
   * owned by `owner` (required, with each registered part, when the column has an owner).
   */
  at(rowId: string | number | bigint, version?: number, owner?: ValueOwner): ValueLocation;
};

const registry = new Map<string, EncryptedColumn>();

/**
 * Registers an encrypted column and returns its handle. Registering the same column again with
 * the same id/version columns returns the existing handle; with different ones it throws, since
 * two AAD layouts for one column would make values unreadable.
 */
export function registerEncryptedColumn(spec: EncryptedColumnSpec): EncryptedColumn {
  const tableName = getTableName(spec.table);
  const tableOf = (column: SQLiteColumn) => getTableName(column.table);
  for (const column of [
    spec.idColumn,
    spec.column,
    spec.versionColumn,
    spec.owner?.parent?.foreignKey,
  ]) {
    if (column && tableOf(column) !== tableName) {
      throw new TypeError(`column ${column.name} does not belong to table ${tableName}`);
    }
  }
  const owner = ownerColumns(tableName, spec.owner);
  const entry: EncryptedColumn = {
    tableName,
    idColumnName: spec.idColumn.name,
    columnName: spec.column.name,
    versionColumnName: spec.versionColumn?.name,
    owner,
    at(rowId, version, ownedBy) {
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
      if (owner) where.owner = ownerOf(tableName, spec.column.name, owner, ownedBy);
      return where;
    },
  };
  const key = `${tableName}.${entry.columnName}`;
  const existing = registry.get(key);
  if (existing) {
    if (
      existing.idColumnName !== entry.idColumnName ||
      existing.versionColumnName !== entry.versionColumnName ||
      JSON.stringify(existing.owner) !== JSON.stringify(entry.owner)
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

function ownerColumns(
  tableName: string,
  spec: EncryptedColumnSpec['owner'],
): OwnerColumns | undefined {
  if (!spec) return undefined;
  const home = spec.parent ? getTableName(spec.parent.key.table) : tableName;
  for (const column of [spec.vaultId, spec.projectId]) {
    if (column && getTableName(column.table) !== home) {
      throw new TypeError(`owner column ${column.name} does not belong to table ${home}`);
    }
  }
  return {
    parent: spec.parent && {
      table: home,
      foreignKey: spec.parent.foreignKey.name,
      key: spec.parent.key.name,
    },
    vaultId: spec.vaultId?.name,
    projectId: spec.projectId?.name,
  };
}

/** The owner to bind: exactly the registered parts, each given (null where the row has none). */
function ownerOf(
  tableName: string,
  columnName: string,
  owner: OwnerColumns,
  given: ValueOwner | undefined,
): ValueOwner {
  const need = (part: keyof ValueOwner, registered: unknown) => {
    if (!registered) return null;
    const value = given?.[part];
    if (value === undefined) {
      throw new TypeError(`${tableName}.${columnName} values need their ${part}`);
    }
    return value;
  };
  return {
    parentId: need('parentId', owner.parent),
    projectId: need('projectId', owner.projectId),
    vaultId: need('vaultId', owner.vaultId),
  };
}
