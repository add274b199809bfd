/*
 * A master key file this user cannot read (EACCES) is its own failure: exit 15 and a line that
 * says so, not exit 12 ("truncated or not base64"). Reproduced as the systemd unit's layout
 * gives it: the key file root's (0600), the command run as another user (setpriv, so root only).
 */
import { expect, test } from 'bun:test';
import { chmodSync, chownSync } from 'node:fs';
import { join } from 'node:path';
import { cliCommand, pinnedEnv, runCli, tempDir, writeConfig } from './harness.ts';

const setpriv = Bun.which('setpriv');
const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

test.skipIf(!setpriv || !isRoot)(
  'an unreadable master key file: exit 15, one line naming EACCES',
  async () => {
    using dir = tempDir();
    chmodSync(dir.path, 0o755);
    const config = writeConfig(dir.path);
    const init = await runCli(['init', '--config', config]);
    expect(init.exitCode).toBe(0);
    const data = join(dir.path, 'data');
    chmodSync(data, 0o755);
    // The database the other user's, the key file root's: the unit's layout.
    for (const file of ['secryn.db', 'secryn.db-wal', 'secryn.db-shm']) {
      try {
        chownSync(join(data, file), NOBODY, NOBODY);
      } catch {}
    }
    const proc = Bun.spawnSync(
      [
        setpriv!,
        `--reuid=${NOBODY}`,
        `--regid=${NOBODY}`,
        '--clear-groups',
        ...cliCommand(),
        'keys',
        'list',
        '--config',
        config,
      ],
      { cwd: dir.path, env: pinnedEnv({ HOME: dir.path }), stdout: 'pipe', stderr: 'pipe' },
    );
    const stderr = proc.stderr.toString();
    expect(stderr).toContain('(EACCES)');
    expect(stderr).toContain('may not read it');
    expect(stderr).not.toContain('base64');
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(proc.exitCode).toBe(15);
  },
);
