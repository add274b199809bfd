/**
 * How every command reads its options, through the real CLI: a value option must get a value
 * (a script's unset variable must not turn into "not given"), and what the contract says every
 * command takes (`--config`) is taken by every command.
 */
import { beforeAll, describe, expect, test } from 'bun:test';
import type { ArgsDef, CommandDef } from 'citty';
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
  }, 60_000);
});
