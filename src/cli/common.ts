/** What every CLI command shares: common flags, config loading, logger and output. */
import type { Database } from 'bun:sqlite';
import type { ArgsDef } from 'citty';
import { existsSync } from 'node:fs';
import { ConfigError, loadConfig, type LoadedConfig } from '../config/load.ts';
import { createLogger, type Logger } from '../log/logger.ts';
import type { Config } from '../config/schema.ts';
import { unavailableStorageBackend } from '../config/storage.ts';
import { openDatabase } from '../db/client.ts';
import { NotInitializedError } from '../instance.ts';
import { CliFailure, ExitCode } from './exit.ts';

/** Flags every command takes. */
export const commonArgs = {
  config: {
    type: 'string',
    description:
      'Path to the TOML configuration file (default: $SECRYN_CONFIG, else built-in defaults)',
    valueHint: 'path',
  },
} as const satisfies ArgsDef;

/** The `--json` flag of commands that print data. */
export const jsonArg = {
  json: { type: 'boolean', description: 'Print machine-readable JSON', default: false },
} as const satisfies ArgsDef;

/**
 * Loads the configuration named by `--config` (ConfigError propagates to the runner: exit 78),
 * refusing a storage backend this build cannot serve from unless the command handles it.
 * @throws CliFailure (exit 2) for an empty `--config`: loadConfig would fall back to
 *   `$SECRYN_CONFIG` or the built-in defaults, and `init`, `restore` or `master-key rotate`
 *   would then act on another instance than the one the caller named.
 */
export function loadCliConfig(
  args: { config?: string },
  opts: { postgres?: 'handled' } = {},
): LoadedConfig {
  if (args.config === '') throw new CliFailure('--config has an empty value', ExitCode.USAGE);
  const loaded = loadConfig({ path: args.config });
  // Commands that open the instance's storage refuse a backend this build cannot run on.
  // Client commands (they read only [server]) and `migrate` (it prepares a PostgreSQL
  // database) pass `postgres: 'handled'`.
  const unavailable = opts.postgres ? undefined : unavailableStorageBackend(loaded.config);
  if (unavailable) {
    const label = loaded.source.kind === 'file' ? `${loaded.source.path}: ` : '';
    throw new ConfigError([label + unavailable]);
  }
  return loaded;
}

/** The logger for a command, as configured. */
export function cliLogger(config: Config): Logger {
  return createLogger({ level: config.log.level, format: config.log.format });
}

/** Writes command output (not logs) to stdout. */
export function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

/**
 * `text` safe to print on a terminal: every control character (C0, DEL, C1) shown as `\xNN`.
 * For stored text such as key names, which older builds (or a hand-edited database) may hold
 * with escape sequences or newlines that would recolour the terminal or forge table rows.
 */
export function printable(text: string): string {
  return text.replace(/\p{Cc}/gu, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * Opens the instance's existing database with its configured storage settings, for commands
 * that work on the database without the keyring. @throws NotInitializedError when it is missing.
 */
export function openExistingDatabase(config: Config): Database {
  const path = config.storage.path;
  if (!existsSync(path)) throw new NotInitializedError(path);
  return openDatabase(path, {
    synchronous: config.storage.synchronous,
    busyTimeoutMs: config.storage.busy_timeout_ms,
    mustExist: true,
  });
}
