/**
 * Backups and restores of an instance stored in PostgreSQL, in the same portable format as
 * SQLite's (a SQLite file, optionally age-encrypted): a PostgreSQL backup restores into SQLite
 * and back. Rows move through the copy layer (src/db/postgres/copy.ts), never a second copier.
 */
import { SQL } from 'bun';
import type { Database } from 'bun:sqlite';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { commitLocalChange } from '../changes/index.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config/schema.ts';
import { createDb } from '../db/client.ts';
import { connectPostgres } from '../db/postgres/connect.ts';
import {
  copyPostgresToSqlite,
  copySqliteToPostgres,
  copyTableToPostgres,
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
import { forgetIntegrity, readIntegrityWith, registerIntegrity } from '../keyring/integrity.ts';
import { loadConfiguredMasterKey, type Env } from '../keyring/key-files.ts';
import { appendAuditEntry, localAuditEntry } from '../ledger/audit-record.ts';
import { decryptFile, isAgeFile, readIdentityFile } from './age.ts';
import { BackupError, createPrivateFile, inspectBackup, type BackupInfo } from './backup.ts';
import { tempBeside, writeCheckedBackup, type CheckedBackup } from './checked.ts';
import { BackupIntegrityError, refuseOtherMasterKey, verifyBackupIntegrity } from './restore.ts';

/** Restore into a PostgreSQL database that already holds Secryn rows: refused, nothing changed. */
export class PostgresNotEmptyError extends BackupError {
  override name = 'PostgresNotEmptyError';
}

/**
 * `secryn backup` on `backend = "postgres"`: every table is read from one REPEATABLE READ READ
 * ONLY snapshot into a private SQLite file beside `target` (row counts and digests equal on both
 * sides), which then goes the way of a SQLite backup ({@link writeCheckedBackup}): `VACUUM INTO`
 * a staging file, age-encrypted to `recipients` if any, read back and verified completely
 * (keyring, API key MACs, audit chain), renamed to `target` only then. The backup is recorded in
 * PostgreSQL's audit chain as `instance.backup` (as SQLite records it, after the snapshot); if
 * that fails, or the chain moved on meanwhile, no backup is kept. PostgreSQL is otherwise read
 * only.
 */
export async function createPostgresBackup(
  config: Config,
  target: string,
  options: { recipients: readonly string[]; clock: Clock; env: Env },
): Promise<CheckedBackup> {
  // Checked again when the backup is renamed into place; here before any work is done.
  if (existsSync(target))
    throw new BackupError(`${target} already exists; refusing to overwrite it`);
  if (!existsSync(dirname(target)))
    throw new BackupError(`directory ${dirname(target)} does not exist`);
  const sql = connectPostgres({ ...config.storage, pool_size: 1 }, options.env);
  const snapshotPath = tempBeside(target, 'postgres-snapshot');
  let snapshot: Database | undefined;
  let masterKey: Uint8Array | undefined;
  try {
    const pending = await postgresStep(() => pendingPostgresMigrationCount(sql));
    if (pending > 0) {
      throw new BackupError(
        "the PostgreSQL database is not at this build's schema; run `secryn migrate` first",
      );
    }
    createPrivateFile(snapshotPath);
    snapshot = createMigratedSqlite(snapshotPath, config.storage.busy_timeout_ms);
    const tables = schemaTableSpecs();
    const into = snapshot;
    const fromPostgres = await postgresStep(() =>
      sql.begin('ISOLATION LEVEL REPEATABLE READ READ ONLY', (tx) =>
        copyPostgresToSqlite(tx, into, tables),
      ),
    );
    refuseMismatch(
      digestMismatch(fromPostgres, digestSqlite(into, tables), ['PostgreSQL', 'the snapshot']),
    );
    if (fromPostgres.find((t) => t.table === 'instance')?.rows !== 1) {
      throw new BackupError(
        'the PostgreSQL database holds no Secryn instance; nothing was written',
      );
    }
    masterKey = loadConfiguredMasterKey(config, options.env).key;
    const key = masterKey;
    return await writeCheckedBackup(into, snapshotPath, target, {
      recipients: options.recipients,
      masterKey: key,
      config,
      record: () => recordBackup(sql, into, key, options.clock),
    });
  } finally {
    masterKey?.fill(0);
    if (snapshot) {
      forgetIntegrity(snapshot);
      snapshot.close();
    }
    for (const suffix of ['', '-wal', '-shm']) rmSync(snapshotPath + suffix, { force: true });
    await sql.close();
  }
}

/**
 * Appends `instance.backup` to the snapshot's copy of the audit chain (the ledger's own append,
 * keyed as on SQLite) and copies that entry into PostgreSQL, whose chain must still end where
 * the snapshot's did: the table is locked against other appenders while that is checked.
 */
async function recordBackup(
  sql: SQL,
  snapshot: Database,
  masterKey: Uint8Array,
  clock: Clock,
): Promise<void> {
  const audit = schemaTableSpecs().find((t) => t.name === 'audit_log')!;
  const head = chainHead(snapshot);
  registerIntegrity(snapshot, readIntegrityWith(snapshot, masterKey));
  snapshot
    .transaction(() =>
      appendAuditEntry(
        createDb(snapshot),
        clock,
        localAuditEntry('instance.backup', { type: 'instance', id: null }),
      ),
    )
    .immediate();
  await postgresStep(() =>
    sql.begin(async (tx) => {
      await tx.unsafe('LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE');
      const [now] = await tx.unsafe(
        'SELECT seq::text AS seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1',
      );
      if (
        (now?.seq ?? null) !== (head?.seq ?? null) ||
        (now?.hash ?? null) !== (head?.hash ?? null)
      ) {
        throw new BackupError(
          'the audit log changed while the backup was written, so it could not be recorded; ' +
            'nothing was kept: run the backup again',
        );
      }
      snapshot.run('BEGIN');
      try {
        await copyTableToPostgres(snapshot, tx, audit, { after: Number(head?.seq ?? 0) });
      } finally {
        snapshot.run('COMMIT');
      }
    }),
  );
}

/** The newest audit entry's sequence number (as text, exact) and hash, if there is one. */
function chainHead(sqlite: Database): { seq: string; hash: string } | undefined {
  const row = sqlite
    .query<
      { seq: string; hash: string },
      []
    >('SELECT CAST(seq AS TEXT) AS seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1')
    .get();
  return row ?? undefined;
}

/** What a restore into PostgreSQL did. */
export type PostgresRestoreResult = { restored: BackupInfo; tables: TableDigest[] };

/**
 * `secryn restore FILE` on `backend = "postgres"`: the backup (from either backend, decrypted
 * with `identityFile` if age-encrypted) is staged in a private directory and verified as a
 * SQLite restore verifies it (sealed with the configured master key, integrity, keyring, every
 * API key's MAC, the keyed audit chain; migrated if older), `instance.restore` is appended to
 * its chain, and it is copied into PostgreSQL in one transaction that also reads everything
 * back and verifies it again: the database ends up with the whole verified instance or with
 * nothing. Only into a database without Secryn rows ({@link PostgresNotEmptyError}):
 * replacing a live PostgreSQL instance is not something a restore does.
 */
export async function restoreIntoPostgres(
  config: Config,
  source: string,
  options: { env: Env; clock: Clock; identityFile?: string },
): Promise<PostgresRestoreResult> {
  const url = urlWithoutPassword(config.storage.url!);
  const sql = connectPostgres({ ...config.storage, pool_size: 1 }, options.env);
  // Private (0700): the staged backup holds only sealed values, but its metadata is readable.
  const scratch = mkdtempSync(join(tmpdir(), 'secryn-restore-'));
  try {
    await postgresStep(() => refuseNonEmpty(sql, url));
    const staged = join(scratch, 'restore.db');
    if (isAgeFile(source)) {
      if (options.identityFile === undefined) {
        throw new BackupError(
          `${source} is encrypted with age; pass --identity with the file of the key it was encrypted to`,
        );
      }
      await decryptFile(source, staged, readIdentityFile(options.identityFile));
    } else {
      copyFileSync(source, staged);
    }
    chmodSync(staged, 0o600);
    const info = inspectBackup(staged);
    const key = loadConfiguredMasterKey(config, options.env).key;
    try {
      refuseOtherMasterKey(info, key);
      verifyBackupIntegrity(staged, key, config);
      recordRestore(staged, key, config, options.clock);
    } finally {
      key.fill(0);
    }
    await postgresStep(() => runPostgresMigrations(sql));
    const tables = schemaTableSpecs();
    const fromBackup = await postgresStep(() =>
      sql.begin(async (tx) => {
        // The migration runner's lock: no migrate, migrate-storage or other restore meanwhile.
        await tx.unsafe(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
        await refuseNonEmpty(tx, url);
        const backup = createMigratedSqlite(staged, config.storage.busy_timeout_ms);
        let copied: TableDigest[];
        try {
          copied = await copySqliteToPostgres(backup, tx, tables);
        } finally {
          backup.close();
        }
        // What PostgreSQL now holds, read back into a private file and checked there: any
        // failure rolls the whole restore back.
        const readBackPath = join(scratch, 'read-back.db');
        const readBack = createMigratedSqlite(readBackPath, config.storage.busy_timeout_ms);
        let held: TableDigest[];
        try {
          held = await copyPostgresToSqlite(tx, readBack, tables);
        } finally {
          readBack.close();
        }
        refuseMismatch(digestMismatch(copied, held, ['the backup', 'PostgreSQL']));
        const key = loadConfiguredMasterKey(config, options.env).key;
        try {
          verifyBackupIntegrity(readBackPath, key, config);
        } finally {
          key.fill(0);
        }
        return copied;
      }),
    );
    return { restored: { ...info, path: source }, tables: fromBackup };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    await sql.close();
  }
}

/** Appends `instance.restore` to the staged backup's chain, as a SQLite restore records it. */
function recordRestore(path: string, masterKey: Uint8Array, config: Config, clock: Clock): void {
  const sqlite = createMigratedSqlite(path, config.storage.busy_timeout_ms);
  try {
    registerIntegrity(sqlite, readIntegrityWith(sqlite, masterKey));
    commitLocalChange(
      { sqlite, db: createDb(sqlite), clock },
      'instance.restore',
      { type: 'instance', id: null },
      () => undefined,
    );
  } finally {
    forgetIntegrity(sqlite);
    sqlite.close();
  }
}

/** A SQLite file at `path` (created if absent) with every migration of this build applied. */

async function refuseNonEmpty(sql: SQL, url: string): Promise<void> {
  const occupied = await postgresTablesWithRows(sql);
  if (occupied.length > 0) {
    throw new PostgresNotEmptyError(
      `${url} already holds Secryn data (${occupied.slice(0, 3).join(', ')}` +
        `${occupied.length > 3 ? ', …' : ''}); nothing was changed. A restore into PostgreSQL ` +
        'needs an empty database: create a new one and point storage.url at it',
    );
  }
}

function refuseMismatch(problem: string | undefined): void {
  if (problem) {
    throw new BackupIntegrityError(`the copy fails verification, nothing was kept: ${problem}`);
  }
}

/** Runs a PostgreSQL step, turning driver errors into one-line BackupErrors (never a password). */
async function postgresStep<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof IncompatiblePostgresSchemaError) throw new BackupError(error.message);
    if (error instanceof SQL.SQLError) throw new BackupError(`PostgreSQL: ${error.message}`);
    throw error;
  }
}
