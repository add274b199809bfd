/** Runs the CLI: strict flags, one line per error, exit codes. */
import { renderUsage, runCommand, type ArgsDef, type CommandDef } from 'citty';
import { ConfigError } from '../config/load.ts';
import { AppError } from '../errors.ts';
import { MasterKeyError, type MasterKeyFailure } from '../crypto/errors.ts';
import { IncompatibleSchemaError } from '../db/migrate.ts';
import { isDatabaseBusy } from '../db/write-lock.ts';
import { AlreadyInitializedError, NotInitializedError } from '../instance.ts';
import { KeyringError, MasterKeyMismatchError, type KeyringFailure } from '../keyring/errors.ts';
import { CliFailure, ExitCode } from './exit.ts';

type AnyCommand = CommandDef<ArgsDef>;

/**
 * Runs the CLI and exits. Unlike citty's `runMain`, it rejects unknown flags, prints exactly
 * one line for a usage error (exit 2) and for a failure, prints colours only on a TTY without
 * `NO_COLOR`, and maps known failures to their exit codes (config errors: 78).
 */
export async function runCli(root: AnyCommand, rawArgs: string[]): Promise<never> {
  const exit = (code: number): never => process.exit(code);
  const color = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
  try {
    const chain = await resolveChain(root, rawArgs);
    const target = chain.commands.at(-1)!;
    // Only before `--`: what follows belongs to another program (`secryn run -- cmd --help`).
    const own = rawArgs.includes('--') ? rawArgs.slice(0, rawArgs.indexOf('--')) : rawArgs;
    if (
      own.includes('--help') ||
      own.includes('-h') ||
      (chain.commands.length === 1 && rawArgs.length === 0)
    ) {
      // The parent passed to citty carries the whole path, so that a subcommand's usage reads
      // `secryn keys create …` (citty would print the immediate parent's name only: `keys create`).
      const parentPath = ['secryn', ...chain.names.slice(0, -1)].join(' ');
      const usage = await renderUsage(
        target,
        chain.commands.length > 1 ? { meta: { name: parentPath } } : undefined,
      );
      process.stdout.write((color ? usage : stripAnsi(usage)) + '\n');
      return exit(ExitCode.OK);
    }
    if (rawArgs.length === 1 && (rawArgs[0] === '--version' || rawArgs[0] === '-v')) {
      const meta = await resolve(root.meta);
      process.stdout.write(`${meta?.version ?? ''}\n`);
      return exit(ExitCode.OK);
    }
    if (chain.unknownCommand !== undefined) {
      throw new UsageError(`unknown command "${chain.unknownCommand}" (see: secryn --help)`);
    }
    if (chain.needsSubcommand) throw new UsageError(await missingSubcommand(chain));
    const args = await resolve(target.args);
    const options = optionTable(args ?? {});
    const unknown = unknownFlag(chain.rest, options);
    if (unknown) {
      throw new UsageError(
        `unknown option ${unknown} for "secryn ${chain.names.join(' ')}" (see --help)`,
      );
    }
    const valueless = optionWithoutValue(chain.rest, options);
    if (valueless) {
      throw new UsageError(
        `${valueless.option} ${valueless.empty ? 'has an empty value' : 'needs a value'}`,
      );
    }
    await runCommand(target, { rawArgs: chain.rest });
    return exit(ExitCode.OK);
  } catch (error) {
    const failure = describeFailure(error);
    // With --json, the failure is one JSON object on stderr (stdout stays empty, so a script
    // parsing stdout never mistakes an error for data); the exit status is the same either way.
    if (wantsJson(rawArgs)) {
      const { code, message } = failure;
      process.stderr.write(JSON.stringify({ error: { code, message } }) + '\n');
    } else {
      for (const line of failure.lines) process.stderr.write(line + '\n');
    }
    if (process.env.SECRYN_DEBUG && failure.stack) process.stderr.write(failure.stack + '\n');
    return exit(failure.exitCode);
  }
}

/** `--json` given before any `--` (its value forms `--json=false` / `--no-json` turn it off). */
function wantsJson(rawArgs: string[]): boolean {
  let json = false;
  for (const arg of rawArgs) {
    if (arg === '--') break;
    if (arg === '--json' || arg === '--json=true') json = true;
    if (arg === '--no-json' || arg === '--json=false') json = false;
  }
  return json;
}

class UsageError extends Error {}

