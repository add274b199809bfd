/**
 * `[storage]` for PostgreSQL (its validation is tested in src/config/load.test.ts): the password
 * sources in the master key's order, the `Bun.sql` options, a real connection, and the exit 78 of
 * every storage command while serving from PostgreSQL is not available.
 */
import { describe, expect, test } from 'bun:test';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../src/config/load.ts';
import {
  DB_PASSWORD_CREDENTIAL_NAME,
  connectPostgres,
  loadDatabasePassword,
  postgresOptions,
} from '../src/db/postgres/connect.ts';
import { runCli, tempDir } from './harness.ts';
import { describePostgres } from './postgres-harness.ts';

const SECRET = 'hunter2-do-not-print';

describe('database password and Bun.sql options', () => {
  test('sources in the master key order: systemd credential, then env, then the file', () => {
    using dir = tempDir();
    const file = join(dir.path, 'db.password');
    writeFileSync(file, 'from-file\n', { mode: 0o600 });
    const creds = join(dir.path, 'creds');
    mkdirSync(creds);
    writeFileSync(join(creds, DB_PASSWORD_CREDENTIAL_NAME), 'from-credential\n');
    const storage = { password_file: file };
    expect(loadDatabasePassword(storage, {})).toEqual({
      password: 'from-file',
      source: 'file',
      path: file,
    });
    expect(loadDatabasePassword(storage, { SECRYN_DB_PASSWORD: 'from-env' })).toEqual({
      password: 'from-env',
      source: 'env',
    });
    expect(
      loadDatabasePassword(storage, {
        SECRYN_DB_PASSWORD: 'from-env',
        CREDENTIALS_DIRECTORY: creds,
      }),
    ).toMatchObject({ password: 'from-credential', source: 'credential' });
    // A credentials directory without this credential falls through to the next source.
    expect(loadDatabasePassword(storage, { CREDENTIALS_DIRECTORY: dir.path })?.source).toBe('file');
    expect(loadDatabasePassword({}, {})).toBeUndefined();
  });

  test('a readable-by-others, missing or multi-line password file is a config error, never echoed', () => {
    using dir = tempDir();
    const file = join(dir.path, 'db.password');
    writeFileSync(file, `${SECRET}\n`);
    chmodSync(file, 0o644);
    const message = (path: string) => {
      try {
        loadDatabasePassword({ password_file: path }, {});
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as ConfigError).lines.join('\n');
      }
      throw new Error('expected a ConfigError');
    };
    expect(message(file)).toBe(
      `storage.password_file: ${file} has mode 0644; it must not be accessible to group or others (fix: chmod 600 ${file})`,
    );
    chmodSync(file, 0o600);
    writeFileSync(file, `${SECRET}\nsecond line\n`);
    expect(message(file)).toBe(`storage.password_file: ${file} must hold the password on one line`);
    expect(message(join(dir.path, 'absent'))).toBe(
      `storage.password_file: ${join(dir.path, 'absent')} does not exist`,
    );
    expect(message(file)).not.toContain(SECRET);
  });

  test('options: the URL, the password, TLS verify-full with the CA, the pool size', () => {
    using dir = tempDir();
    const ca = join(dir.path, 'ca.pem');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const storage = {
      url: 'postgres://secryn@db.internal:5432/secryn',
      ca_file: ca,
      pool_size: 7,
    };
    const options = postgresOptions(storage, { SECRYN_DB_PASSWORD: SECRET });
    expect(options).toMatchObject({
      adapter: 'postgres',
      url: storage.url,
      password: SECRET,
      max: 7,
      tls: { ca: expect.stringContaining('BEGIN CERTIFICATE'), rejectUnauthorized: true },
    });
    const plain = postgresOptions({ ...storage, ca_file: undefined }, {});
    expect(plain.tls).toBeUndefined();
    expect('password' in plain).toBe(false);
    writeFileSync(ca, 'not pem');
    expect(() => postgresOptions(storage, {})).toThrow(
      `storage.ca_file: ${ca} is not a PEM certificate`,
    );
  });
});

describePostgres('connecting with the [storage] settings', (db) => {
  test('a pool from postgresOptions reaches the database and names itself', async () => {
    const sql = connectPostgres({ url: db.url, pool_size: 2 }, { SECRYN_DB_PASSWORD: 'unused' });
    try {
      const [row] =
        await sql`SELECT current_database() AS name, current_setting('application_name') AS app`;
      expect(row).toEqual({ name: db.name, app: 'secryn' });
    } finally {
      await sql.close();
    }
  });
});

describe('commands refuse backend = "postgres" until serving from it is available', () => {
  for (const command of [['serve'], ['keys', 'list'], ['init'], ['audit', 'verify']]) {
    test(`secryn ${command.join(' ')} exits 78 with one line`, async () => {
      using dir = tempDir();
      const config = join(dir.path, 'secryn.toml');
      writeFileSync(
        config,
        `[storage]\nbackend = "postgres"\nurl = "postgres://secryn@db.internal:5432/secryn"\npath = "${join(dir.path, 'secryn.db')}"\n`,
      );
      const result = await runCli([...command, '--config', config]);
      expect(result.exitCode).toBe(78);
      const lines = result.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(
        `${config}: storage.backend: serving from PostgreSQL is not available in this version yet`,
      );
      expect(result.stdout).toBe('');
    });
  }
});

test('secryn migrate names the unreachable PostgreSQL server, not the password, and exits 1', async () => {
  using dir = tempDir();
  const config = join(dir.path, 'secryn.toml');
  writeFileSync(
    config,
    '[storage]\nbackend = "postgres"\nurl = "postgres://secryn@127.0.0.1:1/secryn"\n',
  );
  const result = await runCli(['migrate', '--config', config], {
    env: { SECRYN_DB_PASSWORD: SECRET },
  });
  expect(result.exitCode).toBe(1);
  expect(result.stderr).toStartWith('secryn: PostgreSQL 127.0.0.1:1/secryn (storage.url): ');
  expect(result.stderr + result.stdout).not.toContain(SECRET);
});
