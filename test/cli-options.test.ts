/**
 * How every command reads its options, through the real CLI: a value option must get a value
 * (a script's unset variable must not turn into "not given"), and what the contract says every
 * command takes (`--config`) is taken by every command.
 */
import { beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ArgsDef, CommandDef } from 'citty';
import { loadCliConfig } from '../src/cli/common.ts';
import { CliFailure } from '../src/cli/exit.ts';
import { rootCommand } from '../src/cli/root.ts';
import { runCli, tempDir, writeConfig } from './harness.ts';

type AnyCommand = CommandDef<ArgsDef>;

async function resolved<T>(value: T | (() => T | Promise<T>) | Promise<T> | undefined) {
  return typeof value === 'function' ? await (value as () => T | Promise<T>)() : await value;
}

/** Every leaf command with its path (`['keys', 'create']`) and its declared arguments. */
async function leafCommands(
  command: AnyCommand = rootCommand as AnyCommand,
  path: string[] = [],
): Promise<{ path: string[]; args: ArgsDef }[]> {
  const subCommands = await resolved(command.subCommands);
  if (!subCommands) return [{ path, args: (await resolved(command.args)) ?? {} }];
  const leaves = [];
  for (const [name, sub] of Object.entries(subCommands)) {
    leaves.push(...(await leafCommands((await resolved(sub)) as AnyCommand, [...path, name])));
  }
  return leaves;
}

/** The value (string or enum) options of a command. */
const valueOptions = (args: ArgsDef) =>
  Object.entries(args)
    .filter(([, def]) => def.type === 'string' || def.type === 'enum')
    .map(([name]) => name);

test('every command lists --config in its help (docs/api.md §9: every command takes it)', async () => {
  for (const { path } of await leafCommands()) {
    const help = await runCli([...path, '--help']);
    expect(`${path.join(' ')}: ${help.exitCode} ${help.stdout.includes('--config')}`).toBe(
      `${path.join(' ')}: 0 true`,
    );
  }
}, 30_000);

describe('value options', () => {
  const dir = tempDir();
  let config: string;

  beforeAll(async () => {
    config = writeConfig(dir.path);
    expect((await runCli(['init', '--config', config])).exitCode).toBe(0);
  });

  const keyNames = async () => {
    const list = await runCli(['keys', 'list', '--config', config, '--json']);
    expect(list.exitCode).toBe(0);
    return (JSON.parse(list.stdout) as { name: string }[]).map((key) => key.name);
  };

  test('keys create with a trailing --expires-in or --name is refused and creates nothing', async () => {
    const cases = [
      [['--name', 'endexp', '--role', 'reader', '--expires-in'], '--expires-in'],
      [['--role', 'reader', '--name'], '--name'],
      [['--name', '--role', 'reader'], '--name'],
    ] as const;
    for (const [args, option] of cases) {
      const result = await runCli(['keys', 'create', '--config', config, ...args]);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toBe(`secryn: ${option} needs a value\n`);
      expect(result.stdout).toBe('');
    }
    expect(await keyNames()).toEqual(['initial admin']);
  });

  test('every value option of every command refuses a missing value with one line, exit 2', async () => {
    const leaves = await leafCommands();
    const checked: string[] = [];
    for (const { path, args } of leaves) {
      for (const option of valueOptions(args)) {
        // Last on the line: citty would read it as boolean true, then "".
        const trailing = await runCli([...path, `--${option}`]);
        expect(`${path.join(' ')}: ${trailing.exitCode} ${trailing.stderr}`).toBe(
          `${path.join(' ')}: 2 secryn: --${option} needs a value\n`,
        );
        checked.push(`${path.join(' ')} --${option}`);
      }
    }
    // The walk reached the commands the reviewer named.
    expect(checked).toEqual(
      expect.arrayContaining(['init --config', 'keys create --name', 'keys create --expires-in']),
    );
  }, 240_000); // one process per option of every command (client commands included)

  test('every value option of every command refuses an empty value', async () => {
    for (const { path, args } of await leafCommands()) {
      for (const option of valueOptions(args)) {
        for (const spelling of [[`--${option}`, ''], [`--${option}=`]]) {
          const result = await runCli([...path, ...spelling]);
          expect(`${path.join(' ')}: ${result.exitCode} ${result.stderr}`).toBe(
            `${path.join(' ')}: 2 secryn: --${option} has an empty value\n`,
          );
        }
      }
    }
  }, 240_000);
});

describe('--config without a value never falls back to $SECRYN_CONFIG or the defaults', () => {
  test('init --config (trailing, empty or `=`) creates nothing, here or at $SECRYN_CONFIG', async () => {
    using cwd = tempDir();
    using other = tempDir();
    const envConfig = writeConfig(other.path);
    for (const args of [['--config'], ['--config', ''], ['--config=']]) {
      const result = await runCli(['init', ...args], {
        cwd: cwd.path,
        env: { SECRYN_CONFIG: envConfig },
      });
      expect(result.exitCode).toBe(2);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stdout).toBe('');
    }
    // Without SECRYN_CONFIG the built-in defaults would have put ./data here.
    const bare = await runCli(['init', '--config'], { cwd: cwd.path });
    expect(bare.exitCode).toBe(2);
    expect(readdirSync(cwd.path)).toEqual([]);
    expect(existsSync(join(other.path, 'data'))).toBe(false);
  });

  test('master-key rotate --config "" leaves the instance at $SECRYN_CONFIG alone', async () => {
    using dir = tempDir();
    const config = writeConfig(dir.path);
    expect((await runCli(['init', '--config', config])).exitCode).toBe(0);
    const keyFile = join(dir.path, 'data/master.key');
    const before = readFileSync(keyFile, 'utf8');
    const result = await runCli(['master-key', 'rotate', '--config', ''], {
      env: { SECRYN_CONFIG: config },
    });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toBe('secryn: --config has an empty value\n');
    expect(readFileSync(keyFile, 'utf8')).toBe(before);
  });

  test('loadCliConfig itself refuses an empty path (for commands run without runCli)', () => {
    const previous = process.env.SECRYN_CONFIG;
    process.env.SECRYN_CONFIG = '/nonexistent/secryn.toml';
    try {
      expect(() => loadCliConfig({ config: '' })).toThrow(
        new CliFailure('--config has an empty value', 2),
      );
    } finally {
      if (previous === undefined) delete process.env.SECRYN_CONFIG;
      else process.env.SECRYN_CONFIG = previous;
    }
  });
});
