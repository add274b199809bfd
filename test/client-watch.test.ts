/**
 * Live changes on the client side, with the `secryn` executable (the compiled binary when
 * SECRYN_BINARY is set) against a `secryn serve` over a real socket: `run --watch` restarts its
 * command with the new value (an access key, which streams without events:read), `--on-change-
 * signal HUP` signals it instead, a failed refetch leaves it running, and `template render`
 * (syntax, missing secrets, mode 0600, `--watch` with `--exec`, exit 21 when its key is revoked).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode } from '../src/cli/exit.ts';
import { SecrynClient } from '../src/client/http.ts';
import { parseTemplate, renderTemplate } from '../src/client/template.ts';
import { ChangeBatcher, watchVaults } from '../src/client/watch.ts';
import { cliCommand, pinnedEnv, runCli, startCliServer, tempDir } from './harness.ts';

/** A child process whose stdout and stderr are collected as they come. */
class Watched {
  stdout = '';
  stderr = '';
  readonly proc: ReturnType<typeof Bun.spawn>;
  constructor(args: string[], env: Record<string, string>) {
    this.proc = Bun.spawn([...cliCommand(), ...args], {
      env,
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'pipe',
    });
    void this.collect(this.proc.stdout as ReadableStream<Uint8Array>, 'stdout');
    void this.collect(this.proc.stderr as ReadableStream<Uint8Array>, 'stderr');
  }
  private async collect(stream: ReadableStream<Uint8Array>, into: 'stdout' | 'stderr') {
    const decoder = new TextDecoder();
    for await (const chunk of stream) this[into] += decoder.decode(chunk, { stream: true });
  }
  async until(ready: () => boolean, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!ready()) {
      if (Date.now() > deadline) {
        throw new Error(`timed out; stdout: ${this.stdout} stderr: ${this.stderr}`);
      }
      await Bun.sleep(10);
    }
  }
  async stop() {
    this.proc.kill('SIGTERM');
    await this.proc.exited;
  }
}

