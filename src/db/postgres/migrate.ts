/**
 * Applies the embedded PostgreSQL migrations (migrations/postgres/, derived from the SQLite
 * schema by scripts/pg-ddl.ts) under an advisory lock, so that nodes starting together apply
 * each one exactly once, and refuses a database whose history this build does not know.
 */
import type { SQL } from 'bun';
import { createHash } from 'node:crypto';
import { embeddedPostgresMigrations } from '../../../migrations/postgres/index.ts';

/** Where applied migrations are recorded (tag, hash of the SQL, when). */
export const POSTGRES_MIGRATIONS_TABLE = 'secryn_schema_migrations';

/**
 * The `pg_advisory_lock` key every Secryn node takes while migrating: the ASCII of "SECRYN"
 * (0x534543_52594E), fixed so that every build and every node agree on it.
 */
export const MIGRATION_LOCK_KEY = 0x534543_52594en;

/** Statement separator inside a migration (the same as drizzle-kit's for SQLite). */
const BREAKPOINT = '--> statement-breakpoint';

export type PostgresMigration = { tag: string; sql: string };

/**
 * The database records a migration this build does not have, or one whose SQL differs from
 * this build's (made by a newer build, or by a pre-release whose migrations were since
 * regenerated). Running on it could misread or damage data, so nothing is applied.
 */
export class IncompatiblePostgresSchemaError extends Error {
  constructor(readonly tag: string) {
    super(
      `the PostgreSQL schema was made by another Secryn build (its migration ${tag} is ` +
        `unknown to this one); run it with that build, or restore a backup made by this one`,
    );
    this.name = 'IncompatiblePostgresSchemaError';
  }
}

/**
 * Applies every migration the database has not recorded, each in its own transaction, while
 * holding `pg_advisory_lock(MIGRATION_LOCK_KEY)` on one reserved connection: a second node
 * waits for the first, then finds nothing left to do. Idempotent. Returns the tags applied.
 * @throws IncompatiblePostgresSchemaError before applying anything, for an unknown history.
 */
export async function runPostgresMigrations(
  sql: SQL,
  migrations: PostgresMigration[] = embeddedPostgresMigrations,
): Promise<string[]> {
  const connection = await sql.reserve();
  try {
    await connection.unsafe(`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY})`);
    try {
      await connection.unsafe(
        `CREATE TABLE IF NOT EXISTS ${POSTGRES_MIGRATIONS_TABLE} (` +
          'tag text PRIMARY KEY, hash text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
      );
      const recorded = await appliedMigrations(connection, migrations);
      const applied: string[] = [];
      for (const migration of migrations) {
        if (recorded.has(migration.tag)) continue;
        await connection.begin(async (tx) => {
          for (const statement of migration.sql.split(BREAKPOINT)) {
            if (statement.trim()) await tx.unsafe(statement);
          }
          await tx.unsafe(`INSERT INTO ${POSTGRES_MIGRATIONS_TABLE} (tag, hash) VALUES ($1, $2)`, [
            migration.tag,
            sqlHash(migration.sql),
          ]);
        });
        applied.push(migration.tag);
      }
      return applied;
    } finally {
      await connection.unsafe(`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY})`);
    }
  } finally {
    connection.release();
  }
}

/**
 * Number of embedded migrations the database has not applied yet (all of them on an empty
 * database). @throws IncompatiblePostgresSchemaError when it has applied one this build lacks.
 */
export async function pendingPostgresMigrationCount(
  sql: SQL,
  migrations: PostgresMigration[] = embeddedPostgresMigrations,
): Promise<number> {
  const [table] = await sql.unsafe('SELECT to_regclass($1) AS oid', [POSTGRES_MIGRATIONS_TABLE]);
  if (!table?.oid) return migrations.length;
  const recorded = await appliedMigrations(sql, migrations);
  return migrations.filter((m) => !recorded.has(m.tag)).length;
}

/** The recorded tags, each checked against `migrations` by tag and hash. */
async function appliedMigrations(sql: SQL, migrations: PostgresMigration[]): Promise<Set<string>> {
  const known = new Map(migrations.map((m) => [m.tag, sqlHash(m.sql)]));
  const rows: { tag: string; hash: string }[] = await sql.unsafe(
    `SELECT tag, hash FROM ${POSTGRES_MIGRATIONS_TABLE} ORDER BY tag`,
  );
  for (const row of rows) {
    if (known.get(row.tag) !== row.hash) throw new IncompatiblePostgresSchemaError(row.tag);
  }
  return new Set(rows.map((row) => row.tag));
}

function sqlHash(sql: string): string {
  return createHash('sha256').update(sql).digest('hex');
}
