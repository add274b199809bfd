/**
 * `secryn run --vault V [--vault V2 …] [--skip-invalid] [--fallback PATH [--fallback-max-age
 * 24h]] -- COMMAND ARGS…`: starts COMMAND with the vaults' active secrets added to its
 * environment (later vaults win), forwards SIGINT/SIGTERM/SIGHUP to it, and exits with its
 * status (128+N when a signal N ended it; 127 when it cannot be started). The secrets go from
 * memory to the child's environment: never to disk (the fallback copy is sealed), never to a
 * command line. SECRYN_TOKEN is not passed on.
 *
 * `--watch [--on-change-signal SIG]`: follows the vaults' changes on the event stream
 * (src/client/watch.ts) and, when a secret changed, refetches them and restarts the command
 * (SIGTERM, wait, start again with the new environment), or sends it SIG instead — the command
 * then keeps its old environment, so that mode is for programs that re-read their secrets
 * themselves. A refetch that fails leaves the command running, and says so on stderr.
 */
import { defineCommand } from 'citty';
import { constants } from 'node:os';
import type { EnvEntry } from '../client/env-format.ts';
import { environmentOf } from '../client/environment.ts';
import { FallbackError, parseMaxAge, readFallback, writeFallback } from '../client/fallback.ts';
import { ClientError, type SecrynClient } from '../client/http.ts';
import { resolveVault } from '../client/vaults.ts';
import { ChangeBatcher, watchVaults } from '../client/watch.ts';
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
    watch: {
      type: 'boolean',
      description: 'Restart the command when a secret of the vaults changes',
      default: false,
    },
    'on-change-signal': {
      type: 'string',
      description:
        'With --watch: send this signal (e.g. HUP) instead of restarting; the command keeps its old environment',
      valueHint: 'signal',
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
    const changeSignal = signalOf(args['on-change-signal']);
    if (changeSignal !== undefined && !args.watch) {
      throw new CliFailure('--on-change-signal needs --watch', ExitCode.USAGE);
    }
    const client = connect(args);
    let entries: EnvEntry[];
    let watch: Watching | undefined;
    try {
      if (args.watch) watch = await startWatching(client, vaults);
      ({ entries } = await environmentOf(client, watch?.ids ?? vaults, {
        skipInvalid: args['skip-invalid'],
      }));
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
    const envOf = (list: EnvEntry[]) => {
      const env: Record<string, string | undefined> = { ...process.env };
      for (const { name, value } of list) env[name] = value;
      return env;
    };
    let child: ReturnType<typeof Bun.spawn> | undefined;
    // Installed before the child starts, so that no signal can fall between its start and them.
    // A signal before the child exists ends `run` as it would have ended the child.
    /** A SIGINT/SIGTERM arrived: a restart under way must not start the command again. */
    let stopping = false;
    for (const signal of FORWARDED) {
      process.on(signal, () => {
        if (signal !== 'SIGHUP') stopping = true;
        if (child) child.kill(signal);
        else process.exit(128 + constants.signals[signal]);
      });
    }
    const start = (list: EnvEntry[]) => {
      try {
        return Bun.spawn(command, {
          env: envOf(list),
          stdin: 'inherit',
          stdout: 'inherit',
          stderr: 'inherit',
        });
      } catch (error) {
        throw new CliFailure(
          `cannot start ${command[0]}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
          127,
        );
      }
    };
    child = start(entries);
    /** Set while a restart replaces the child: its exit is not `run`'s. */
    let restarting: Promise<void> | undefined;
    if (watch) {
      let current = fingerprint(entries);
      const batcher = new ChangeBatcher(async () => {
        let next: EnvEntry[];
        try {
          ({ entries: next } = await environmentOf(client, watch.ids, {
            skipInvalid: args['skip-invalid'],
          }));
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          process.stderr.write(
            `secryn: a secret changed but refetching failed (${message}); the command keeps running with the previous secrets\n`,
          );
          return;
        }
        if (fingerprint(next) === current) return; // metadata only: nothing the command sees
        current = fingerprint(next);
        if (args.fallback) writeFallback(args.fallback, client, vaults, next, Date.now());
        if (changeSignal !== undefined) {
          process.stderr.write(`secryn: secrets changed; sending ${changeSignal}\n`);
          child!.kill(changeSignal);
          return;
        }
        process.stderr.write('secryn: secrets changed; restarting the command\n');
        const old = child!;
        restarting = (async () => {
          old.kill('SIGTERM');
          const killer = setTimeout(() => old.kill('SIGKILL'), STOP_GRACE_MS);
          await old.exited;
          clearTimeout(killer);
          if (!stopping) child = start(next);
        })();
        await restarting;
        restarting = undefined;
      });
      watch.attach(() => batcher.notify());
    }
    // The child's exit is run's, unless a restart replaced it.
    let status: number;
    for (;;) {
      const running: ReturnType<typeof Bun.spawn> = child;
      status = await running.exited;
      if (restarting) await restarting.catch(() => {});
      if (child === running) break;
    }
    watch?.stop();
    const signal = child.signalCode;
    process.exit(
      signal ? 128 + (constants.signals[signal as keyof typeof constants.signals] ?? 0) : status,
    );
  },
});

/** How long a restarted command has to exit after SIGTERM before it is killed. */
const STOP_GRACE_MS = 10_000;

/** `--on-change-signal`: `HUP` or `SIGHUP` (any signal the OS names), as `SIGHUP`. */
function signalOf(value: string | undefined): NodeJS.Signals | undefined {
  if (value === undefined || value === '') return undefined;
  const name = (value.toUpperCase().startsWith('SIG') ? value : `SIG${value}`).toUpperCase();
  if (!(name in constants.signals)) {
    throw new CliFailure(
      `--on-change-signal must be a signal name such as HUP or USR1, not ${JSON.stringify(value.slice(0, 40))}`,
      ExitCode.USAGE,
    );
  }
  return name as NodeJS.Signals;
}

/** The environment a command sees, as one comparable string. */
function fingerprint(entries: readonly EnvEntry[]): string {
  return JSON.stringify([...entries].sort((a, b) => (a.name < b.name ? -1 : 1)));
}

/** A subscription opened before the first fetch, so that no change falls between the two. */
type Watching = { ids: string[]; attach(onChange: () => void): void; stop(): void };

async function startWatching(client: SecrynClient, refs: readonly string[]): Promise<Watching> {
  const ids = await Promise.all(refs.map((ref) => resolveVault(client, ref)));
  // Changes before the command starts are in the first fetch; later ones reach `onChange`.
  let onChange: (() => void) | undefined;
  // A change while the first fetch runs may or may not be in it: handled once attached.
  let missed = false;
  const watcher = watchVaults(client, ids, {
    onChange: () => (onChange ? onChange() : (missed = true)),
    onNotice: (message) => process.stderr.write(`secryn: ${message}\n`),
  });
  // The command is not `run`'s to end over this: it goes on with the secrets it has.
  void watcher.gaveUp.then((error) =>
    process.stderr.write(
      `secryn: no longer watching for changes: ${error.message}; the command keeps running\n`,
    ),
  );
  // Wait for the stream before the first fetch; not forever (it keeps trying in the background).
  await Promise.race([watcher.ready, Bun.sleep(5000)]);
  return {
    ids,
    attach: (handler) => {
      onChange = handler;
      if (missed) handler();
    },
    stop: () => watcher.stop(),
  };
}
