/**
 * Copies every table of the schema between a SQLite database and PostgreSQL, row for row and
 * byte for byte (sealed values stay sealed), with a per-table row count and digest computed the
 * same way on both sides, so a caller can prove that a copy is exact (`secryn migrate-storage`).
 */
import type { Database } from 'bun:sqlite';
import type { SQL } from 'bun';
import { chmodSync } from 'node:fs';
import { openDatabase } from '../client.ts';
import { runMigrations } from '../migrate.ts';
import { is } from 'drizzle-orm';
import { getTableConfig, SQLiteTable } from 'drizzle-orm/sqlite-core';
import { createHash, type Hash } from 'node:crypto';
import * as schema from '../schema/index.ts';

/** The storage class a column holds, from its declared SQLite type. */
type ColumnKind = 'integer' | 'text' | 'blob' | 'real' | 'numeric';

/** What the copy needs to know about one table, taken from its drizzle definition. */
export type TableSpec = {
  name: string;
  columns: { name: string; kind: ColumnKind }[];
  /** The primary key's columns: the order rows are read, copied and digested in. */
  key: string[];
  /** The single integer primary key PostgreSQL makes an identity column, if any. */
  identity?: string;
};

/** A value as both sides agree on it: integers exact as bigint, bytes as Uint8Array. */
type Value = null | bigint | number | string | Uint8Array;

/** One table's figures on one side: rows and the digest over them in primary-key order. */
export type TableDigest = { table: string; rows: number; digest: string };

// Rows per multi-row INSERT (one `json_to_recordset` statement) and per cursor FETCH.
const BATCH_ROWS = 500;

/**
 * Every table the schema exports (src/db/schema/, so a new table is copied without a change
 * here), parents before children, so that rows are inserted in foreign-key order.
 */
export function schemaTableSpecs(): TableSpec[] {
  const tables = (Object.values(schema) as unknown[])
    .filter((value): value is SQLiteTable => is(value, SQLiteTable))
    .map((table) => getTableConfig(table));
  const byName = new Map(tables.map((t) => [t.name, t]));
  const ordered: TableSpec[] = [];
  const placed = new Set<string>();
  const visit = (name: string, path: string[]) => {
    if (placed.has(name)) return;
    if (path.includes(name)) throw new Error(`foreign keys form a cycle: ${[...path, name]}`);
    const table = byName.get(name)!;
    for (const fk of table.foreignKeys) {
      const parent = getTableConfig(fk.reference().foreignTable).name;
      if (parent !== name) visit(parent, [...path, name]);
    }
    placed.add(name);
    const columns = table.columns.map((c) => ({ name: c.name, kind: columnKind(c.getSQLType()) }));
    const single = table.columns.filter((c) => c.primary).map((c) => c.name);
    const key = [...single, ...table.primaryKeys.flatMap((pk) => pk.columns.map((c) => c.name))];
    if (key.length === 0)
      throw new Error(`${name}: a table without a primary key cannot be copied`);
    const identity =
      single.length === 1 && columns.find((c) => c.name === single[0])?.kind === 'integer'
        ? single[0]
        : undefined;
    ordered.push({ name, columns, key, ...(identity ? { identity } : {}) });
  };
  for (const table of [...tables].sort((a, b) => a.name.localeCompare(b.name))) {
    visit(table.name, []);
  }
  return ordered;
}

