/**
 * `[storage] ca_file` and the password against a real server: a throwaway PostgreSQL cluster of
 * its own with TLS on (a test CA's certificate for `localhost`) and scram-sha-256 passwords.
 * With the right CA and host name the connection is made; another CA, or an address the
 * certificate does not name (verify-full), is refused, and so is a wrong password. Needs root
 * (initdb runs as the postgres user), the PostgreSQL server binaries and openssl; skipped
 * without them, except under CI=true, where .ci/run installs them.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectPostgres } from '../src/db/postgres/connect.ts';
import { freePort } from './harness.ts';

const PASSWORD = 'tls-test-password';

function serverBinaries(): string | undefined {
  const onPath = Bun.which('initdb');
  if (onPath && Bun.which('pg_ctl')) return join(onPath, '..');
  const versions = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql') : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  return newest ? `/usr/lib/postgresql/${newest}/bin` : undefined;
}

const bin = serverBinaries();
const postgresUser = (() => {
  try {
    return Bun.spawnSync(['id', '-u', 'postgres']).exitCode === 0;
  } catch {
    return false;
  }
})();
const missing = [
  process.getuid?.() === 0 ? '' : 'root',
  bin ? '' : 'the PostgreSQL server binaries',
  postgresUser ? '' : 'a postgres user',
  Bun.which('openssl') ? '' : 'openssl',
].filter(Boolean);

if (missing.length > 0 && process.env.CI === 'true') {
  test('a TLS PostgreSQL cluster can be started (CI)', () => {
    throw new Error(`missing ${missing.join(', ')}: .ci/run runs as root and installs postgresql`);
  });
} else if (missing.length > 0) {
  console.warn(`skipping the PostgreSQL TLS tests: missing ${missing.join(', ')}`);
}

function run(cmd: string[], cwd?: string): void {
  const result = Bun.spawnSync(cmd, { cwd, stdout: 'pipe', stderr: 'pipe' });
  if (result.exitCode !== 0) {
    throw new Error(`${cmd.join(' ')} exited ${result.exitCode}: ${result.stderr.toString()}`);
  }
}

/** A CA and a certificate it signs for `localhost` only (DNS name, no IP address). */
function makeCertificates(dir: string): void {
  // Every argument is free of spaces, so each command is written as one line.
  const ssl = (args: string) => run(['openssl', ...args.split(' ')], dir);
  const ec = '-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes';
  for (const ca of ['ca', 'other-ca']) {
    ssl(`req -x509 ${ec} -keyout ${ca}.key -out ${ca}.pem -days 2 -subj /CN=${ca}`);
  }
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=DNS:localhost\n');
  ssl(`req ${ec} -keyout server.key -out server.csr -subj /CN=localhost`);
  ssl(
    'x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile san.ext',
  );
}

describe.skipIf(missing.length > 0)('PostgreSQL over TLS with a password', () => {
  const dir = missing.length > 0 ? '' : mkdtempSync(join(tmpdir(), 'secryn-pg-tls-'));
  const port = freePort();
  const data = join(dir, 'data');
  const asPostgres = (...cmd: string[]) => run(['runuser', '-u', 'postgres', '--', ...cmd]);

  beforeAll(() => {
    makeCertificates(dir);
    writeFileSync(join(dir, 'pwfile'), `${PASSWORD}\n`);
    const uid = Number(Bun.spawnSync(['id', '-u', 'postgres']).stdout.toString());
    const gid = Number(Bun.spawnSync(['id', '-g', 'postgres']).stdout.toString());
    for (const file of ['', 'server.key', 'server.crt', 'pwfile'])
      chownSync(join(dir, file), uid, gid);
    run(['chmod', '0700', dir]);
    run(['chmod', '0600', join(dir, 'server.key')]);
    asPostgres(
      `${bin}/initdb`,
      '-D',
      data,
      '-U',
      'postgres',
      '--auth-local=trust',
      '--auth-host=scram-sha-256',
      `--pwfile=${join(dir, 'pwfile')}`,
      '-E',
      'UTF8',
      '--locale=C.UTF-8',
    );
    // Only TLS connections over TCP: a plain one would not exercise the CA at all.
    writeFileSync(
      join(data, 'pg_hba.conf'),
      'local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\nhostssl all all ::1/128 scram-sha-256\n',
    );
    asPostgres(
      `${bin}/pg_ctl`,
      '-D',
      data,
      '-l',
      join(dir, 'server.log'),
      '-w',
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=localhost -c ssl=on ` +
        `-c ssl_cert_file=${join(dir, 'server.crt')} -c ssl_key_file=${join(dir, 'server.key')}`,
      'start',
    );
  }, 30_000);

  afterAll(() => {
    try {
      asPostgres(`${bin}/pg_ctl`, '-D', data, '-m', 'immediate', '-w', 'stop');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  async function connectWith(host: string, ca: string, password: string): Promise<unknown> {
    const sql = connectPostgres(
      { url: `postgres://postgres@${host}:${port}/postgres`, ca_file: join(dir, ca), pool_size: 1 },
      { SECRYN_DB_PASSWORD: password },
    );
    try {
      const [row] = await sql`SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`;
      return row;
    } finally {
      await sql.close();
    }
  }

  test('the configured CA and host name, and the password: connected over TLS', async () => {
    expect(await connectWith('localhost', 'ca.pem', PASSWORD)).toEqual({ ssl: true });
  });

  test('a certificate from another CA is refused', async () => {
    await expect(connectWith('localhost', 'other-ca.pem', PASSWORD)).rejects.toMatchObject({
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    });
  });

  test('an address the certificate does not name is refused (verify-full)', async () => {
    await expect(connectWith('127.0.0.1', 'ca.pem', PASSWORD)).rejects.toMatchObject({
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
  });

  test('a wrong password is refused', async () => {
    await expect(connectWith('localhost', 'ca.pem', 'wrong')).rejects.toThrow(/password/i);
  });
});
