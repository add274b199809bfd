/**
 * How an encrypted column is declared: next to its table in `src/db/schema/<area>.ts`, with
 * {@link encryptedColumn}, which also builds each value's {@link ValueLocation}
 * ({@link EncryptedColumn.at}), so a value is bound to exactly the place that
 * `master-key rotate --reencrypt` and `master-key status` walk (encrypted-columns.ts collects
 * every declared column from the schema: there is no list to keep by hand).
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
 */
import { getTableName } from 'drizzle-orm';
import type { SQLiteColumn, SQLiteTable } from 'drizzle-orm/sqlite-core';
import type { ValueLocation, ValueOwner } from '../../crypto/envelope.ts';

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

/** Marks the handles {@link encryptedColumn} makes, so the schema can be searched for them. */
const ENCRYPTED = Symbol('secryn.encryptedColumn');

/** Whether `value` (any export of a schema module) is an {@link encryptedColumn} handle. */
export function isEncryptedColumn(value: unknown): value is EncryptedColumn {
  return typeof value === 'object' && value !== null && ENCRYPTED in value;
}

/** The registry key of a column: `table.column`. */
export function columnKey(column: EncryptedColumn): string {
  return `${column.tableName}.${column.columnName}`;
}

/** Two handles of one column that would bind its values differently (unreadable values). */
export function sameLayout(a: EncryptedColumn, b: EncryptedColumn): boolean {
  return (
    a.idColumnName === b.idColumnName &&
    a.versionColumnName === b.versionColumnName &&
    JSON.stringify(a.owner) === JSON.stringify(b.owner)
  );
}

/**
 * Declares an encrypted column (export the handle from the table's schema module: that export
 * is what registers it) and checks that every named column belongs to the right table.
 */
export function encryptedColumn(spec: EncryptedColumnSpec): EncryptedColumn {
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
  Object.defineProperty(entry, ENCRYPTED, { value: true });
  return entry;
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

/**
 * The owner to bind: exactly the registered parts, each given (null where the row has none).
 * Written without a helper closure: it runs once per value opened (50 times in a vault read).
 */
function ownerOf(
  tableName: string,
  columnName: string,
  owner: OwnerColumns,
  given: ValueOwner | undefined,
): ValueOwner {
  const parentId = owner.parent ? given?.parentId : null;
  const projectId = owner.projectId ? given?.projectId : null;
  const vaultId = owner.vaultId ? given?.vaultId : null;
  if (parentId === undefined || projectId === undefined || vaultId === undefined) {
    const part =
      parentId === undefined ? 'parentId' : projectId === undefined ? 'projectId' : 'vaultId';
    throw new TypeError(`${tableName}.${columnName} values need their ${part}`);
  }
  return { parentId, projectId, vaultId };
}