function columnKind(sqlType: string): ColumnKind {
  const kind = sqlType.toLowerCase().replace(/\(.*$/, '').trim();
  if (['integer', 'text', 'blob', 'real', 'numeric'].includes(kind)) return kind as ColumnKind;
  throw new Error(`no copy rule for SQLite type ${sqlType}`);
}

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * Feeds one row into a table digest: each value tagged with its type and length-prefixed, so
 * that no two different rows (a NULL and an empty string, text and bytes, 1 and "1") hash alike.
 */
function digestRow(hash: Hash, row: Value[]): void {
  for (const value of row) {
    if (value === null) hash.update('n;');
    else if (typeof value === 'bigint') hash.update(`i${value};`);
    else if (typeof value === 'number') hash.update(`r${value};`);
    else if (typeof value === 'string') {
      hash.update(`s${Buffer.byteLength(value)}:`);
      hash.update(value);
    } else {
      hash.update(`b${value.byteLength}:`);
      hash.update(value);
    }
  }
  hash.update('\n');
}

/**
 * Rows of one table past a point: those whose identity column is greater than `after` (an
 * append-only table's new rows, e.g. the audit entry a backup records).
 */
export type RowsAfter = { after: number };

/** The SELECT that reads `table` in primary-key order (bytewise for text, as SQLite orders it). */
function selectSql(table: TableSpec, postgres: boolean, rows?: RowsAfter): string {
  const order = table.key.map((name) => {
    const kind = table.columns.find((c) => c.name === name)!.kind;
    return postgres && kind === 'text' ? `${ident(name)} COLLATE "C"` : ident(name);
  });
  const where = rows ? ` WHERE ${ident(identityOf(table))} > ${Math.trunc(rows.after)}` : '';
  return `SELECT ${table.columns.map((c) => ident(c.name)).join(', ')} FROM ${ident(table.name)}${where} ORDER BY ${order.join(', ')}`;
}

function identityOf(table: TableSpec): string {
  if (!table.identity) throw new Error(`${table.name} has no integer key to copy rows after`);
  return table.identity;
}

/** Rows of one SQLite table in primary-key order, integers as exact bigints. */
function* sqliteRows(sqlite: Database, table: TableSpec, rows?: RowsAfter): Generator<Value[]> {
  const statement = sqlite.query(selectSql(table, false, rows)).safeIntegers(true);
  for (const row of statement.iterate() as IterableIterator<Record<string, Value>>) {
    yield table.columns.map((c) => row[c.name] ?? null);
  }
}

/** Bun.sql's value of a column as the SQLite side has it (int8 arrives as a string). */
function fromPostgres(value: unknown, kind: ColumnKind): Value {
  if (value === null || value === undefined) return null;
  if (kind === 'integer') return BigInt(value as string);
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (kind === 'real' || kind === 'numeric') return Number(value);
  return value as string;
}

/** A value as text for `json_to_recordset` (cast back to its column type in the INSERT). */
function toJsonText(value: Value): string | null {
  if (value === null) return null;
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  return String(value);
}

/** One multi-row INSERT for `table`: a single prepared statement for any batch size. */
function insertPostgresSql(table: TableSpec): string {
  const names = table.columns.map((c) => ident(c.name));
  const casts = table.columns.map((c) => {
    const column = `x.${ident(c.name)}`;
    if (c.kind === 'integer') return `${column}::bigint`;
    if (c.kind === 'blob') return `decode(${column}, 'hex')`;
    if (c.kind === 'real') return `${column}::double precision`;
    if (c.kind === 'numeric') return `${column}::numeric`;
    return column;
  });
  return (
    `INSERT INTO ${ident(table.name)} (${names.join(', ')}) SELECT ${casts.join(', ')} ` +
    `FROM json_to_recordset($1::json) AS x(${names.map((n) => `${n} text`).join(', ')})`
  );
}

/**
 * Copies every table from `source` (read in one read transaction: one consistent snapshot)
 * into PostgreSQL through `tx` (an open transaction on a database that has the schema and no
 * rows), then moves each identity column's sequence past the highest id copied. Returns the
 * source's figures per table.
 */
export async function copySqliteToPostgres(
  source: Database,
  tx: SQL,
  tables: TableSpec[] = schemaTableSpecs(),
): Promise<TableDigest[]> {
  const digests: TableDigest[] = [];
  source.run('BEGIN');
  try {
    for (const table of tables) digests.push(await copyTableToPostgres(source, tx, table));
  } finally {
    source.run('COMMIT');
  }
  return digests;
}

/**
 * Copies one table's rows (all, or only those past `rows.after`) from `source` into PostgreSQL
 * through `tx`, then moves its identity column's sequence past the highest id there. Returns
 * the figures of the rows copied. Call inside a read transaction on `source` for a snapshot.
 */
export async function copyTableToPostgres(
  source: Database,
  tx: SQL,
  table: TableSpec,
  rows?: RowsAfter,
): Promise<TableDigest> {
  const hash = createHash('sha256');
  const insert = insertPostgresSql(table);
  let count = 0;
  let batch: Record<string, string | null>[] = [];
  const flush = async () => {
    if (batch.length > 0) await tx.unsafe(insert, [batch]);
    batch = [];
  };
  for (const row of sqliteRows(source, table, rows)) {
    digestRow(hash, row);
    count++;
    batch.push(Object.fromEntries(table.columns.map((c, i) => [c.name, toJsonText(row[i]!)])));
    if (batch.length >= BATCH_ROWS) await flush();
  }
  await flush();
  if (table.identity) {
    const column = ident(table.identity);
    await tx.unsafe(
      `SELECT setval(pg_get_serial_sequence($1, $2), coalesce(max(${column}), 0) + 1, false) FROM ${ident(table.name)}`,
      [table.name, table.identity],
    );
  }
  return { table: table.name, rows: count, digest: hash.digest('hex') };
}

/**
 * Copies every table from PostgreSQL (read through `tx`, which should be a REPEATABLE READ
 * transaction: one snapshot) into `target`, a migrated SQLite database with no rows, in one
 * SQLite transaction. Returns PostgreSQL's figures per table.
 */
export async function copyPostgresToSqlite(
  tx: SQL,
  target: Database,
  tables: TableSpec[] = schemaTableSpecs(),
): Promise<TableDigest[]> {
  const digests: TableDigest[] = [];
  target.run('BEGIN IMMEDIATE');
  try {
    for (const table of tables) {
      const hash = createHash('sha256');
      const insert = target.prepare(
        `INSERT INTO ${ident(table.name)} (${table.columns.map((c) => ident(c.name)).join(', ')}) ` +
          `VALUES (${table.columns.map(() => '?').join(', ')})`,
      );
      const cursor = `secryn_copy_${table.name}`;
      await tx.unsafe(`DECLARE ${ident(cursor)} NO SCROLL CURSOR FOR ${selectSql(table, true)}`);
      let rows = 0;
      for (;;) {
        const fetched: unknown[][] = await tx
          .unsafe(`FETCH ${BATCH_ROWS} FROM ${ident(cursor)}`)
          .values();
        for (const raw of fetched) {
          const row = table.columns.map((c, i) => fromPostgres(raw[i], c.kind));
          digestRow(hash, row);
          insert.run(...(row as never[]));
          rows++;
        }
        if (fetched.length < BATCH_ROWS) break;
      }
      await tx.unsafe(`CLOSE ${ident(cursor)}`);
      insert.finalize();
      digests.push({ table: table.name, rows, digest: hash.digest('hex') });
    }
    target.run('COMMIT');
  } catch (error) {
    target.run('ROLLBACK');
    throw error;
  }
  return digests;
}

/** The figures of every table of a SQLite database, read in one read transaction. */
export function digestSqlite(
  sqlite: Database,
  tables: TableSpec[] = schemaTableSpecs(),
): TableDigest[] {
  sqlite.run('BEGIN');
  try {
    return tables.map((table) => {
      const hash = createHash('sha256');
      let rows = 0;
      for (const row of sqliteRows(sqlite, table)) {
        digestRow(hash, row);
        rows++;
      }
      return { table: table.name, rows, digest: hash.digest('hex') };
    });
  } finally {
    sqlite.run('COMMIT');
  }
}

/**
 * The schema's tables that exist in the PostgreSQL database and hold rows (a target must have
 * none: a copy never merges into an instance).
 */
export async function postgresTablesWithRows(
  sql: SQL,
  tables: TableSpec[] = schemaTableSpecs(),
): Promise<string[]> {
  const found: string[] = [];
  for (const table of tables) {
    const [exists] = await sql.unsafe('SELECT to_regclass($1) AS oid', [
      `public.${ident(table.name)}`,
    ]);
    if (!exists?.oid) continue;
    const [row] = await sql.unsafe(`SELECT EXISTS (SELECT 1 FROM ${ident(table.name)}) AS any`);
    if (row?.any) found.push(table.name);
  }
  return found;
}

/** The first table whose figures differ between two sides, as a sentence, or undefined. */
export function digestMismatch(
  expected: TableDigest[],
  actual: TableDigest[],
  sides: [string, string],
): string | undefined {
  const other = new Map(actual.map((d) => [d.table, d]));
  for (const mine of expected) {
    const theirs = other.get(mine.table);
    if (!theirs) return `table ${mine.table} is missing on ${sides[1]}`;
    if (theirs.rows !== mine.rows) {
      return `table ${mine.table} has ${mine.rows} rows on ${sides[0]} but ${theirs.rows} on ${sides[1]}`;
    }
    if (theirs.digest !== mine.digest) {
      return `table ${mine.table}: the rows differ between ${sides[0]} and ${sides[1]} (digest)`;
    }
  }
  if (actual.length !== expected.length) return `the two sides list different tables`;
  return undefined;
}

/**
 * A new SQLite file at `path` (mode 0600), migrated to this build's schema: where a copy from
 * PostgreSQL is written (migrate-storage's way back, a backup's snapshot, a read-back check).
 */
export function createMigratedSqlite(path: string, busyTimeoutMs: number): Database {
  const sqlite = openDatabase(path, { synchronous: 'full', busyTimeoutMs });
  chmodSync(path, 0o600);
  runMigrations(sqlite);
  return sqlite;
}

/** A PostgreSQL URL as it may be printed: without a password (the configuration refuses one in
 * it; this is belt and braces). */
export function urlWithoutPassword(url: string): string {
  const parsed = new URL(url);
  parsed.password = '';
  return parsed.toString();
}
