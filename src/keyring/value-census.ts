/**
 * Counting and selecting stored values by the data-key version in their header, in SQL: the
 * first 5 bytes of a sealed value are [format][version uint32 BE] (src/crypto/envelope.ts), so
 * `substr(value, 1, 5)` groups and filters without reading whole values into JavaScript.
 */
import type { Database } from 'bun:sqlite';
import { MIN_SEALED_BYTES, readDataKeyVersion, VALUE_FORMAT_VERSION } from '../crypto/envelope.ts';
import type { EncryptedColumn } from '../db/schema/encrypted-columns.ts';

const HEADER_BYTES = 5;

/** Double-quotes an SQL identifier. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The 5 header bytes every value sealed under data key `version` starts with. */
export function headerOf(version: number): Uint8Array {
  const header = new Uint8Array(HEADER_BYTES);
  header[0] = VALUE_FORMAT_VERSION;
  new DataView(header.buffer).setUint32(1, version);
  return header;
}

/** The data-key version a header names, or undefined if the header is malformed. */
function versionOfHeader(header: Uint8Array): number | undefined {
  // readDataKeyVersion checks the format byte and range; it wants a full-length value.
  if (header.byteLength < HEADER_BYTES) return undefined;
  const probe = new Uint8Array(MIN_SEALED_BYTES);
  probe.set(header.subarray(0, HEADER_BYTES));
  try {
    return readDataKeyVersion(probe);
  } catch {
    return undefined;
  }
}

/** Throws unless the column's table exists (a registered column must have been migrated). */
export function assertTableExists(sqlite: Database, column: EncryptedColumn): void {
  const found = sqlite
    .query(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`)
    .get(column.tableName);
  if (!found)
    throw new Error(`encrypted column ${column.tableName}.${column.columnName}: no such table`);
}

/** Stored values per data-key version across `columns`; `malformed` counts unreadable headers. */
export function countValuesByDataKey(
  sqlite: Database,
  columns: readonly EncryptedColumn[],
): { byVersion: Map<number, number>; malformed: number } {
  const byVersion = new Map<number, number>();
  let malformed = 0;
  for (const column of columns) {
    assertTableExists(sqlite, column);
    const col = quoteIdentifier(column.columnName);
    const rows = sqlite
      .query<{ header: Uint8Array; n: number }, []>(
        `SELECT substr(${col}, 1, ${HEADER_BYTES}) AS header, count(*) AS n
         FROM ${quoteIdentifier(column.tableName)} WHERE ${col} IS NOT NULL GROUP BY header`,
      )
      .all();
    for (const { header, n } of rows) {
      const version = header instanceof Uint8Array ? versionOfHeader(header) : undefined;
      if (version === undefined) malformed += n;
      else byVersion.set(version, (byVersion.get(version) ?? 0) + n);
    }
  }
  return { byVersion, malformed };
}

/** How many values in `column` are not sealed under data key `version`. */
export function countValuesNotUnder(
  sqlite: Database,
  column: EncryptedColumn,
  version: number,
): number {
  const col = quoteIdentifier(column.columnName);
  return sqlite
    .query<{ n: number }, [Uint8Array]>(
      `SELECT count(*) AS n FROM ${quoteIdentifier(column.tableName)}
       WHERE ${col} IS NOT NULL AND substr(${col}, 1, ${HEADER_BYTES}) <> ?`,
    )
    .get(headerOf(version))!.n;
}

/** A stored value with what its location is computed from (see {@link EncryptedColumn.at}). */
export type ValueRow = {
  id: string | number;
  value: Uint8Array;
  version?: number | null;
  parentId?: string | null;
  projectId?: string | null;
  vaultId?: string | null;
};

/**
 * `SELECT … FROM …` of a column's values with their id, version and owner (joined from the
 * parent row when the owner lives there), as {@link ValueRow}s. The value, id and version are
 * qualified by the alias `t`, so callers add `WHERE`/`ORDER BY` on `t.<column>`. A row whose
 * parent is gone is not selected: it has no location to open at.
 */
export function selectValueRows(column: EncryptedColumn): string {
  const q = quoteIdentifier;
  const fields = [`t.${q(column.idColumnName)} AS id`, `t.${q(column.columnName)} AS value`];
  if (column.versionColumnName) fields.push(`t.${q(column.versionColumnName)} AS version`);
  let from = `${q(column.tableName)} AS t`;
  const owner = column.owner;
  if (owner) {
    const home = owner.parent ? 'o' : 't';
    if (owner.parent) {
      from += ` JOIN ${q(owner.parent.table)} AS o ON o.${q(owner.parent.key)} = t.${q(owner.parent.foreignKey)}`;
      fields.push(`t.${q(owner.parent.foreignKey)} AS parentId`);
    }
    if (owner.projectId) fields.push(`${home}.${q(owner.projectId)} AS projectId`);
    if (owner.vaultId) fields.push(`${home}.${q(owner.vaultId)} AS vaultId`);
  }
  return `SELECT ${fields.join(', ')} FROM ${from}`;
}
