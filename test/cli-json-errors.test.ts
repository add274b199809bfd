/*
 * Every command that takes --json also fails in JSON: one `{"error":{"code","message"}}` line on
 * stderr, nothing on stdout, the same exit status as without --json. And every subcommand's
 * usage line names the whole command (`secryn keys create …`). The command tree is walked, so
 * a new command is covered without editing this file.
 */
import { describe, expect, test } from 'bun:test';
import type { ArgsDef, CommandDef } from 'citty';
import { join } from 'node:path';
import { rootCommand } from '../src/cli/root.ts';
import { runCli, tempDir, writeConfig } from './harness.ts';

type Leaf = { path: string[]; args: ArgsDef };

async function resolve<T>(value: T | (() => T | Promise<T>) | Promise<T> | undefined) {
  return typeof value === 'function' ? await (value as () => T | Promise<T>)() : await value;
}

async function leaves(command: CommandDef<ArgsDef>, path: string[] = []): Promise<Leaf[]> {
  const subCommands = (await resolve(command.subCommands)) ?? {};
  if (Object.keys(subCommands).length === 0)
    return [{ path, args: (await resolve(command.args)) ?? {} }];
  const found: Leaf[] = [];
  for (const [name, sub] of Object.entries(subCommands))
    found.push(...(await leaves((await resolve(sub)) as CommandDef<ArgsDef>, [...path, name])));
  return found;
}

const all = await leaves(rootCommand as CommandDef<ArgsDef>);
// `version` takes --json and --config, but reads no configuration: it cannot fail that way.
const withJson = all.filter((leaf) => 'json' in leaf.args && leaf.path.join(' ') !== 'version');

/**
 * Values for the arguments a command requires (positionals, required options), so that it gets
 * past argument parsing to loading its configuration. `--role reader` is a role that exists.
 */
function requiredArgs(leaf: Leaf): string[] {
  return Object.entries(leaf.args).flatMap(([name, def]) => {
    if (def.type === 'positional') return def.required === false ? [] : ['placeholder'];
    if (!('required' in def) || def.required !== true) return [];
    return [`--${name}`, name === 'role' ? 'reader' : 'placeholder'];
  });
}

function expectJsonError(result: { stdout: string; stderr: string }, code: string) {
  expect(result.stdout).toBe('');
  const lines = result.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  const body = JSON.parse(lines[0]!) as { error: { code: string; message: string } };
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  expect(body.error.message.length).toBeGreaterThan(0);
}

describe('--json failures are JSON', () => {
  test('the walk finds the commands that print data', () => {
    const names = withJson.map((leaf) => leaf.path.join(' '));
    for (const expected of ['init', 'keys create', 'keys list', 'master-key status', 'backup'])
      expect(names).toContain(expected);
  });

  test.each(withJson.map((leaf) => [leaf.path.join(' '), leaf] as const))(
    'secryn %s --json with an unusable config: exit 78, a JSON error',
    async (_name, leaf) => {
      using dir = tempDir();
      const missing = join(dir.path, 'missing.toml');
      const args = [...leaf.path, ...requiredArgs(leaf), '--config', missing];
      const human = await runCli(args);
      expect(human.exitCode).toBe(78);
      const json = await runCli([...args, '--json']);
      expect(json.exitCode).toBe(78);
      expectJsonError(json, 'CONFIG_INVALID');
      expect(JSON.parse(json.stderr).error.message).toContain('missing.toml');
    },
  );

  test('no instance yet, an unknown option, a bad option value: same exits, JSON errors', async () => {
    using dir = tempDir();
    const config = writeConfig(dir.path);
    const notInitialized = await runCli(['keys', 'list', '--json', '--config', config]);
    expect(notInitialized.exitCode).toBe(3);
    expectJsonError(notInitialized, 'NOT_INITIALIZED');
    const unknown = await runCli(['keys', 'list', '--json', '--frobnicate']);
    expect(unknown.exitCode).toBe(2);
    expectJsonError(unknown, 'USAGE');
    const badRole = await runCli([
      ...['keys', 'create', '--json', '--name', 'x', '--role', 'emperor', '--config', config],
    ]);
    expect(badRole.exitCode).toBe(2);
    expectJsonError(badRole, 'USAGE');
    // Without --json, the same failure stays one human line.
    const human = await runCli(['keys', 'list', '--config', config]);
    expect(human.exitCode).toBe(3);
    expect(human.stderr).toMatch(/^secryn: /);
  });
});

describe('usage lines name the whole command', () => {
  test.each(all.filter((leaf) => leaf.path.length > 1).map((leaf) => [leaf.path.join(' ')]))(
    'secryn %s --help',
    async (name) => {
      const result = await runCli([...name.split(' '), '--help']);
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toContain(`USAGE secryn ${name} `);
    },
  );
});
