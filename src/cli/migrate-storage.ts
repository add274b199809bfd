/** `secryn migrate-storage --to URL`: copies the instance between SQLite and PostgreSQL, verified. */
import { SQL } from 'bun';
import { defineCommand } from 'citty';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { BackupIntegrityError, verifyBackupIntegrity } from '../backup/restore.ts';
import { runningServePid } from '../backup/serve-marker.ts';
import type { Config } from '../config/schema.ts';
import { storageErrors } from '../config/storage.ts';
import { fsyncDirectory, renameNoReplace } from '../crypto/atomic-file.ts';
import { openDatabase } from '../db/client.ts';
import { pendingMigrationCount } from '../db/migrate.ts';
import { connectPostgres } from '../db/postgres/connect.ts';
import {
  copyPostgresToSqlite,
  copySqliteToPostgres,
  createMigratedSqlite,
  digestMismatch,
  digestSqlite,
  postgresTablesWithRows,
  schemaTableSpecs,
  urlWithoutPassword,
  type TableDigest,
} from '../db/postgres/copy.ts';
import {
  IncompatiblePostgresSchemaError,
  MIGRATION_LOCK_KEY,
  pendingPostgresMigrationCount,
  runPostgresMigrations,
} from '../db/postgres/migrate.ts';
import { NotInitializedError } from '../instance.ts';
import { loadConfiguredMasterKey } from '../keyring/key-files.ts';
import { commonArgs, jsonArg, loadCliConfig, print } from './common.ts';
import { CliFailure, ExitCode } from './exit.ts';

/**
 * `secryn migrate-storage --to URL`. The source is always the configured `[storage]`; the
 * target is `--to`:
 * - `backend = "sqlite"` → `--to postgres://USER@HOST/DB`: the SQLite file is opened read-only
 *   (left byte for byte as it was); the PostgreSQL database must hold no Secryn rows (an empty
 *   database, or one only `secryn migrate` has prepared); its migrations are applied, then every
 *   table is copied and verified in one PostgreSQL transaction, so the target ends up with the
 *   whole verified copy or with no rows at all. Its password: `--password-file`,
 *   SECRYN_DB_PASSWORD or the systemd credential `secryn-db-password` (never in the URL).
 * - `backend = "postgres"` → `--to sqlite:PATH`: PATH must not exist; a fresh migrated SQLite
 *   database is filled from one REPEATABLE READ snapshot, verified, and only then renamed to
 *   PATH. PostgreSQL is only read.
 * Verification: per table the row count and a digest over every row in primary-key order, equal
 * on both sides; then, on a SQLite copy of what the target holds, what `restore` checks (the
 * keyring opens with the configured master key, every API key's MAC, the keyed audit chain).
 * Values stay sealed throughout: nothing is decrypted, the master key is the same.
 * Exit codes: 4 target not empty / exists, 65 verification failed (nothing kept), 3 no source.
 */
