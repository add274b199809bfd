/**
 * The registry of encrypted columns: every {@link encryptedColumn} the schema exports (declared
 * next to its table), found by searching the schema's exports rather than by a list kept by
 * hand, so `master-key rotate --reencrypt` and `master-key status` cannot miss one. Tests may
 * add columns of their own tables with {@link registerEncryptedColumn}.
 */
import * as schema from './index.ts';
import {
  columnKey,
  encryptedColumn,
  isEncryptedColumn,
  sameLayout,
  type EncryptedColumn,
  type EncryptedColumnSpec,
} from './encrypted.ts';

export type { EncryptedColumn, EncryptedColumnSpec, OwnerColumns } from './encrypted.ts';
export { encryptedColumn } from './encrypted.ts';

let declared: Map<string, EncryptedColumn> | undefined;
const extra = new Map<string, EncryptedColumn>();

/** The schema's columns, by key; computed once (the schema is fixed at build time). */
function schemaColumns(): Map<string, EncryptedColumn> {
  if (!declared) {
    declared = new Map();
    for (const value of Object.values(schema)) {
      if (isEncryptedColumn(value)) declared.set(columnKey(value), value);
    }
  }
  return declared;
}

/**
 * Registers an encrypted column outside the product schema (test tables) and returns its
 * handle. Registering a column again with the same layout returns the existing handle; with a
 * different one it throws, since two AAD layouts for one column would make values unreadable.
 */
export function registerEncryptedColumn(spec: EncryptedColumnSpec): EncryptedColumn {
  const entry = encryptedColumn(spec);
  const key = columnKey(entry);
  const existing = schemaColumns().get(key) ?? extra.get(key);
  if (existing) {
    if (!sameLayout(existing, entry)) {
      throw new TypeError(`encrypted column ${key} is already registered differently`);
    }
    return existing;
  }
  extra.set(key, entry);
  return entry;
}

/** The encrypted columns the product schema declares (none registered by tests), sorted. */
export function declaredEncryptedColumns(): EncryptedColumn[] {
  return sortColumns([...schemaColumns().values()]);
}

/** Every encrypted column (the schema's and any registered), in a stable order. */
export function encryptedColumns(): EncryptedColumn[] {
  return sortColumns([...schemaColumns().values(), ...extra.values()]);
}

function sortColumns(columns: EncryptedColumn[]): EncryptedColumn[] {
  return columns.sort(
    (a, b) => a.tableName.localeCompare(b.tableName) || a.columnName.localeCompare(b.columnName),
  );
}
