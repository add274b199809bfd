/**
 * `secryn serve` stops gracefully (exit 0, not the default action's 143) on a SIGTERM that arrives as soon
 * as it answers, and reloads (rather than ending, SIGHUP's default action) on a SIGHUP sent as
 * soon: the listener is up before the background workers have started (start() loads the
 * backup scheduler on demand), and a supervisor or an operator who saw the first healthy answer
 * may signal the server at once.
 */
import { describe, expect, test } from 'bun:test';
import { cliCommand, freePort, pinnedEnv, runCli, tempDir, writeConfig } from './harness.ts';

/** An initialised instance in `dir` whose config listens on a free port. */
async function initialised(
  dir: string,
): Promise<{ configPath: string; health: () => Promise<number> }> {
  const port = freePort();
  const configPath = writeConfig(dir, `[server]\nport = ${port}\n`);
  expect((await runCli(['init', '--config', configPath])).exitCode).toBe(0);
  const health = () =>
    fetch(`http://127.0.0.1:${port}/v1/health`).then(
      (response) => response.status,
      () => 0,
    );
  return { configPath, health };
}

/**
 * `secryn serve` started and polled every millisecond until its first 200, so that a signal
 * sent next follows that answer as closely as a supervisor's would.
 */
async function servedToFirst200(
  dir: string,
  configPath: string,
  health: () => Promise<number>,
): Promise<ReturnType<typeof Bun.spawn>> {
  const serve = Bun.spawn([...cliCommand(), 'serve', '--config', configPath], {
    cwd: dir,
    env: pinnedEnv(),
    stdout: 'ignore',
    stderr: 'ignore',
  });
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && (await health()) !== 200) await Bun.sleep(1);
  return serve;
}

describe('serve and signals', () => {
  test('SIGTERM right after the first healthy answer is a graceful stop, every time', async () => {
    using dir = tempDir();
    const { configPath, health } = await initialised(dir.path);
    const exits: (number | null)[] = [];
    for (let run = 0; run < 3; run++) {
      const serve = await servedToFirst200(dir.path, configPath, health);
      serve.kill('SIGTERM');
      exits.push(await serve.exited);
    }
    expect(exits).toEqual([0, 0, 0]);
  });

  test('SIGHUP right after the first healthy answer reloads; it never ends the server', async () => {
    using dir = tempDir();
    const { configPath, health } = await initialised(dir.path);
    const states: string[] = [];
    for (let run = 0; run < 3; run++) {
      const serve = await servedToFirst200(dir.path, configPath, health);
      serve.kill('SIGHUP');
      await Bun.sleep(300);
      // Still running and answering after the reload (the default action would have ended it).
      states.push(serve.exitCode === null && (await health()) === 200 ? 'serving' : 'ended');
      serve.kill('SIGTERM');
      await serve.exited;
    }
    expect(states).toEqual(['serving', 'serving', 'serving']);
  }, 30_000);
});
