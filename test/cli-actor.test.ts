/**
 * Who the CLI records as the actor of its actions, through the real CLI: the OS user the process
 * runs as, whatever $USER says (cron and systemd do not set it; anyone can set it to anything).
 */
import { Database } from 'bun:sqlite';
import { describe, expect, test } from 'bun:test';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { runCli, tempDir, writeConfig } from './harness.ts';

/** The name of this process's user as the system reports it, independently of the CLI. */
function osUserName(): string {
  const id = Bun.spawnSync(['id', '-un'], { env: {} });
  expect(id.exitCode).toBe(0);
  return id.stdout.toString().trim();
}

describe('the local actor of CLI actions', () => {
  test('is the OS user, with $USER unset or naming someone else', async () => {
    using dir = tempDir();
    const config = writeConfig(dir.path);
    const user = osUserName();
    expect(user).not.toBe('alice');

    expect(
      (await runCli(['init', '--config', config], { env: { USER: undefined } })).exitCode,
    ).toBe(0);
    const created = await runCli(
      ['keys', 'create', '--config', config, '--name', 'k', '--role', 'reader'],
      { env: { USER: 'alice' } },
    );
    expect(created.exitCode).toBe(0);
    const pruned = await runCli(['audit', 'prune', '--config', config, '--days', '0'], {
      env: { USER: undefined, LOGNAME: undefined },
    });
    expect(pruned.exitCode).toBe(0);

    const sqlite = new Database(join(dir.path, 'data/secryn.db'), { readonly: true });
    try {
      const actors = sqlite
        .query('SELECT action, actor_type, actor_id, actor_name FROM audit_log ORDER BY seq')
        .all();
      expect(actors).toEqual([
        expect.objectContaining({ action: 'api_key.create' }),
        expect.objectContaining({ action: 'api_key.create' }),
        expect.objectContaining({ action: 'audit.prune' }),
      ]);
      for (const actor of actors) {
        expect(actor).toMatchObject({
          actor_type: 'local_user',
          actor_id: user,
          actor_name: `${user}@${hostname()}`,
        });
      }
      const keys = sqlite.query('SELECT created_by FROM api_keys').all();
      expect(keys).toEqual([
        { created_by: `local_user:${user}` },
        { created_by: `local_user:${user}` },
      ]);
      expect(sqlite.query('SELECT created_by FROM instance').get()).toEqual({ created_by: user });
    } finally {
      sqlite.close();
    }
  });
});