describe('secryn watching for changes', () => {
  const dir = tempDir('secryn-watch-');
  let url = '';
  let adminToken = '';
  let server: ReturnType<typeof Bun.spawn>;
  let vault = '';
  let other = '';
  const running: Watched[] = [];

  const api = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return (await response.json()) as any;
  };
  const env = (token = adminToken) => pinnedEnv({ SECRYN_URL: url, SECRYN_TOKEN: token });
  const secretId = async (vaultId: string, name: string) =>
    (await api('GET', `/v1/resources?vault_id=${vaultId}&name=${name}`)).data[0].id as string;
  const watched = (args: string[], token?: string) => {
    const w = new Watched(args, env(token));
    running.push(w);
    return w;
  };

  beforeAll(async () => {
    ({ server, url, adminToken } = await startCliServer(dir.path));
    const project = (await api('POST', '/v1/projects', { name: 'app' })).id;
    vault = (await api('POST', '/v1/vaults', { project_id: project, name: 'prod' })).id;
    other = (await api('POST', '/v1/vaults', { project_id: project, name: 'other' })).id;
    for (const [v, name, value] of [
      [vault, 'WATCHED', 'one'],
      [vault, 'SIGNALLED', 'a'],
      [vault, 'DB_PASSWORD', 'p1'],
      [other, 'UNRELATED', 'x'],
    ]) {
      await api('POST', '/v1/resources', { type: 'secret', vault_id: v, name, value });
    }
  }, 30_000);
  afterAll(async () => {
    for (const w of running) await w.stop();
    server.kill('SIGTERM');
    await server.exited;
    dir[Symbol.dispose]();
  });

  test('run --watch with an access key restarts the command with the new value within 2 s', async () => {
    const access = (
      await api('POST', '/v1/api-keys', { name: 'app', role: 'access', vault_ids: [vault] })
    ).token as string;
    const child = watched(
      [
        'run',
        '--watch',
        '--vault',
        vault,
        '--',
        'sh',
        '-c',
        'echo "start=$WATCHED"; trap "exit 0" TERM; while :; do sleep 0.05; done',
      ],
      access,
    );
    await child.until(() => child.stdout.includes('start=one'));
    // A change elsewhere restarts nothing; the change of a watched secret does.
    await api('PUT', `/v1/resources/${await secretId(other, 'UNRELATED')}`, { value: 'y' });
    const id = await secretId(vault, 'WATCHED');
    const delays: number[] = [];
    for (const value of ['two', 'three', 'four']) {
      const started = performance.now();
      await api('PUT', `/v1/resources/${id}`, { value });
      await child.until(() => child.stdout.includes(`start=${value}`), 2000);
      delays.push(performance.now() - started);
    }
    console.log(`commit → restarted child: ${delays.map((d) => d.toFixed(0)).join(', ')} ms`);
    expect(child.stdout.match(/start=/g)).toHaveLength(4);
    expect(child.stderr).toContain('restarting the command');
    expect(child.proc.exitCode).toBeNull();
    // SIGTERM during a restart ends `run` rather than starting the command again.
    const restarted = child.stdout.length;
    await api('PUT', `/v1/resources/${id}`, { value: 'five' });
    await child.until(() => child.stderr.match(/restarting/g)?.length === 4);
    child.proc.kill('SIGTERM');
    expect(await child.proc.exited).toBe(0);
    expect(child.stdout.slice(restarted)).not.toContain('start=five');
  }, 30_000);

  test('run --watch --on-change-signal HUP signals the command instead of restarting it', async () => {
    const marker = join(dir.path, 'hup');
    const child = watched([
      'run',
      '--watch',
      '--on-change-signal',
      'HUP',
      '--vault',
      'app/prod',
      '--',
      'sh',
      '-c',
      `trap 'echo "hup $SIGNALLED" >> ${marker}' HUP; echo ready; while :; do sleep 0.05; done`,
    ]);
    await child.until(() => child.stdout.includes('ready'));
    await api('PUT', `/v1/resources/${await secretId(vault, 'SIGNALLED')}`, { value: 'b' });
    const deadline = Date.now() + 2000;
    while (!existsSync(marker) && Date.now() < deadline) await Bun.sleep(10);
    // The command keeps its old environment: the signal mode is for programs that re-read.
    expect(readFileSync(marker, 'utf8')).toBe('hup a\n');
    expect(child.stdout.match(/ready/g)).toHaveLength(1);
    const bad = await runCli(['run', '--on-change-signal', 'HUP', '--vault', vault, '--', 'true'], {
      env: env(),
    });
    expect(bad.exitCode).toBe(ExitCode.USAGE);
  }, 30_000);

  test('template render: values, escapes, mode 0600; a missing secret names it and writes nothing', async () => {
    const input = join(dir.path, 'app.conf.tpl');
    const output = join(dir.path, 'app.conf');
    writeFileSync(
      input,
      `password = {{ secret "app/prod" "DB_PASSWORD" }}\nsame = {{secret "${vault}" "DB_PASSWORD"}}\nliteral = \\{{ secret }}\n`,
    );
    const rendered = await runCli(['template', 'render', input, output], { env: env() });
    expect(rendered.exitCode).toBe(0);
    expect(readFileSync(output, 'utf8')).toBe('password = p1\nsame = p1\nliteral = {{ secret }}\n');
    expect(statSync(output).mode & 0o777).toBe(0o600);

    const missingOut = join(dir.path, 'missing.conf');
    writeFileSync(input, 'a = {{ secret "app/prod" "NOPE" }}\n');
    const missing = await runCli(['template', 'render', input, missingOut], { env: env() });
    expect(missing.exitCode).toBe(ExitCode.NOT_FOUND);
    expect(missing.stderr).toContain('"NOPE" in app/prod (line 1)');
    expect(existsSync(missingOut)).toBe(false);

    writeFileSync(input, 'ok\nbad = {{ secrte "app/prod" "X" }}\n');
    const malformed = await runCli(['template', 'render', input, missingOut], { env: env() });
    expect(malformed.exitCode).toBe(ExitCode.REJECTED);
    expect(malformed.stderr).toContain('line 2');
  }, 30_000);

  test('template render --watch renders again on a change and runs --exec after each render', async () => {
    const input = join(dir.path, 'watch.tpl');
    const output = join(dir.path, 'watch.out');
    const log = join(dir.path, 'exec.log');
    writeFileSync(input, 'pw={{ secret "app/prod" "DB_PASSWORD" }}');
    const child = watched([
      'template',
      'render',
      input,
      output,
      '--watch',
      '--exec',
      `cat ${output} >> ${log}; echo >> ${log}`,
    ]);
    const read = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8') : '');
    await child.until(() => read(log) === 'pw=p1\n');
    await api('PUT', `/v1/resources/${await secretId(vault, 'DB_PASSWORD')}`, { value: 'p2' });
    await child.until(() => read(log) === 'pw=p1\npw=p2\n', 2000);
    expect(read(output)).toBe('pw=p2');
    expect(statSync(output).mode & 0o777).toBe(0o600);
  }, 30_000);

  test('template render --watch exits 21 when its key is revoked, leaving OUT as last rendered', async () => {
    const key = await api('POST', '/v1/api-keys', {
      name: 'renderer',
      role: 'access',
      vault_ids: [vault],
    });
    const input = join(dir.path, 'revoked.tpl');
    const output = join(dir.path, 'revoked.out');
    // An access key may not list projects: the vault by id.
    writeFileSync(input, `pw={{ secret "${vault}" "DB_PASSWORD" }}`);
    const child = watched(['template', 'render', input, output, '--watch'], key.token);
    await child.until(() => existsSync(output));
    const rendered = readFileSync(output, 'utf8');
    expect(rendered).toStartWith('pw=');
    const revokedAt = performance.now();
    await api('DELETE', `/v1/api-keys/${key.id}`);
    const status = await Promise.race([
      child.proc.exited,
      Bun.sleep(5000).then(() => 'still running'),
    ]);
    console.log(
      `revoked → template render exited: ${(performance.now() - revokedAt).toFixed(0)} ms`,
    );
    expect(status).toBe(ExitCode.UNAUTHORIZED);
    expect(readFileSync(output, 'utf8')).toBe(rendered);
    const lines = child.stderr.trim().split('\n');
    expect(lines.at(-1)).toContain('no longer watching for changes');
    expect(lines.filter((line) => line.includes('no longer watching'))).toHaveLength(1);
    expect(child.stderr).not.toContain(key.token);
  }, 30_000);

  test('run --watch: a refetch that fails keeps the command running and says so; the next good one restarts it', async () => {
    const project = (await api('POST', '/v1/projects', { name: 'refetch' })).id;
    const own = (await api('POST', '/v1/vaults', { project_id: project, name: 'prod' })).id;
    await api('POST', '/v1/resources', {
      type: 'secret',
      vault_id: own,
      name: 'KEPT',
      value: 'k1',
    });
    const child = watched([
      'run',
      '--watch',
      '--vault',
      own,
      '--',
      'sh',
      '-c',
      'echo "start=$KEPT"; trap "exit 0" TERM; while :; do sleep 0.05; done',
    ]);
    await child.until(() => child.stdout.includes('start=k1'));
    // A name that is no environment variable name: the refetch fails (no --skip-invalid), while
    // the stream, which knows nothing of names, stays up.
    const bad = (
      await api('POST', '/v1/resources', {
        type: 'secret',
        vault_id: own,
        name: 'NOT-AN-ENV',
        value: 'x',
      })
    ).id;
    await child.until(() => child.stderr.includes('refetching failed'), 3000);
    expect(child.stderr).toContain('the command keeps running with the previous secrets');
    expect(child.stderr).toContain('NOT-AN-ENV');
    expect(child.stderr).not.toContain('restarting');
    expect(child.proc.exitCode).toBeNull();
    expect(child.stdout.match(/start=/g)).toHaveLength(1);
    // Still watching: once the bad name is gone, the next change restarts it with the new value.
    await api('DELETE', `/v1/resources/${bad}`);
    await api('PUT', `/v1/resources/${await secretId(own, 'KEPT')}`, { value: 'k2' });
    await child.until(() => child.stdout.includes('start=k2'), 3000);
  }, 30_000);
});

