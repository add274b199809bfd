import { Database } from 'bun:sqlite';
import { describe, expect, test } from 'bun:test';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, pinnedEnv, cliCommand, runCli, tempDir, writeConfig } from './harness.ts';

describe('secryn CLI', () => {
  test('--help lists the commands, exits 0, no colours when NO_COLOR or not a TTY', async () => {
    const result = await runCli(['--help']);
    expect(result.exitCode).toBe(0);
    for (const command of ['init', 'serve', 'migrate', 'version'])
      expect(result.stdout).toContain(command);
    expect(result.stdout).not.toContain('\x1b[');
    const sub = await runCli(['init', '--help']);
    expect(sub.exitCode).toBe(0);
    expect(sub.stdout).toContain('--config');
  });

  test('version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(join(import.meta.dir, '../package.json'), 'utf8')) as {
      version: string;
    };
    const result = await runCli(['version', '--json']);
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ version: pkg.version });
  });

  test('an unknown command or flag is one clear line and exit 2', async () => {
    const unknownCommand = await runCli(['frobnicate']);
    expect(unknownCommand.exitCode).toBe(2);
    expect(unknownCommand.stderr.trim().split('\n')).toEqual([
      expect.stringContaining('unknown command "frobnicate"'),
    ]);
    const unknownFlag = await runCli(['init', '--frobnicate']);
    expect(unknownFlag.exitCode).toBe(2);
    expect(unknownFlag.stderr.trim().split('\n')).toEqual([
      expect.stringContaining('unknown option --frobnicate'),
    ]);
    expect(unknownFlag.stdout).toBe('');
  });

  test('version takes --config (and ignores it), as docs/api.md §9 says every command does', async () => {
    const result = await runCli(['version', '--config', '/nonexistent/secryn.toml', '--json']);
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout)).toHaveProperty('version');
  });

  test('an unknown top-level option, or a group without its subcommand, is one sensible line', async () => {
    const bogus = await runCli(['--bogus']);
    expect(bogus).toMatchObject({
      exitCode: 2,
      stdout: '',
      stderr: 'secryn: unknown option --bogus (see: secryn --help)\n',
    });
    const group = await runCli(['keys']);
    expect(group).toMatchObject({
      exitCode: 2,
      stdout: '',
      stderr:
        'secryn: "secryn keys" needs a subcommand: create, list, revoke (see: secryn keys --help)\n',
    });
    // With --json, the same failure as a JSON error (test/cli-json-errors.test.ts).
    const groupJson = await runCli(['keys', '--json']);
    expect(groupJson.exitCode).toBe(2);
    expect(JSON.parse(groupJson.stderr).error.code).toBe('USAGE');
  });

  test('each kind of bad config file exits 78 with only its error lines', async () => {
    using dir = tempDir();
    const cases: [string, RegExp[]][] = [
      ['[server]\nport = = 1\n', [/bad\.toml:2:\d+: /]],
      [
        '[server]\nport = "x"\nprot = 1\n',
        [/server\.port: expected integer/, /server\.prot: unknown key/],
      ],
      ['[server]\ntls_key_file = "k.pem"\n', [/server\.tls_cert_file: required/]],
    ];
    for (const [text, patterns] of cases) {
      const path = join(dir.path, 'bad.toml');
      writeFileSync(path, text);
      const result = await runCli(['serve', '--config', path]);
      expect(result.exitCode).toBe(78);
      const lines = result.stderr.trim().split('\n');
      expect(lines).toHaveLength(patterns.length);
      patterns.forEach((pattern) => expect(lines.some((line) => pattern.test(line))).toBe(true));
      expect(result.stdout).toBe('');
    }
    const missing = await runCli(['serve', '--config', join(dir.path, 'absent.toml')]);
    expect(missing.exitCode).toBe(78);
    expect(missing.stderr).toContain('absent.toml: not found');
    const viaEnv = await runCli(['migrate'], {
      env: { SECRYN_CONFIG: join(dir.path, 'bad.toml') },
    });
    expect(viaEnv.exitCode).toBe(78);
  });

  test('init creates the instance in a 0700 directory and refuses to touch it again', async () => {
    using dir = tempDir();
    const config = writeConfig(dir.path);
    const first = await runCli(['init', '--config', config], { cwd: dir.path });
    expect(first.exitCode).toBe(0);
    const db = join(dir.path, 'data/secryn.db');
    expect(statSync(join(dir.path, 'data')).mode & 0o777).toBe(0o700);
    expect(statSync(db).mode & 0o077).toBe(0);
    const before = readFileSync(db);
    const second = await runCli(['init', '--config', config]);
    expect(second.exitCode).toBe(4);
    expect(second.stderr).toContain('already exists');
    expect(readFileSync(db).equals(before)).toBe(true);
    const ifMissing = await runCli(['init', '--if-missing', '--config', config]);
    expect(ifMissing.exitCode).toBe(0);
  });

  test('migrate is idempotent and serve refuses a missing instance', async () => {
    using dir = tempDir();
    const config = writeConfig(dir.path);
    const notYet = await runCli(['migrate', '--config', config]);
    expect(notYet.exitCode).toBe(3);
    expect(notYet.stderr).toContain('secryn init');
    expect((await runCli(['serve', '--config', config])).exitCode).toBe(3);
    expect((await runCli(['init', '--config', config])).exitCode).toBe(0);
    const again = await runCli(['migrate', '--config', config, '--json']);
    expect(again.exitCode).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual({ applied: [] });
  });

  test('a database migrated by another build is refused in one line, and left as it was', async () => {
    using dir = tempDir();
    const config = writeConfig(dir.path);
    expect((await runCli(['init', '--config', config])).exitCode).toBe(0);
    const path = join(dir.path, 'data', 'secryn.db');
    const sqlite = new Database(path);
    // What a newer build leaves behind: a migration this one has never heard of.
    sqlite.run(
      "INSERT INTO __drizzle_migrations (hash, created_at) VALUES ('0'||hex(randomblob(31)), 4102444800000)",
    );
    sqlite.close();
    const before = readFileSync(path);
    for (const command of [['serve'], ['migrate'], ['keys', 'list'], ['audit', 'verify']]) {
      const result = await runCli([...command, '--config', config]);
      expect(result.exitCode).toBe(1);
      expect(result.stderr.trim().split('\n')).toEqual([
        expect.stringContaining('made by another Secryn build'),
      ]);
      expect(result.stderr).toContain('2100-01-01T00:00:00.000Z');
    }
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  test('serve answers health over a socket and stops cleanly on SIGTERM and SIGINT', async () => {
    using dir = tempDir();
    const port = freePort();
    const config = writeConfig(dir.path, `[server]\nport = ${port}\n`);
    expect((await runCli(['init', '--config', config])).exitCode).toBe(0);
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const proc = Bun.spawn([...cliCommand(), 'serve', '--config', config], {
        cwd: dir.path,
        env: pinnedEnv(),
        stdout: 'pipe',
        stderr: 'pipe',
      });
      let health: Response | undefined;
      for (let i = 0; i < 200 && !health; i++) {
        health = await fetch(`http://127.0.0.1:${port}/v1/health`).catch(() => undefined);
        if (!health) await Bun.sleep(25);
      }
      expect(health?.status).toBe(200);
      expect(await health!.json()).toMatchObject({ status: 'ok' });
      if (signal === 'SIGTERM') {
        const second = await runCli(['serve', '--config', config]);
        expect(second.exitCode).toBe(1);
        expect(second.stderr).toContain('another secryn serve');
      }
      proc.kill(signal);
      const exitCode = await Promise.race([proc.exited, Bun.sleep(5000).then(() => 'timeout')]);
      expect(exitCode).toBe(0);
    }
  });
});