const MASTER_KEY_EXIT_CODES: Record<MasterKeyFailure, number> = {
  missing: ExitCode.MASTER_KEY_MISSING,
  bad_permissions: ExitCode.MASTER_KEY_PERMISSIONS,
  invalid: ExitCode.MASTER_KEY_INVALID,
  unreadable: ExitCode.MASTER_KEY_UNREADABLE,
  exists: ExitCode.ALREADY_INITIALIZED,
};

const KEYRING_EXIT_CODES: Record<KeyringFailure, number> = {
  not_initialized: ExitCode.KEYRING_UNUSABLE,
  damaged: ExitCode.KEYRING_UNUSABLE,
  conflict: ExitCode.FAILURE,
  usage: ExitCode.USAGE,
};

/** A failed command as it is reported: exit status, a stable code, the message and its lines. */
type Failure = {
  exitCode: number;
  /** Stable, for scripts: the exit status's name (`MASTER_KEY_MISSING`), or an API error code. */
  code: string;
  message: string;
  /** The human-readable lines (usually `secryn: <message>`). */
  lines: string[];
  stack?: string;
};

// 65 is INTEGRITY: `audit verify`'s broken chain and `restore`'s refused backup alike.
const EXIT_CODE_NAMES = new Map<number, string>(
  Object.entries(ExitCode).map(([name, code]) => [code, name] as [number, string]),
);

function failure(exitCode: number, message: string, code?: string): Failure {
  return {
    exitCode,
    code: code ?? EXIT_CODE_NAMES.get(exitCode) ?? 'FAILURE',
    message,
    lines: [`secryn: ${message}`],
  };
}

function describeFailure(error: unknown): Failure {
  if (error instanceof ConfigError) {
    return {
      ...failure(ExitCode.CONFIG, error.lines.join('; '), 'CONFIG_INVALID'),
      lines: error.lines,
    };
  }
  if (error instanceof UsageError) return failure(ExitCode.USAGE, error.message);
  if (error instanceof Error && error.name === 'CLIError') {
    return failure(ExitCode.USAGE, stripAnsi(error.message));
  }
  if (error instanceof CliFailure) return failure(error.exitCode, error.message, error.code);
  if (error instanceof IncompatibleSchemaError) {
    return failure(ExitCode.FAILURE, error.message, 'INCOMPATIBLE_SCHEMA');
  }
  if (error instanceof NotInitializedError) return failure(ExitCode.NOT_INITIALIZED, error.message);
  if (error instanceof AlreadyInitializedError) {
    return failure(ExitCode.ALREADY_INITIALIZED, error.message);
  }
  if (error instanceof MasterKeyError) {
    return failure(MASTER_KEY_EXIT_CODES[error.reason], error.message);
  }
  if (error instanceof MasterKeyMismatchError) {
    return failure(ExitCode.MASTER_KEY_MISMATCH, error.message);
  }
  if (error instanceof KeyringError)
    return failure(KEYRING_EXIT_CODES[error.reason], error.message);
  if (isDatabaseBusy(error)) {
    return failure(
      ExitCode.DATABASE_BUSY,
      'the database is locked by another process (a command or `secryn serve` holding its ' +
        'write lock longer than storage.busy_timeout_ms); run the command again',
    );
  }
  if (error instanceof AppError) {
    return failure(
      ExitCode.FAILURE,
      error.details?.reason ? `${error.message}: ${String(error.details.reason)}` : error.message,
      error.code,
    );
  }
  return {
    ...failure(
      ExitCode.FAILURE,
      `unexpected error: ${error instanceof Error ? error.message : String(error)}`,
      'UNEXPECTED',
    ),
    stack: error instanceof Error ? error.stack : undefined,
  };
}

type Chain = {
  commands: AnyCommand[];
  names: string[];
  rest: string[];
  unknownCommand?: string;
  needsSubcommand: boolean;
};

/**
 * The line for a command group reached without a subcommand: at the top (`secryn --bogus`, as
 * the top level takes no options but --help and --version) the option is what is wrong;
 * below (`secryn keys --json`), the missing subcommand, with the ones there are.
 */
async function missingSubcommand(chain: Chain): Promise<string> {
  const option = chain.rest.find((arg) => optionName(arg) !== undefined);
  if (chain.names.length === 0 && option !== undefined) {
    return `unknown option ${option.split('=')[0]} (see: secryn --help)`;
  }
  const path = ['secryn', ...chain.names].join(' ');
  const subCommands = Object.keys((await resolve(chain.commands.at(-1)!.subCommands)) ?? {});
  return `"${path}" needs a subcommand: ${subCommands.join(', ')} (see: ${path} --help)`;
}

