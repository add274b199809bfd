/** `secryn migrate`. */
import { defineCommand } from 'citty';
import type { Config } from '../config/schema.ts';
import { runMigrations } from '../db/migrate.ts';
import { connectPostgres } from '../db/postgres/connect.ts';
import { IncompatiblePostgresSchemaError, runPostgresMigrations } from '../db/postgres/migrate.ts';
import { commonArgs, jsonArg, loadCliConfig, openExistingDatabase, print } from './common.ts';
import { CliFailure, ExitCode } from './exit.ts';

/**
 * `secryn migrate`: applies pending schema migrations to an existing database (idempotent). On
 * `backend = "postgres"` it prepares the configured PostgreSQL database (under the migration
 * advisory lock), the one storage command that works there before serving from it does.
 */
export const migrateCommand = defineCommand({
  meta: { name: 'migrate', description: 'Apply pending database migrations' },
  args: { ...commonArgs, ...jsonArg },
  async run({ args }) {
    const { config } = loadCliConfig(args, { postgres: 'handled' });
    const applied =
      config.storage.backend === 'postgres' ? await migratePostgres(config) : migrateSqlite(config);
    if (args.json) print(JSON.stringify({ applied }));
    else
      print(
        applied.length
          ? `applied ${applied.length} migration(s): ${applied.join(', ')}`
          : 'database is up to date',
      );
  },
});

function migrateSqlite(config: Config): string[] {
  const sqlite = openExistingDatabase(config);
  try {
    return runMigrations(sqlite);
  } finally {
    sqlite.close();
  }
}

async function migratePostgres(config: Config): Promise<string[]> {
  const sql = connectPostgres({ ...config.storage, pool_size: 1 }, process.env);
  try {
    return await runPostgresMigrations(sql);
  } catch (error) {
    if (error instanceof IncompatiblePostgresSchemaError) {
      throw new CliFailure(error.message, ExitCode.FAILURE, 'INCOMPATIBLE_SCHEMA');
    }
    // The URL holds no password (the config refuses one), so its host and database may be named.
    const message = error instanceof Error ? error.message : String(error);
    const { host, pathname } = new URL(config.storage.url!);
    throw new CliFailure(`PostgreSQL ${host}${pathname} (storage.url): ${message}`);
  } finally {
    await sql.close();
  }
}
