/**
 * `secryn keys` and key names, through the real CLI: `keys create` applies the API's own name
 * rule, and `keys list` / `keys revoke` never print control characters from a stored name (a
 * database written by an older build may hold any).
 */
import { Database } from 'bun:sqlite';
import { beforeAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { runCli, tempDir, writeConfig } from './harness.ts';

// `create` runs with --json, so the refusal is a JSON error (test/cli-json-errors.test.ts).
const NAME_RULE = {
  error: {
    code: 'USAGE',
    message: '--name: Must be 1 to 100 characters without control characters',
  },
};
const EVIL = 'evil\x1b[31mred\nkey_fake  admin';

describe('secryn keys and key names', () => {
  const dir = tempDir();
  let config: string;

  beforeAll(async () => {
    config = writeConfig(dir.path);
    expect((await runCli(['init', '--config', config])).exitCode).toBe(0);
  });

  const create = (name: string) =>
    runCli(['keys', 'create', '--config', config, '--role', 'reader', '--name', name, '--json']);
  const listed = async () => {
    const list = await runCli(['keys', 'list', '--config', config, '--json']);
    return (JSON.parse(list.stdout) as { id: string; name: string }[]).map((k) => k.name);
  };

  test('create refuses what POST /v1/api-keys refuses, with the same message, and stores nothing', async () => {
    for (const name of ['x'.repeat(101), 'x'.repeat(500), EVIL, 'tab\there', 'del\x7f']) {
      const result = await create(name);
      expect(result.exitCode).toBe(2);
      expect(JSON.parse(result.stderr)).toEqual(NAME_RULE);
      expect(result.stdout).toBe('');
    }
    const empty = await create('');
    expect(empty.exitCode).toBe(2);
    expect(await listed()).toEqual(['initial admin']);
    const longest = await create('y'.repeat(100));
    expect(longest.exitCode).toBe(0);
    expect(await listed()).toEqual(['y'.repeat(100), 'initial admin']);
  });

  test('list and revoke print a stored name with control characters escaped, one row per key', async () => {
    const created = await create('plain');
    const { id } = JSON.parse(created.stdout) as { id: string };
    // What an older build let through: the name goes into the file as it is.
    const sqlite = new Database(join(dir.path, 'data/secryn.db'));
    sqlite.query('UPDATE api_keys SET name = ? WHERE id = ?').run(EVIL + '\u009b2J', id);
    sqlite.close();

    const table = await runCli(['keys', 'list', '--config', config]);
    expect(table.exitCode).toBe(0);
    expect(table.stdout).not.toMatch(/\p{Cc}(?<!\n)/u);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(1 + 3); // header + three keys: no forged row
    expect(lines.filter((line) => line.includes(id))).toEqual([
      expect.stringContaining('evil\\x1b[31mred\\x0akey_fake  admin\\x9b2J'),
    ]);
    const evilLine = lines.find((line) => line.includes(id))!;
    expect(evilLine.indexOf('reader')).toBe(lines[0]!.indexOf('ROLE')); // columns line up

    const revoked = await runCli(['keys', 'revoke', id, '--config', config]);
    expect(revoked.exitCode).toBe(0);
    expect(revoked.stdout).not.toMatch(/\p{Cc}(?<!\n)/u);
    expect(revoked.stdout).toContain('"evil\\x1b[31mred\\x0akey_fake  admin\\x9b2J"');
  }, 30_000);
});