describe('a database locked by another process', () => {
  test('a command that cannot get the write lock in time exits 75 with one line saying so', async () => {
    using dir = tempDir();
    const configPath = writeConfig(dir.path);
    expect((await runCli(['init', '--config', configPath])).exitCode).toBe(0);
    writeFileSync(
      configPath,
      readFileSync(configPath, 'utf8').replace(
        '[storage]\n',
        '[storage]\nbusy_timeout_ms = 1500\n',
      ),
    );
    const holder = new Database(join(dir.path, 'data/secryn.db'));
    holder.run('BEGIN IMMEDIATE');
    try {
      const started = performance.now();
      const create = await runCli([
        'keys',
        'create',
        '--config',
        configPath,
        '--name',
        'ci',
        '--role',
        'reader',
      ]);
      expect(create.exitCode).toBe(75);
      // One wait for the lock: not a second one for the error entry, nor a third at close.
      expect(performance.now() - started).toBeLessThan(1500 + 1500);
      expect(create.stderr.trim()).toBe(
        'secryn: the database is locked by another process (a command or `secryn serve` holding ' +
          'its write lock longer than storage.busy_timeout_ms); run the command again',
      );
      expect(create.stdout).toBe('');
      const serve = await runCli(['serve', '--config', configPath]);
      expect(serve.exitCode).toBe(75);
      expect(serve.stderr.trim()).toContain('could not lock');
    } finally {
      holder.run('ROLLBACK');
      holder.close();
    }
    const after = await runCli(['keys', 'list', '--config', configPath, '--json']);
    expect(after.exitCode).toBe(0);
    expect(JSON.parse(after.stdout).map((key: { name: string }) => key.name)).not.toContain('ci');
  });
});