/** Walks the subcommand path (commands take no flags before their subcommand). */
async function resolveChain(root: AnyCommand, rawArgs: string[]): Promise<Chain> {
  const commands: AnyCommand[] = [root];
  const names: string[] = [];
  let rest = rawArgs;
  for (;;) {
    const current = commands.at(-1)!;
    const subCommands = await resolve(current.subCommands);
    if (!subCommands || Object.keys(subCommands).length === 0) {
      return { commands, names, rest, needsSubcommand: false };
    }
    const index = rest.findIndex((arg) => !arg.startsWith('-'));
    const name = index === -1 ? undefined : rest[index];
    if (name === undefined) return { commands, names, rest, needsSubcommand: true };
    const next = subCommands[name];
    if (!next) return { commands, names, rest, unknownCommand: name, needsSubcommand: false };
    commands.push((await resolve(next)) as AnyCommand);
    names.push(name);
    rest = [...rest.slice(0, index), ...rest.slice(index + 1)];
  }
}

/** The spellings a command accepts (help flags are global), and which of them take a value. */
type OptionTable = { known: Set<string>; valueFlags: Set<string> };

function optionTable(args: ArgsDef): OptionTable {
  const known = new Set<string>(['help', 'h']);
  const valueFlags = new Set<string>();
  for (const [name, def] of Object.entries(args)) {
    if (def.type === 'positional') continue;
    const alias = 'alias' in def ? (def.alias as string | string[] | undefined) : undefined;
    const spellings = [name, kebab(name), camel(name), ...toArray(alias)];
    for (const spelling of spellings) {
      known.add(spelling);
      if (def.type === 'boolean') known.add(`no-${spelling}`);
      if (def.type === 'string' || def.type === 'enum') valueFlags.add(spelling);
    }
  }
  return { known, valueFlags };
}

/** The name of an option argument (`--name=x` and `-n` included), or undefined for a plain word. */
function optionName(arg: string): string | undefined {
  if (!arg.startsWith('-') || arg === '-') return undefined;
  return arg.replace(/^--?/, '').split('=')[0]!;
}

/** The first flag in `rawArgs` that the command does not declare. */
function unknownFlag(rawArgs: string[], { known, valueFlags }: OptionTable): string | undefined {
  for (let i = 0; i < rawArgs.length; i++) {
    const arg = rawArgs[i]!;
    if (arg === '--') break;
    const name = optionName(arg);
    if (name === undefined) continue;
    if (!known.has(name)) return `--${name}`.replace(/^--(.)$/, '-$1');
    if (valueFlags.has(name) && !arg.includes('=')) i++;
  }
  return undefined;
}

/**
 * The first value option (`--name`) given without a usable value: last on the line, followed by
 * another option of the command (`--name --role reader`), or empty (`--config ""`, `--config=`).
 * citty reads the first as `""`, and every command takes `""` for "not given" — a key that never
 * expires, `$SECRYN_CONFIG` or the built-in defaults — so a script whose variable is unset would
 * act on the wrong thing; the second would take `--role` for the name.
 */
function optionWithoutValue(
  rawArgs: string[],
  { known, valueFlags }: OptionTable,
): { option: string; empty: boolean } | undefined {
  for (let i = 0; i < rawArgs.length; i++) {
    const arg = rawArgs[i]!;
    if (arg === '--') break;
    const name = optionName(arg);
    if (name === undefined || !valueFlags.has(name)) continue;
    const [option, ...inline] = arg.split('=');
    if (inline.length > 0) {
      if (inline.join('=') === '') return { option: option!, empty: true };
      continue;
    }
    const value = rawArgs[i + 1];
    const valueName = value === undefined ? undefined : optionName(value);
    if (value === undefined || value === '--' || (valueName !== undefined && known.has(valueName)))
      return { option: arg, empty: false };
    if (value === '') return { option: arg, empty: true };
    i++;
  }
  return undefined;
}

async function resolve<T>(
  value: T | (() => T) | (() => Promise<T>) | Promise<T> | undefined,
): Promise<T | undefined> {
  return typeof value === 'function' ? await (value as () => T | Promise<T>)() : await value;
}

const toArray = (value: string | string[] | undefined) =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];
const kebab = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
// eslint-disable-next-line no-control-regex
const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');
