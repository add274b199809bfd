import type { ArgsDef } from 'citty';
import { loadConfig, type LoadedConfig } from '../config/load.ts';
import { createLogger, type Logger } from '../log/logger.ts';
import type { Config } from '../config/schema.ts';

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

/** Loads the configuration named by `--config` (ConfigError propagates to the runner: exit 78). */
export function loadCliConfig(args: { config?: string }): LoadedConfig {
  return loadConfig({ path: args.config });
}

/** The logger for a command, as configured. */
export function cliLogger(config: Config): Logger {
  return createLogger({ level: config.log.level, format: config.log.format });
}

/** Writes command output (not logs) to stdout. */
export function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}
