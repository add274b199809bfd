/**
 * The PostgreSQL schema and its migrations, on a real cluster: they apply to an empty database;
 * every table, column (mapped type, nullability), key, index, check and foreign key of the
 * SQLite schema (drizzle's getTableConfig, the source of truth) exists in PostgreSQL; runners
 * in separate processes starting at once apply each migration exactly once; an unknown history
 * is refused; `secryn migrate` prepares a database from the executable's embedded migrations.
 */
import { expect, test } from 'bun:test';
import { is } from 'drizzle-orm';
import { getTableConfig, SQLiteTable } from 'drizzle-orm/sqlite-core';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { embeddedPostgresMigrations } from '../migrations/postgres/index.ts';
import * as schema from '../src/db/schema/index.ts';
import {
  IncompatiblePostgresSchemaError,
  POSTGRES_MIGRATIONS_TABLE,
  pendingPostgresMigrationCount,
  runPostgresMigrations,
} from '../src/db/postgres/migrate.ts';
import { REPO_ROOT, runCli, tempDir } from './harness.ts';
import { TestDatabase, describePostgres } from './postgres-harness.ts';

const TYPES: Record<string, string> = {
  integer: 'bigint',
  text: 'text',
  blob: 'bytea',
  real: 'double precision',
  numeric: 'numeric',
};

const tables = (Object.values(schema) as unknown[])
  .filter((value): value is SQLiteTable => is(value, SQLiteTable))
  .map((table) => getTableConfig(table));

/** Runs `body` against a database of its own, dropped after. */
async function withDatabase(body: (db: TestDatabase) => Promise<void>): Promise<void> {
  const db = new TestDatabase();
  await db.create();
  try {
    await body(db);
  } finally {
    await db.drop();
  }
}