describe('the template language', () => {
  test('tags, quoted strings, the escape, and errors by line', () => {
    const parsed = parseTemplate('x{{ secret "p/v" "A \\"q\\"" }}\n\\{{y}}');
    expect(parsed).toEqual(['x', { vault: 'p/v', name: 'A "q"', line: 1 }, '\n{{y}}']);
    const values = new Map([['p/v', new Map([['A "q"', 'V']])]]);
    expect(renderTemplate(parsed, values)).toBe('xV\n{{y}}');
    expect(() => parseTemplate('a\n\nb {{ name }}')).toThrow('line 3');
    expect(() => parseTemplate('{{ secret "p/v" }}')).toThrow('line 1');
    expect(() => renderTemplate(parsed, new Map())).toThrow('"A "q"" in p/v (line 1)');
  });
});

describe('the change watcher', () => {
  test('a dropped stream reconnects with Last-Event-ID; a lost resume point counts as a change', async () => {
    const seen: (string | null)[] = [];
    let connection = 0;
    const fake = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch(request) {
        seen.push(request.headers.get('last-event-id'));
        connection++;
        if (connection === 3) {
          return Response.json({ error: { code: 'GONE', message: 'Gone' } }, { status: 410 });
        }
        // One event, then the connection drops.
        const id = `evt_${connection}`;
        return new Response(`: connected\n\nid: ${id}\ndata: {}\n\n`, {
          headers: { 'content-type': 'text/event-stream' },
        });
      },
    });
    const changes: number[] = [];
    const notices: string[] = [];
    const client = new SecrynClient({ url: `http://127.0.0.1:${fake.port}`, token: 'scr_x' });
    const watcher = watchVaults(client, ['vlt_a', 'vlt_a', 'vlt_b'], {
      onChange: () => changes.push(connection),
      onNotice: (message) => notices.push(message),
    });
    try {
      expect(await watcher.ready).toBe(true);
      const deadline = Date.now() + 8000;
      while (seen.length < 4 && Date.now() < deadline) await Bun.sleep(20);
      // Resumes after the last id it saw; after the 410 it starts afresh (no header).
      expect(seen.slice(0, 4)).toEqual([null, 'evt_1', 'evt_2', null]);
      expect(changes.slice(0, 3)).toEqual([1, 2, 3]);
      expect(notices[0]).toContain('reconnecting');
    } finally {
      watcher.stop();
      fake.stop(true);
    }
  }, 15_000);

  test('changes in a burst run the work at most twice', async () => {
    let runs = 0;
    const batcher = new ChangeBatcher(async () => {
      runs++;
      await Bun.sleep(30);
    }, 5);
    for (let i = 0; i < 20; i++) batcher.notify();
    await Bun.sleep(10);
    for (let i = 0; i < 20; i++) batcher.notify();
    await Bun.sleep(150);
    expect(runs).toBe(2);
  });
});