export const migrateStorageCommand = defineCommand({
  meta: {
    name: 'migrate-storage',
    description: 'Copy the instance from SQLite to PostgreSQL (or back with --to sqlite:PATH)',
  },
  args: {
    ...commonArgs,
    ...jsonArg,
    to: {
      type: 'string',
      description: 'postgres://USER@HOST[:PORT]/DB (no password in it), or sqlite:PATH',
      valueHint: 'URL',
      required: true,
    },
    'password-file': {
      type: 'string',
      description: 'File holding the target PostgreSQL password (else SECRYN_DB_PASSWORD)',
      valueHint: 'PATH',
    },
    'ca-file': {
      type: 'string',
      description: 'CA certificate (PEM) to verify the target PostgreSQL server with',
      valueHint: 'PATH',
    },
  },
  async run({ args }) {
    const { config } = loadCliConfig(args, { postgres: 'handled' });
    const to = args.to;
    let result: MigrationResult;
    if (to.startsWith('sqlite:')) {
      if (config.storage.backend !== 'postgres') {
        throw new CliFailure(
          '--to sqlite:PATH copies a PostgreSQL instance (storage.backend = "postgres"); ' +
            'to copy a SQLite instance use `secryn backup`',
          ExitCode.USAGE,
        );
      }
      const path = to.slice('sqlite:'.length);
      if (path === '') throw new CliFailure('--to sqlite:PATH needs a path', ExitCode.USAGE);
      result = await postgresToSqlite(config, resolve(path));
    } else {
      if (config.storage.backend !== 'sqlite') {
        throw new CliFailure(
          'the configured storage is PostgreSQL already; --to takes sqlite:PATH',
          ExitCode.USAGE,
        );
      }
      const problems = storageErrors({ backend: 'postgres', url: to } as Config['storage']);
      if (problems.length > 0) {
        throw new CliFailure(problems.join('; ').replace(/^storage\.url/, '--to'), ExitCode.USAGE);
      }
      result = await sqliteToPostgres(config, {
        url: to,
        password_file: args['password-file'],
        ca_file: args['ca-file'],
      });
    }
    const rows = result.tables.reduce((sum, t) => sum + t.rows, 0);
    if (args.json) {
      print(
        JSON.stringify({
          from: result.from,
          to: result.to,
          tables: result.tables,
          rows,
          verified: true,
        }),
      );
      return;
    }
    print(
      `copied ${result.tables.length} tables (${rows} rows) from ${result.from} to ${result.to}\n` +
        'verified: row counts and digests equal on both sides; keyring, API key MACs and the ' +
        'audit chain verify on the copy',
    );
  },
});

type MigrationResult = { from: string; to: string; tables: TableDigest[] };

type Target = { url: string; password_file?: string; ca_file?: string };