describePostgres('PostgreSQL migrations', (db) => {
  test('they apply to an empty database once; a second run finds nothing to do', async () => {
    expect(await pendingPostgresMigrationCount(db.sql)).toBe(embeddedPostgresMigrations.length);
    expect(await runPostgresMigrations(db.sql)).toEqual(
      embeddedPostgresMigrations.map((m) => m.tag),
    );
    expect(await runPostgresMigrations(db.sql)).toEqual([]);
    expect(await pendingPostgresMigrationCount(db.sql)).toBe(0);
    const rows = await db.sql.unsafe(`SELECT tag FROM ${POSTGRES_MIGRATIONS_TABLE} ORDER BY tag`);
    expect(rows.map((r: { tag: string }) => r.tag)).toEqual(
      embeddedPostgresMigrations.map((m) => m.tag),
    );
  });

  test('every table and column of the SQLite schema exists with the mapped type, nullability and text order', async () => {
    await runPostgresMigrations(db.sql);
    const columns: {
      table_name: string;
      column_name: string;
      data_type: string;
      is_nullable: string;
      collation_name: string | null;
    }[] = await db.sql`SELECT table_name, column_name, data_type, is_nullable, collation_name
        FROM information_schema.columns WHERE table_schema = 'public'`;
    const actual = new Map(columns.map((c) => [`${c.table_name}.${c.column_name}`, c]));
    const expected = new Set<string>();
    for (const table of tables) {
      for (const column of table.columns) {
        const key = `${table.name}.${column.name}`;
        expected.add(key);
        const sqliteType = column.getSQLType().toLowerCase();
        expect({
          key,
          type: actual.get(key)?.data_type,
          nullable: actual.get(key)?.is_nullable,
          collation: actual.get(key)?.collation_name,
        }).toEqual({
          key,
          type: TYPES[sqliteType],
          nullable: column.notNull || column.primary ? 'NO' : 'YES',
          // SQLite's BINARY (bytewise) text order, whatever the database's locale.
          collation: sqliteType === 'text' ? 'C' : null,
        });
      }
    }
    // Nothing in PostgreSQL that SQLite does not have, but the migrations' own bookkeeping.
    const extra = [...actual.keys()].filter(
      (key) => !expected.has(key) && !key.startsWith(`${POSTGRES_MIGRATIONS_TABLE}.`),
    );
    expect(extra).toEqual([]);
  });

  test('keys, indexes, checks and foreign keys (with their actions) are there too', async () => {
    await runPostgresMigrations(db.sql);
    const constraints: { name: string; table: string; type: string; definition: string }[] =
      await db.sql`SELECT c.conname AS name, t.relname AS table, c.contype AS type,
          pg_get_constraintdef(c.oid) AS definition
        FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = 'public'`;
    const indexes: { name: string; table: string; definition: string }[] =
      await db.sql`SELECT indexname AS name, tablename AS table, indexdef AS definition
        FROM pg_indexes WHERE schemaname = 'public'`;
    const constraint = (table: string, type: string) =>
      constraints.filter((c) => c.table === table && c.type === type);
    for (const table of tables) {
      const primary = [
        ...table.columns.filter((c) => c.primary).map((c) => c.name),
        ...table.primaryKeys.flatMap((pk) => pk.columns.map((c) => c.name)),
      ];
      expect({ table: table.name, pk: constraint(table.name, 'p')[0]?.definition }).toEqual({
        table: table.name,
        pk: `PRIMARY KEY (${primary.join(', ')})`,
      });
      for (const index of table.indexes) {
        const found = indexes.find((i) => i.table === table.name && i.name === index.config.name);
        expect(found?.definition ?? `missing index ${index.config.name}`).toContain(
          `${index.config.unique ? 'UNIQUE ' : ''}INDEX ${index.config.name} ON public.${table.name}`,
        );
        if (index.config.where) expect(found?.definition).toContain(' WHERE ');
      }
      expect(
        constraint(table.name, 'c')
          .map((c) => c.name)
          .sort(),
      ).toEqual(table.checks.map((c) => c.name).sort());
      const foreign = constraint(table.name, 'f');
      expect(foreign).toHaveLength(table.foreignKeys.length);
      for (const fk of table.foreignKeys) {
        const ref = fk.reference();
        const definition = foreign.find((f) =>
          f.definition.includes(`(${ref.columns[0]!.name})`),
        )?.definition;
        expect(definition).toContain(`REFERENCES ${getTableConfig(ref.foreignTable).name}(`);
        if (fk.onDelete === 'cascade') expect(definition).toContain('ON DELETE CASCADE');
        else expect(definition).not.toContain('ON DELETE');
      }
    }
  });

  test('runners in separate processes starting at once apply each migration exactly once', async () => {
    await withDatabase(async (fresh) => {
      const startAt = Date.now() + 1500;
      const child = `
        import { SQL } from 'bun';
        import { runPostgresMigrations } from ${JSON.stringify(join(REPO_ROOT, 'src/db/postgres/migrate.ts'))};
        const sql = new SQL({ url: ${JSON.stringify(fresh.url)}, max: 2 });
        await sql\`SELECT 1\`;
        await Bun.sleep(${startAt} - Date.now());
        console.log(JSON.stringify(await runPostgresMigrations(sql)));
        await sql.close();`;
      const runners = Array.from({ length: 4 }, () =>
        Bun.spawn([process.execPath, '-e', child], { stdout: 'pipe', stderr: 'pipe' }),
      );
      const results = await Promise.all(
        runners.map(async (proc) => ({
          code: await proc.exited,
          stdout: await new Response(proc.stdout).text(),
          stderr: await new Response(proc.stderr).text(),
        })),
      );
      for (const result of results) expect(result).toMatchObject({ code: 0, stderr: '' });
      const applied = results.map((r) => JSON.parse(r.stdout) as string[]);
      const tags = embeddedPostgresMigrations.map((m) => m.tag);
      expect(applied.filter((a) => a.length > 0)).toEqual([tags]);
      expect(applied.flat().sort()).toEqual(tags);
      const [row] = await fresh.sql.unsafe(
        `SELECT count(*)::int AS n FROM ${POSTGRES_MIGRATIONS_TABLE}`,
      );
      expect(row.n).toBe(tags.length);
    });
  }, 30_000);

  test('a history this build does not know is refused, and nothing is applied', async () => {
    await withDatabase(async (fresh) => {
      const [first] = embeddedPostgresMigrations;
      await runPostgresMigrations(fresh.sql, [first!]);
      await fresh.sql.unsafe(
        `INSERT INTO ${POSTGRES_MIGRATIONS_TABLE} (tag, hash) VALUES ('9999_from_a_newer_build', 'x')`,
      );
      const next = { tag: '0001_next', sql: 'CREATE TABLE next_table (x int)' };
      const refused = runPostgresMigrations(fresh.sql, [first!, next]);
      await expect(refused).rejects.toBeInstanceOf(IncompatiblePostgresSchemaError);
      await expect(runPostgresMigrations(fresh.sql, [first!, next])).rejects.toThrow(
        'its migration 9999_from_a_newer_build is unknown to this one',
      );
      await expect(pendingPostgresMigrationCount(fresh.sql)).rejects.toBeInstanceOf(
        IncompatiblePostgresSchemaError,
      );
      const [table] = await fresh.sql`SELECT to_regclass('next_table') AS oid`;
      expect(table.oid).toBeNull();
      // The same tag with other SQL (a regenerated pre-release migration) is refused too.
      await fresh.sql.unsafe(`DELETE FROM ${POSTGRES_MIGRATIONS_TABLE} WHERE tag LIKE '9999%'`);
      await expect(
        runPostgresMigrations(fresh.sql, [{ tag: first!.tag, sql: `${first!.sql}\n-- changed` }]),
      ).rejects.toThrow(`its migration ${first!.tag} is unknown`);
      // And the lock was released each time: a correct runner still gets through.
      expect(await runPostgresMigrations(fresh.sql, [first!, next])).toEqual(['0001_next']);
    });
  });

  test('secryn migrate prepares the configured PostgreSQL database from the embedded migrations', async () => {
    await withDatabase(async (fresh) => {
      using dir = tempDir();
      const config = join(dir.path, 'secryn.toml');
      writeFileSync(config, `[storage]\nbackend = "postgres"\nurl = "${fresh.url}"\n`);
      const first = await runCli(['migrate', '--config', config, '--json']);
      expect(first).toMatchObject({ exitCode: 0, stderr: '' });
      expect(JSON.parse(first.stdout)).toEqual({
        applied: embeddedPostgresMigrations.map((m) => m.tag),
      });
      const again = await runCli(['migrate', '--config', config]);
      expect(again).toMatchObject({ exitCode: 0, stdout: 'database is up to date\n' });
      await fresh.sql.unsafe(
        `INSERT INTO ${POSTGRES_MIGRATIONS_TABLE} (tag, hash) VALUES ('9999_from_a_newer_build', 'x')`,
      );
      const refused = await runCli(['migrate', '--config', config]);
      expect(refused.exitCode).toBe(1);
      expect(refused.stderr).toContain('its migration 9999_from_a_newer_build is unknown');
    });
  }, 30_000);
});