describe('serve that cannot listen', () => {
  test('a host that does not resolve is named in one line, exit 1', async () => {
    using dir = tempDir();
    const port = await freePort();
    const configPath = writeConfig(
      dir.path,
      `[server]\nhost = "no-such-host.invalid"\nport = ${port}\n`,
    );
    expect((await runCli(['init', '--config', configPath])).exitCode).toBe(0);
    const serve = await runCli(['serve', '--config', configPath]);
    expect(serve.exitCode).toBe(1);
    expect(serve.stderr.trim()).toBe(
      `secryn: cannot listen on no-such-host.invalid:${port} (server.host, server.port): ` +
        'the host is not an address or a name that resolves',
    );
  });
});

describe('serve with a TLS file it cannot read', () => {
  test('is a configuration error (exit 78) naming the key and the cause', async () => {
    using dir = tempDir();
    const port = await freePort();
    const missing = join(dir.path, 'tls/missing.crt');
    const configPath = writeConfig(
      dir.path,
      `[server]\nport = ${port}\ntls_cert_file = "${missing}"\ntls_key_file = "${missing}.key"\n`,
    );
    expect((await runCli(['init', '--config', configPath])).exitCode).toBe(0);
    const serve = await runCli(['serve', '--config', configPath]);
    expect(serve.exitCode).toBe(78);
    expect(serve.stderr.trim()).toBe(`server.tls_cert_file: cannot read ${missing} (ENOENT)`);
  });
});

describe('keys create --expires-in', () => {
  test('beyond what the API can show is refused like expires_at (exit 2), and nothing is stored', async () => {
    using dir = tempDir();
    const config = writeConfig(dir.path);
    expect((await runCli(['init', '--config', config])).exitCode).toBe(0);
    const create = (duration: string) =>
      runCli([
        'keys',
        'create',
        '--config',
        config,
        '--role',
        'reader',
        '--name',
        'far',
        '--expires-in',
        duration,
        '--json',
      ]);
    const far = await create('999999w');
    expect(JSON.parse(far.stderr)).toEqual({
      error: { code: 'USAGE', message: '--expires-in: Must be no later than 9999-12-31T23:59:59Z' },
    });
    expect(far.exitCode).toBe(2);
    expect(far.stdout).toBe('');
    const near = await create('520w');
    expect(near.exitCode).toBe(0);
    expect((JSON.parse(near.stdout) as { expires_at: string }).expires_at).toMatch(/^20\d\d-/);
    const list = await runCli(['keys', 'list', '--config', config, '--json']);
    expect((JSON.parse(list.stdout) as { name: string }[]).map((k) => k.name).sort()).toEqual([
      'far',
      'initial admin',
    ]);
  });
});