async function sqliteToPostgres(config: Config, target: Target): Promise<MigrationResult> {
  const sourcePath = resolve(config.storage.path);
  if (!existsSync(sourcePath)) throw new NotInitializedError(sourcePath);
  const pid = runningServePid(sourcePath);
  if (pid !== undefined) {
    throw new CliFailure(
      `secryn serve (pid ${pid}) is running on ${sourcePath}; stop it before migrating, or ` +
        'the writes it takes meanwhile would not be in the copy',
    );
  }
  // Read-only: nothing (not even a checkpoint on close) writes to the source.
  const source = openDatabase(sourcePath, {
    synchronous: 'full',
    busyTimeoutMs: config.storage.busy_timeout_ms,
    mustExist: true,
    readonly: true,
  });
  const sql = connectPostgres({ ...target, pool_size: 1 }, process.env);
  const scratch = scratchDirectory();
  try {
    if (pendingMigrationCount(source) > 0) {
      throw new CliFailure(
        `${sourcePath} needs migrations this build has; run \`secryn migrate\` first`,
      );
    }
    await postgresStep(() => refuseNonEmpty(sql, target.url));
    await postgresStep(() => runPostgresMigrations(sql));
    const tables = schemaTableSpecs();
    const copy = join(scratch, 'verify.db');
    const digests = await postgresStep(() =>
      sql.begin(async (tx) => {
        // The lock the migration runner takes: no other migrate-storage or migrate meanwhile.
        await tx.unsafe(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
        await refuseNonEmpty(tx, target.url);
        const fromSource = await copySqliteToPostgres(source, tx, tables);
        // Read back what PostgreSQL now holds into a private SQLite file, then check it there:
        // any failure rolls the whole copy back.
        const readBack = createMigratedSqlite(copy, config.storage.busy_timeout_ms);
        let fromTarget: TableDigest[];
        let onCopy: TableDigest[];
        try {
          fromTarget = await copyPostgresToSqlite(tx, readBack, tables);
          onCopy = digestSqlite(readBack, tables);
        } finally {
          readBack.close();
        }
        refuseMismatch(digestMismatch(fromSource, fromTarget, ['SQLite', 'PostgreSQL']));
        refuseMismatch(digestMismatch(fromTarget, onCopy, ['PostgreSQL', 'its read-back copy']));
        verifyCopy(copy, config);
        return fromSource;
      }),
    );
    return { from: sourcePath, to: urlWithoutPassword(target.url), tables: digests };
  } finally {
    source.close();
    await sql.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function postgresToSqlite(config: Config, path: string): Promise<MigrationResult> {
  if (['', '-wal', '-shm'].some((suffix) => existsSync(path + suffix))) {
    throw new CliFailure(
      `${path} already exists; migrate-storage creates a new SQLite instance and never ` +
        'replaces one',
      ExitCode.ALREADY_INITIALIZED,
    );
  }
  const staging = `${path}.migrate-tmp`;
  for (const suffix of ['', '-wal', '-shm']) rmSync(staging + suffix, { force: true });
  const sql = connectPostgres({ ...config.storage, pool_size: 1 }, process.env);
  try {
    const pending = await postgresStep(() => pendingPostgresMigrationCount(sql));
    if (pending > 0) {
      throw new CliFailure(
        "the PostgreSQL database is not at this build's schema; run `secryn migrate` first",
      );
    }
    const tables = schemaTableSpecs();
    const target = createMigratedSqlite(staging, config.storage.busy_timeout_ms);
    let digests: TableDigest[];
    try {
      const fromSource = await postgresStep(() =>
        sql.begin('ISOLATION LEVEL REPEATABLE READ READ ONLY', (tx) =>
          copyPostgresToSqlite(tx, target, tables),
        ),
      );
      refuseMismatch(
        digestMismatch(fromSource, digestSqlite(target, tables), ['PostgreSQL', path]),
      );
      digests = fromSource;
    } finally {
      target.close();
    }
    verifyCopy(staging, config);
    renameNoReplace(staging, path);
    fsyncDirectory(dirname(path));
    return { from: urlWithoutPassword(config.storage.url!), to: path, tables: digests };
  } finally {
    for (const suffix of ['', '-wal', '-shm']) rmSync(staging + suffix, { force: true });
    await sql.close();
  }
}

/** A new SQLite database at `path` (0600) with every migration applied and no rows. */

/** What `restore` checks, on the SQLite copy at `path`, with the configured master key. */
function verifyCopy(path: string, config: Config): void {
  const key = loadConfiguredMasterKey(config, process.env);
  try {
    verifyBackupIntegrity(path, key.key, config);
  } catch (error) {
    if (error instanceof BackupIntegrityError) {
      // The verifier speaks of a backup; what failed is what matters here.
      throw new CliFailure(
        `the copy fails verification, nothing was kept: ${error.reason}`,
        ExitCode.INTEGRITY,
      );
    }
    throw error;
  } finally {
    key.key.fill(0);
  }
}

function refuseMismatch(problem: string | undefined): void {
  if (problem) {
    throw new CliFailure(
      `the copy fails verification, nothing was kept: ${problem}`,
      ExitCode.INTEGRITY,
    );
  }
}

async function refuseNonEmpty(sql: SQL, url: string): Promise<void> {
  const occupied = await postgresTablesWithRows(sql);
  if (occupied.length > 0) {
    throw new CliFailure(
      `${urlWithoutPassword(url)} already holds Secryn data (${occupied.slice(0, 3).join(', ')}` +
        `${occupied.length > 3 ? ', …' : ''}); migrate-storage copies into an empty database only`,
      ExitCode.ALREADY_INITIALIZED,
    );
  }
}

/** Runs a PostgreSQL step, turning driver errors into one-line failures (never a password). */
async function postgresStep<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof CliFailure) throw error;
    if (error instanceof IncompatiblePostgresSchemaError) {
      throw new CliFailure(error.message, ExitCode.FAILURE, 'INCOMPATIBLE_SCHEMA');
    }
    if (error instanceof SQL.SQLError) {
      throw new CliFailure(`PostgreSQL: ${error.message}`);
    }
    throw error;
  }
}

/** A private directory for the read-back copy (sealed values only, still: 0700, removed). */
function scratchDirectory(): string {
  return mkdtempSync(join(tmpdir(), 'secryn-migrate-storage-'));
}
