/**
 * The `secryn` executable as a client of a `secryn serve` over a real socket (the compiled
 * binary when SECRYN_BINARY is set): login with the token on stdin, whoami, secrets round trips
 * with awkward values, env export → import, `run` (environment, exit status, SIGTERM, the
 * sealed fallback), an access key that reads but cannot write, TLS trust, exit codes, and the
 * token kept out of argument lists and out of every file but the 0600 profile.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROUTE_PERMISSIONS } from '../src/access/permissions.ts';
import { ExitCode } from '../src/cli/exit.ts';
import { cliCommand, freePort, pinnedEnv, runCli, startCliServer, tempDir } from './harness.ts';
import { makeTestPki } from './pki.ts';

const TRICKY: Record<string, string> = {
  SPACES: '  two  words  ',
  NEWLINES: 'line one\nline two\n',
  EQUALS: 'a=b==c',
  QUOTES: `it's "quoted" $HOME \\n`,
  UNICODE: 'café ☕ 日本語 🔐',
};

type Result = { exitCode: number; stdout: string; stderr: string };

describe('secryn as a client', () => {
  const dir = tempDir('secryn-client-');
  const home = join(dir.path, 'home');
  let url = '';
  let adminToken = '';
  let server: ReturnType<typeof Bun.spawn>;
  let config = '';

  /** Runs the client with HOME/XDG_CONFIG_HOME in the temp dir; `stdin` is piped when given. */
  async function secryn(
    args: string[],
    options: { stdin?: string; env?: Record<string, string | undefined> } = {},
  ): Promise<Result> {
    const proc = Bun.spawn([...cliCommand(), ...args], {
      env: pinnedEnv({ HOME: home, XDG_CONFIG_HOME: join(home, '.config'), ...options.env }),
      stdin: options.stdin === undefined ? 'ignore' : new TextEncoder().encode(options.stdin),
      stdout: 'pipe',
      stderr: 'pipe',
    });
    const [stdout, stderr, exitCode] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    return { exitCode, stdout, stderr };
  }
  const ok = async (args: string[], options?: Parameters<typeof secryn>[1]) => {
    const result = await secryn(args, options);
    if (result.exitCode !== 0)
      throw new Error(`secryn ${args.join(' ')}: ${result.exitCode} ${result.stderr}`);
    return result;
  };

  beforeAll(async () => {
    ({ server, url, config, adminToken } = await startCliServer(dir.path));
  }, 30_000);
  afterAll(async () => {
    server.kill('SIGTERM');
    await server.exited;
    dir[Symbol.dispose]();
  });

  test('login reads the token from stdin, checks it and saves a 0600 profile; whoami shows the key', async () => {
    const bad = await secryn(['login', '--url', url], { stdin: 'scr_wrong\n' });
    expect(bad.exitCode).toBe(ExitCode.UNAUTHORIZED);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);

    const login = await ok(['login', '--url', url], { stdin: `${adminToken}\n` });
    expect(login.stdout).toContain('as "initial admin"');
    const profile = join(home, '.config/secryn/profiles.json');
    expect(statSync(profile).mode & 0o777).toBe(0o600);
    expect(statSync(join(home, '.config/secryn')).mode & 0o777).toBe(0o700);

    const whoami = await ok(['whoami']);
    expect(whoami.stdout).toContain('role:        admin');
    expect(whoami.stdout).toContain('expires:     never');
    const json = JSON.parse((await ok(['whoami', '--json'])).stdout);
    expect(json).toMatchObject({ role: 'admin', scopes: null, expires_at: null });
    expect(json.permissions).toContain('resources:reveal');
  }, 30_000);

  test('projects, vaults, and secrets round trip with spaces, newlines, =, quotes and unicode', async () => {
    await ok(['project', 'create', 'shop']);
    await ok(['vault', 'create', 'prod', '--project', 'shop']);
    await ok(['vault', 'create', 'copy', '--project', 'shop']);
    expect((await ok(['project', 'list'])).stdout).toContain('shop');
    const vaults = JSON.parse((await ok(['vault', 'list', '--project', 'shop', '--json'])).stdout);
    expect(vaults.map((v: { name: string }) => v.name).sort()).toEqual(['copy', 'prod']);

    for (const [name, value] of Object.entries(TRICKY)) {
      const set = await ok(['secret', 'set', name, '--vault', 'shop/prod'], { stdin: value });
      expect(set.stdout).toContain(`Created ${name} (version 1`);
      expect((await ok(['secret', 'get', name, '--vault', 'shop/prod'])).stdout).toBe(value);
    }
    const listed = JSON.parse(
      (await ok(['secret', 'list', '--vault', 'shop/prod', '--json'])).stdout,
    );
    expect(listed.map((s: { name: string }) => s.name).sort()).toEqual(Object.keys(TRICKY).sort());
    expect(JSON.stringify(listed)).not.toContain('café');

    // A new version from a file, then back to version 1.
    const file = join(dir.path, 'value.txt');
    writeFileSync(file, 'second = value\n');
    expect(
      (await ok(['secret', 'set', 'EQUALS', '--vault', 'shop/prod', '--from-file', file])).stdout,
    ).toContain('Updated EQUALS (version 2');
    expect((await ok(['secret', 'get', 'EQUALS', '--vault', 'shop/prod'])).stdout).toBe(
      'second = value\n',
    );
    expect(
      (await ok(['secret', 'get', 'EQUALS', '--vault', 'shop/prod', '--version', '1'])).stdout,
    ).toBe('a=b==c');
    const versions = JSON.parse(
      (await ok(['secret', 'versions', 'EQUALS', '--vault', 'shop/prod', '--json'])).stdout,
    );
    expect(versions.map((v: { version: number }) => v.version)).toEqual([2, 1]);
    expect(
      (await ok(['secret', 'restore', 'EQUALS', '--vault', 'shop/prod', '--version', '1'])).stdout,
    ).toContain('as version 3');
    expect((await ok(['secret', 'get', 'EQUALS', '--vault', 'shop/prod'])).stdout).toBe('a=b==c');
    const whole = JSON.parse(
      (await ok(['secret', 'get', 'UNICODE', '--vault', 'shop/prod', '--json'])).stdout,
    );
    expect(whole).toMatchObject({ name: 'UNICODE', value: TRICKY.UNICODE });

    // Delete, then undelete.
    await ok(['secret', 'set', 'DOOMED', '--vault', 'shop/prod'], { stdin: 'x' });
    await ok(['secret', 'delete', 'DOOMED', '--vault', 'shop/prod']);
    const gone = await secryn(['secret', 'get', 'DOOMED', '--vault', 'shop/prod']);
    expect(gone.exitCode).toBe(ExitCode.NOT_FOUND);
    await ok(['secret', 'restore', 'DOOMED', '--vault', 'shop/prod']);
    await ok(['secret', 'delete', 'DOOMED', '--vault', 'shop/prod']);
  }, 60_000);

  test('env export reproduces the values in dotenv, shell and json', async () => {
    const shell = (await ok(['env', 'export', '--vault', 'shop/prod', '--format', 'shell'])).stdout;
    const script =
      shell +
      Object.keys(TRICKY)
        .map((n) => `printf '%s\\0' "$${n}"`)
        .join('\n');
    const values = Bun.spawnSync(['sh', '-c', script]).stdout.toString().split('\0').slice(0, -1);
    expect(values).toEqual(Object.values(TRICKY));
    const json = JSON.parse(
      (await ok(['env', 'export', '--vault', 'shop/prod', '--format', 'json'])).stdout,
    );
    expect(json).toEqual(TRICKY);
    const dotenv = (await ok(['env', 'export', '--vault', 'shop/prod'])).stdout;
    expect(dotenv).toContain('NEWLINES="line one\\nline two\\n"\n');
  }, 30_000);

  // Needs POST /v1/vaults/:id/secrets/import (being built on another branch); runs once merged.
  test.if('POST /v1/vaults/:id/secrets/import' in ROUTE_PERMISSIONS)(
    'env export → env import into another vault reproduces it; a bad entry changes nothing',
    async () => {
      const file = join(dir.path, 'prod.env');
      writeFileSync(file, (await ok(['env', 'export', '--vault', 'shop/prod'])).stdout);
      const imported = JSON.parse(
        (await ok(['env', 'import', file, '--vault', 'shop/copy', '--json'])).stdout,
      );
      expect(imported.created.sort()).toEqual(Object.keys(TRICKY).sort());
      const copy = JSON.parse(
        (await ok(['env', 'export', '--vault', 'shop/copy', '--format', 'json'])).stdout,
      );
      expect(copy).toEqual(TRICKY);
      const again = JSON.parse(
        (await ok(['env', 'import', file, '--vault', 'shop/copy', '--json'])).stdout,
      );
      expect(again.unchanged.sort()).toEqual(Object.keys(TRICKY).sort());
    },
    30_000,
  );

  test('env import sends the parsed file in one request (stub of the import route); a bad file sends nothing', async () => {
    const bodies: unknown[] = [];
    const stubServer = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      async fetch(request) {
        const path = new URL(request.url).pathname;
        if (request.method !== 'POST' || path !== '/v1/vaults/vlt_stub/secrets/import') {
          return new Response('', { status: 404 });
        }
        bodies.push(await request.json());
        return Response.json({ created: ['A'], updated: ['B'], unchanged: [] });
      },
    });
    try {
      const env = { SECRYN_URL: `http://127.0.0.1:${stubServer.port}`, SECRYN_TOKEN: adminToken };
      const file = join(dir.path, 'in.env');
      writeFileSync(file, '# comment\nA="multi\\nline = café"\nB=plain # note\n');
      const result = await ok(['env', 'import', file, '--vault', 'vlt_stub'], { env });
      expect(result.stdout).toContain('1 created, 1 updated, 0 unchanged');
      expect(bodies).toEqual([
        {
          secrets: [
            { name: 'A', value: 'multi\nline = café' },
            { name: 'B', value: 'plain' },
          ],
        },
      ]);
      writeFileSync(file, 'A=1\nB="unterminated\n');
      const bad = await secryn(['env', 'import', file, '--vault', 'vlt_stub'], { env });
      expect(bad.exitCode).toBe(ExitCode.USAGE);
      expect(bad.stderr).toContain('line 2: unterminated');
      expect(bodies).toHaveLength(1);
    } finally {
      stubServer.stop(true);
    }
  }, 30_000);

  test('run gives the child the secrets, exits with its status, and keeps the token and values off argv', async () => {
    const run = await ok([
      'run',
      '--vault',
      'shop/prod',
      '--',
      'sh',
      '-c',
      // The parent's argument list (secryn run) as the kernel shows it to `ps`.
      'printf "%s" "$UNICODE"; printf "|%s|" "$SECRYN_TOKEN"; tr "\\0" " " < /proc/$PPID/cmdline',
    ]);
    expect(run.stdout.startsWith(`${TRICKY.UNICODE}||`)).toBe(true);
    expect(run.stdout).not.toContain(adminToken);
    expect(run.stdout.slice(TRICKY.UNICODE!.length)).not.toContain('café');

    const status = await secryn(['run', '--vault', 'shop/prod', '--', 'sh', '-c', 'exit 42']);
    expect(status.exitCode).toBe(42);
    // With SECRYN_TOKEN instead of the profile: the child does not inherit the token.
    const viaEnv = await ok(
      ['run', '--vault', 'shop/prod', '--', 'sh', '-c', 'printf "%s" "${SECRYN_TOKEN-unset}"'],
      {
        env: { SECRYN_TOKEN: adminToken, SECRYN_URL: url },
      },
    );
    expect(viaEnv.stdout).toBe('unset');
    // What follows `--` is the child's, --help included.
    const help = await ok([
      'run',
      '--vault',
      'shop/prod',
      '--',
      'sh',
      '-c',
      'printf "%s" "$1"',
      'sh',
      '--help',
    ]);
    expect(help.stdout).toBe('--help');
  }, 30_000);

  test('run forwards SIGTERM to the child', async () => {
    const proc = Bun.spawn(
      [
        ...cliCommand(),
        'run',
        '--vault',
        'shop/prod',
        '--',
        'sh',
        '-c',
        'trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 0.05; done',
      ],
      {
        env: pinnedEnv({ HOME: home, XDG_CONFIG_HOME: join(home, '.config') }),
        stdout: 'pipe',
        stderr: 'pipe',
      },
    );
    const reader = proc.stdout.getReader();
    let seen = '';
    while (!seen.includes('ready')) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    proc.kill('SIGTERM');
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    expect(await proc.exited).toBe(7);
    expect(seen).toContain('got-term');
  }, 30_000);

  test('run --fallback: a sealed 0600 copy, used when the server is unreachable, refused when too old', async () => {
    const copy = join(dir.path, 'fallback.sealed');
    const child = ['--', 'sh', '-c', 'printf "%s" "$SPACES"'];
    expect((await ok(['run', '--vault', 'shop/prod', '--fallback', copy, ...child])).stdout).toBe(
      TRICKY.SPACES!,
    );
    expect(statSync(copy).mode & 0o777).toBe(0o600);
    const sealed = readFileSync(copy, 'utf8');
    for (const value of Object.values(TRICKY)) expect(sealed).not.toContain(value.trim());

    const down = { SECRYN_URL: `http://127.0.0.1:${freePort()}` };
    const offline = await secryn(['run', '--vault', 'shop/prod', '--fallback', copy, ...child], {
      env: down,
    });
    expect(offline.exitCode).toBe(0);
    expect(offline.stdout).toBe(TRICKY.SPACES!);
    expect(offline.stderr).toContain('using the fallback copy');

    await Bun.sleep(1100);
    const expired = await secryn(
      ['run', '--vault', 'shop/prod', '--fallback', copy, '--fallback-max-age', '1s', ...child],
      { env: down },
    );
    expect(expired.exitCode).toBe(ExitCode.FALLBACK_UNUSABLE);
    expect(expired.stdout).toBe('');
    expect(expired.stderr).toContain('older than --fallback-max-age');

    // Another token cannot open it.
    const other = await secryn(['run', '--vault', 'shop/prod', '--fallback', copy, ...child], {
      env: { ...down, SECRYN_TOKEN: `scr_${'A'.repeat(61)}` },
    });
    expect(other.exitCode).toBe(ExitCode.FALLBACK_UNUSABLE);
    expect(other.stderr).toContain('does not open');
    // Without a fallback, an unreachable server is its own exit code.
    expect((await secryn(['whoami'], { env: down })).exitCode).toBe(ExitCode.UNREACHABLE);
  }, 30_000);

  test('an access key reads but cannot write', async () => {
    const vaultId = JSON.parse(
      (await ok(['vault', 'list', '--project', 'shop', '--json'])).stdout,
    ).find((v: { name: string }) => v.name === 'prod').id;
    const created = await runCli([
      'keys',
      'create',
      '--config',
      config,
      '--name',
      'ci',
      '--role',
      'access',
      '--vault',
      vaultId,
      '--json',
    ]);
    expect(created.exitCode).toBe(0);
    const env = { SECRYN_TOKEN: JSON.parse(created.stdout).token, SECRYN_URL: url };
    expect((await ok(['secret', 'get', 'UNICODE', '--vault', vaultId], { env })).stdout).toBe(
      TRICKY.UNICODE!,
    );
    const write = await secryn(['secret', 'set', 'NEW', '--vault', vaultId], { env, stdin: 'x' });
    expect(write.exitCode).toBe(ExitCode.FORBIDDEN);
    const json = await secryn(['secret', 'set', 'NEW', '--vault', vaultId, '--json'], {
      env,
      stdin: 'x',
    });
    expect(JSON.parse(json.stderr)).toEqual({
      error: { code: 'FORBIDDEN', message: expect.any(String) },
    });
    // By name it cannot list projects: told to use the id, not given another project's vault.
    const byName = await secryn(['secret', 'get', 'UNICODE', '--vault', 'shop/prod'], { env });
    expect(byName.exitCode).toBe(ExitCode.FORBIDDEN);
    expect(byName.stderr).toContain('use the vault id');
  }, 30_000);

  test('unknown token: UNAUTHORIZED; no server configured: NOT_LOGGED_IN', async () => {
    const bad = await secryn(['whoami'], { env: { SECRYN_TOKEN: 'scr_nope' } });
    expect(bad.exitCode).toBe(ExitCode.UNAUTHORIZED);
    const none = await secryn(['whoami'], { env: { XDG_CONFIG_HOME: join(dir.path, 'empty') } });
    expect(none.exitCode).toBe(ExitCode.NOT_LOGGED_IN);
  }, 30_000);

  test('TLS: an untrusted certificate fails; the right --ca-file or SECRYN_CACERT works', async () => {
    const pki = makeTestPki(['localhost']);
    const other = makeTestPki(['localhost'], 'Some other CA');
    const tls = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      tls: { cert: pki.leafCert, key: pki.leafKey },
      fetch: () =>
        Response.json({
          id: 'key_x',
          name: 'tls',
          role: 'reader',
          project_ids: [],
          vault_ids: [],
          scopes: null,
          expires_at: null,
          permissions: [],
        }),
    });
    try {
      const right = join(dir.path, 'ca.pem');
      const wrong = join(dir.path, 'other-ca.pem');
      writeFileSync(right, pki.caCert);
      writeFileSync(wrong, other.caCert);
      const env = { SECRYN_URL: `https://localhost:${tls.port}`, SECRYN_TOKEN: adminToken };
      expect((await secryn(['whoami'], { env })).exitCode).toBe(ExitCode.TLS_UNTRUSTED);
      const bad = await secryn(['whoami', '--ca-file', wrong], { env });
      expect(bad.exitCode).toBe(ExitCode.TLS_UNTRUSTED);
      expect(bad.stderr).toContain('not trusted');
      expect((await secryn(['whoami', '--ca-file', right], { env })).stdout).toContain(
        'role:        reader',
      );
      expect((await secryn(['whoami'], { env: { ...env, SECRYN_CACERT: right } })).exitCode).toBe(
        0,
      );
    } finally {
      tls.stop(true);
    }
  }, 30_000);

  test('the token is in no file but the 0600 profile', () => {
    const holders: string[] = [];
    const scan = (path: string) => {
      for (const entry of readdirSync(path, { withFileTypes: true })) {
        const full = join(path, entry.name);
        if (entry.isDirectory()) scan(full);
        else if (entry.isFile() && readFileSync(full).includes(adminToken)) holders.push(full);
      }
    };
    scan(dir.path);
    expect(holders).toEqual([join(home, '.config/secryn/profiles.json')]);
  });

  test('logout forgets the profile', async () => {
    await ok(['logout']);
    expect((await secryn(['whoami'])).exitCode).toBe(ExitCode.NOT_LOGGED_IN);
    expect(readFileSync(join(home, '.config/secryn/profiles.json'), 'utf8')).not.toContain(
      adminToken,
    );
  });
});
