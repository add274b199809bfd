/**
 * The README's quick start, run as a newcomer would: `init`, `serve`, then the README's own shell
 * block (curl + the Node.js one-liner) against that server over a real socket, so the commands a
 * newcomer pastes cannot drift from what the server accepts.
 */
import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  cliCommand,
  freePort,
  pinnedEnv,
  REPO_ROOT,
  runCli,
  tempDir,
  waitForHealthy,
  writeConfig,
} from './harness.ts';

/** The first ```sh block of the README that sets TOKEN: the quick start's API walk-through. */
function quickStartBlock(): string {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const block = blocks.find((b) => /^TOKEN=scr_\.\.\./m.test(b));
  if (!block) throw new Error('README: no quick-start block with TOKEN=scr_...');
  return block;
}

describe('README quick start', () => {
  test('its curl walk-through creates a secret and reads it back by id and by vault + name', async () => {
    const block = quickStartBlock();
    expect(block).toContain('http://127.0.0.1:8420/v1');

    using dir = tempDir();
    const port = freePort();
    const config = writeConfig(dir.path, `[server]\nport = ${port}\n`);
    const init = await runCli(['init', '--config', config]);
    expect(init.exitCode).toBe(0);
    const token = /(scr_[0-9A-Za-z]{61})/.exec(init.stdout)?.[1];
    expect(token).toBeDefined();

    const server = Bun.spawn([...cliCommand(), 'serve', '--config', config], {
      env: pinnedEnv(),
      stdout: 'ignore',
      stderr: 'pipe',
    });
    try {
      await waitForHealthy(`http://127.0.0.1:${port}/v1/health`);
      const script = block
        .replace(/^TOKEN=scr_\.\.\..*$/m, `TOKEN=${token}`)
        .replaceAll('127.0.0.1:8420', `127.0.0.1:${port}`);
      const run = Bun.spawnSync(['bash', '-euo', 'pipefail', '-c', script], {
        env: pinnedEnv(),
        stdout: 'pipe',
        stderr: 'pipe',
      });
      const stdout = run.stdout.toString();
      expect(run.stderr.toString()).toBe('');
      expect(run.exitCode).toBe(0);
      // curl prints each answer without a newline: health, the secret by id, then by vault + name.
      const answers = stdout
        .trim()
        .split(/(?<=\})(?=\{)/)
        .map((text) => JSON.parse(text));
      expect(answers).toHaveLength(3);
      expect(answers.shift()).toMatchObject({ status: 'ok' });
      expect(answers).toHaveLength(2);
      expect(answers[0]).toMatchObject({
        type: 'secret',
        name: 'DB_PASSWORD',
        value: 'correct horse',
      });
      expect(answers[1]).toMatchObject({ name: 'DB_PASSWORD', value: 'correct horse' });
      expect(answers[1].id).toBe(answers[0].id);
    } finally {
      server.kill('SIGTERM');
      await server.exited;
    }
  }, 30_000);
});
