/** Applies the embedded schema migrations and refuses a history this build does not know. */
import type { Database } from 'bun:sqlite';
import { createHash } from 'node:crypto';
import { embeddedMigrations } from '../../migrations/index.ts';

/** The bookkeeping table drizzle-kit's own migrator uses, so both agree on what ran. */
const MIGRATIONS_TABLE = '__drizzle_migrations';

export type Migration = { tag: string; createdAt: number; sql: string };

/**
 * The database's schema history names a migration this build does not have (made by a newer
 * build, or by a pre-release whose migrations were since regenerated). Running on it could
 * misread or damage data, so nothing is applied and the database is not opened.
 */
export class IncompatibleSchemaError extends Error {
  constructor(readonly appliedAt: number) {
    const when =
      Number.isFinite(appliedAt) && Math.abs(appliedAt) <= 8.64e15
        ? new Date(appliedAt).toISOString()
        : String(appliedAt);
    super(
      `the database schema was made by another Secryn build (its migration of ${when} is ` +
        `unknown to this one); run it with that build, or restore a backup made by this one`,
    );
    this.name = 'IncompatibleSchemaError';
  }
}

/**
 * Applies every embedded migration that this database has not seen, in one write transaction
 * (`BEGIN IMMEDIATE`, so two processes starting at once cannot both apply a migration).
 * Idempotent. Returns the tags applied.
 */
export function runMigrations(
  sqlite: Database,
  migrations: Migration[] = embeddedMigrations,
): string[] {
  sqlite.run(
    `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (id INTEGER PRIMARY KEY, hash TEXT NOT NULL, created_at NUMERIC)`,
  );
  const applied: string[] = [];
  sqlite.run('BEGIN IMMEDIATE');
  try {
    const last = sqlite
      .query<
        { created_at: number },
        []
      >(`SELECT created_at FROM ${MIGRATIONS_TABLE} ORDER BY created_at DESC LIMIT 1`)
      .get();
    const lastApplied = last ? Number(last.created_at) : -Infinity;
    assertKnownHistory(sqlite, migrations);
    for (const migration of migrations) {
      if (migration.createdAt <= lastApplied) continue;
      for (const statement of migration.sql.split('--> statement-breakpoint')) {
        if (statement.trim()) sqlite.run(statement);
      }
      sqlite.run(`INSERT INTO ${MIGRATIONS_TABLE} (hash, created_at) VALUES (?, ?)`, [
        sqlHash(migration.sql),
        migration.createdAt,
      ]);
      applied.push(migration.tag);
    }
    sqlite.run('COMMIT');
  } catch (error) {
    sqlite.run('ROLLBACK');
    throw error;
  }
  return applied;
}

/**
 * Number of embedded migrations this database has not applied yet.
 * @throws IncompatibleSchemaError when it has applied one this build does not know.
 */
export function pendingMigrationCount(
  sqlite: Database,
  migrations: Migration[] = embeddedMigrations,
): number {
  if (!hasMigrationsTable(sqlite)) return migrations.length;
  assertKnownHistory(sqlite, migrations);
  const last = sqlite
    .query<
      { created_at: number },
      []
    >(`SELECT max(created_at) AS created_at FROM ${MIGRATIONS_TABLE}`)
    .get();
  const lastApplied = last?.created_at == null ? -Infinity : Number(last.created_at);
  return migrations.filter((m) => m.createdAt > lastApplied).length;
}

/**
 * Refuses a database that has applied a migration this build lacks (see
 * {@link IncompatibleSchemaError}); for commands that only read it. Nothing to check before the
 * first migration.
 */
export function assertKnownMigrationHistory(
  sqlite: Database,
  migrations: Migration[] = embeddedMigrations,
): void {
  if (hasMigrationsTable(sqlite)) assertKnownHistory(sqlite, migrations);
}

function hasMigrationsTable(sqlite: Database): boolean {
  return (
    sqlite
      .query(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`)
      .get(MIGRATIONS_TABLE) !== null
  );
}

/** Every applied migration must be one of `migrations`, with the same SQL (by hash). */
function assertKnownHistory(sqlite: Database, migrations: Migration[]): void {
  const known = new Map(migrations.map((m) => [m.createdAt, m.sql]));
  const applied = sqlite
    .query<
      { hash: string; created_at: number },
      []
    >(`SELECT hash, created_at FROM ${MIGRATIONS_TABLE} ORDER BY created_at`)
    .all();
  for (const row of applied) {
    const createdAt = Number(row.created_at);
    const sql = known.get(createdAt);
    if (sql === undefined || sqlHash(sql) !== row.hash)
      throw new IncompatibleSchemaError(createdAt);
  }
}

function sqlHash(sql: string): string {
  return createHash('sha256').update(sql).digest('hex');
}
