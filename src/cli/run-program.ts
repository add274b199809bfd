/**
 * `secryn run --vault V [--vault V2 …] [--skip-invalid] [--fallback PATH [--fallback-max-age
 * 24h]] -- COMMAND ARGS…`: starts COMMAND with the vaults' active secrets added to its
 * environment (later vaults win), forwards SIGINT/SIGTERM/SIGHUP to it, and exits with its
 * status (128+N when a signal N ended it; 127 when it cannot be started). The secrets go from
 * memory to the child's environment: never to disk (the fallback copy is sealed), never to a
 * command line. SECRYN_TOKEN is not passed on.
 */
import { defineCommand } from 'citty';
import { constants } from 'node:os';
import type { EnvEntry } from '../client/env-format.ts';
import { environmentOf } from '../client/environment.ts';
import { FallbackError, parseMaxAge, readFallback, writeFallback } from '../client/fallback.ts';
import { ClientError } from '../client/http.ts';
import { clientArgs, connect } from './client-common.ts';
import { CliFailure, ExitCode } from './exit.ts';

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Every `--vault` before `--` (citty keeps only the last; vault names may hold commas). */
function vaultFlags(rawArgs: readonly string[]): string[] {
  const values: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const arg = rawArgs[i]!;
    if (arg === '--') break;
    if (arg === '--vault') values.push(rawArgs[++i] ?? '');
    else if (arg.startsWith('--vault=')) values.push(arg.slice(8));
  }
  return values;
}

export const runProgramCommand = defineCommand({
  meta: {
    name: 'run',
    description:
      'Run a command with a vault’s secrets in its environment: secryn run --vault V -- CMD…',
  },
  args: {
    vault: {
      type: 'string',
      description: 'A vault id or PROJECT/VAULT (repeatable; later vaults override earlier ones)',
      valueHint: 'vault',
      required: true,
    },
    'skip-invalid': {
      type: 'boolean',
      description: 'Leave out secrets whose names are not environment variable names',
      default: false,
    },
    fallback: {
      type: 'string',
      description: 'Keep an encrypted copy here; use it when the server cannot be reached',
      valueHint: 'path',
    },
    'fallback-max-age': {
      type: 'string',
      description: 'Refuse a fallback copy older than this (e.g. 30m, 24h, 7d; default 24h)',
      valueHint: 'age',
    },
    ...clientArgs,
  },
  async run({ args, rawArgs }) {
    const separator = rawArgs.indexOf('--');
    const command = separator === -1 ? [] : rawArgs.slice(separator + 1);
    if (command.length === 0) {
      throw new CliFailure('no command: secryn run --vault V -- COMMAND [ARGS…]', ExitCode.USAGE);
    }
    const vaults = vaultFlags(rawArgs);
    if (vaults.some((v) => v === ''))
      throw new CliFailure('--vault has an empty value', ExitCode.USAGE);
    const maxAgeMs = parseMaxAge(args['fallback-max-age'] ?? '24h');
    if (maxAgeMs === undefined) {
      throw new CliFailure('--fallback-max-age must be like 30m, 24h or 7d', ExitCode.USAGE);
    }
    const client = connect(args);
    let entries: EnvEntry[];
    try {
      ({ entries } = await environmentOf(client, vaults, { skipInvalid: args['skip-invalid'] }));
      if (args.fallback) writeFallback(args.fallback, client, vaults, entries, Date.now());
    } catch (error) {
      const unreachable =
        error instanceof ClientError &&
        (error.exitCode === ExitCode.UNREACHABLE || error.exitCode === ExitCode.SERVER_UNAVAILABLE);
      if (!args.fallback || !unreachable) throw error;
      try {
        const copy = readFallback(args.fallback, client, vaults, maxAgeMs, Date.now());
        entries = copy.entries;
        process.stderr.write(
          `secryn: ${error.message}; using the fallback copy fetched at ${new Date(copy.fetchedAt).toISOString()}\n`,
        );
      } catch (fallbackError) {
        if (!(fallbackError instanceof FallbackError)) throw fallbackError;
        throw new CliFailure(
          `${error.message}, and ${fallbackError.message}`,
          ExitCode.FALLBACK_UNUSABLE,
        );
      }
    }
    const env: Record<string, string | undefined> = { ...process.env };
    for (const { name, value } of entries) env[name] = value;
    let child: ReturnType<typeof Bun.spawn> | undefined;
    // Installed before the child starts, so that no signal can fall between its start and them.
    // A signal before the child exists ends `run` as it would have ended the child.
    for (const signal of FORWARDED) {
      process.on(signal, () =>
        child ? child.kill(signal) : process.exit(128 + constants.signals[signal]),
      );
    }
    try {
      child = Bun.spawn(command, { env, stdin: 'inherit', stdout: 'inherit', stderr: 'inherit' });
    } catch (error) {
      throw new CliFailure(
        `cannot start ${command[0]}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
        127,
      );
    }
    const status = await child.exited;
    const signal = child.signalCode;
    process.exit(
      signal ? 128 + (constants.signals[signal as keyof typeof constants.signals] ?? 0) : status,
    );
  },
});
