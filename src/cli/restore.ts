/** `secryn restore <file>`. */
import { defineCommand } from 'citty';
import { resolve } from 'node:path';
import { BackupError } from '../backup/backup.ts';
import { BackupIntegrityError, restoreFromFile, type RestoreResult } from '../backup/restore.ts';
import { PostgresNotEmptyError, restoreIntoPostgres } from '../backup/postgres.ts';
import { urlWithoutPassword } from '../db/postgres/copy.ts';
import { systemClock } from '../clock.ts';
import { cliLogger, commonArgs, jsonArg, loadCliConfig, print } from './common.ts';
import { CliFailure, ExitCode } from './exit.ts';

/**
 * `secryn restore <file>`: replaces the database with a backup sealed with the configured master
 * key (decrypted first with `--identity` when it is age-encrypted), keeping the replaced database beside it (as it was, with its -wal/-shm, if SQLite cannot
 * read it). The server must be stopped first. A backup that fails its integrity check (keyring,
 * API key MACs, audit chain) is refused with exit 65 before anything is replaced. The restored
 * database gets the replaced one's owner and mode. On `backend = "postgres"` the backup (from
 * either backend) goes, after the same verification, into an empty PostgreSQL database in one
 * transaction; a database that holds Secryn rows is refused (exit 4) and left as it was.
 */
export const restoreCommand = defineCommand({
  meta: { name: 'restore', description: 'Replace the database with a backup (server stopped)' },
  args: {
    ...commonArgs,
    ...jsonArg,
    file: { type: 'positional', description: 'A file written by `secryn backup`', required: true },
    identity: {
      type: 'string',
      description: 'age identity file (from age-keygen) for a backup encrypted with --encrypt-to',
      valueHint: 'PATH',
    },
  },
  async run({ args }) {
    const { config } = loadCliConfig(args, { postgres: 'handled' });
    try {
      if (config.storage.backend === 'postgres') {
        const result = await restoreIntoPostgres(config, resolve(args.file), {
          env: process.env,
          clock: systemClock,
          identityFile: args.identity === undefined ? undefined : resolve(args.identity),
        });
        const rows = result.tables.reduce((sum, t) => sum + t.rows, 0);
        const url = urlWithoutPassword(config.storage.url!);
        if (args.json) {
          print(JSON.stringify({ restored: result.restored.path, into: url, rows }));
          return;
        }
        print(
          `restored ${url} from ${result.restored.path} (${result.tables.length} tables, ${rows} ` +
            'rows): verified on the backup and again as PostgreSQL holds it',
        );
        return;
      }
      const result = await restoreFromFile(config, resolve(args.file), {
        env: process.env,
        clock: systemClock,
        logger: cliLogger(config),
        identityFile: args.identity === undefined ? undefined : resolve(args.identity),
      });
      if (args.json) {
        print(
          JSON.stringify({
            restored: result.restored.path,
            previous: result.previous,
            previous_files: result.previousFiles,
            previous_unreadable: result.previousUnreadable,
          }),
        );
        return;
      }
      print(`restored ${config.storage.path} from ${result.restored.path}`);
      const kept = describePrevious(result);
      if (kept) print(kept);
    } catch (error) {
      if (error instanceof BackupIntegrityError)
        throw new CliFailure(error.message, ExitCode.INTEGRITY);
      if (error instanceof PostgresNotEmptyError)
        throw new CliFailure(error.message, ExitCode.ALREADY_INITIALIZED);
      if (error instanceof BackupError) {
        throw new CliFailure(error.message, error.busy ? ExitCode.DATABASE_BUSY : ExitCode.FAILURE);
      }
      throw error;
    }
  },
});

/** The line that tells the operator where the replaced database went, if there was one. */
function describePrevious(result: RestoreResult): string | undefined {
  const previous = result.previous;
  if (previous === null) return undefined;
  if (result.previousUnreadable === null) {
    return `the replaced database is kept at ${previous}; remove it once you are sure`;
  }
  const companions = result.previousFiles
    .filter((file) => file !== previous)
    .map((file) => file.slice(previous.length));
  return (
    `the replaced database could not be read (${result.previousUnreadable}); it is kept as it ` +
    `was at ${previous}${companions.length > 0 ? ` (with its ${companions.join(' and ')})` : ''}`
  );
}
