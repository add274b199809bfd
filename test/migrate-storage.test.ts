/**
 * `secryn migrate-storage` as a process, on a real PostgreSQL cluster and real SQLite files: an
 * instance with data copied to PostgreSQL (counts and digests equal, source byte-identical) and
 * back (audit verify intact, a server on the copy reveals the secret), a non-empty target
 * refused, rows altered in PostgreSQL caught by the verification of the way back, a failed copy
 * leaving no row, a running server refused, and the database password never printed.
 */
import { Database } from 'bun:sqlite';
import { expect, test } from 'bun:test';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serveMarkerPath } from '../src/backup/serve-marker.ts';
import { schemaTableSpecs } from '../src/db/postgres/copy.ts';
import {
  freePort,
  readThroughServe,
  runCli,
  startCliServer,
  tempDir,
  writeConfig,
} from './harness.ts';
import {
  TestDatabase,
  describePostgres,
  postgresCounts,
  sqliteCounts,
} from './postgres-harness.ts';

type Summary = { tables: { table: string; rows: number; digest: string }[]; rows: number };

/** An instance with projects, vaults, a secret in three versions, keys, webhooks and audit. */
async function populatedInstance(
  dir: string,
): Promise<{ config: string; secretId: string; adminToken: string }> {
  const { server, url, config, adminToken } = await startCliServer(dir);
  try {
    const send = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      expect(response.status).toBeLessThan(300);
      return (await response.json()) as { id: string };
    };
    const project = await send('POST', '/v1/projects', { name: 'payments' });
    await send('POST', '/v1/projects', { name: 'billing', description: 'ünïcode ✓' });
    const vault = await send('POST', '/v1/vaults', { project_id: project.id, name: 'prod' });
    await send('POST', '/v1/vaults', { project_id: project.id, name: 'staging' });
    const secret = await send('POST', '/v1/resources', {
      type: 'secret',
      vault_id: vault.id,
      name: 'db-password',
      value: 'v1',
    });
    await send('PUT', `/v1/resources/${secret.id}`, { value: 'v2' });
    await send('PUT', `/v1/resources/${secret.id}`, { value: 'v3-the-latest' });
    await send('POST', '/v1/api-keys', { name: 'ci', role: 'reader' });
    await send('POST', '/v1/api-keys', { name: 'deploy', role: 'access', vault_ids: [vault.id] });
    await send('POST', '/v1/webhooks', {
      url: 'https://hooks.example.com/secryn',
      events: ['*'],
      project_id: project.id,
    });
    await send('GET', `/v1/resources/${secret.id}`);
    return { config, secretId: secret.id, adminToken };
  } finally {
    server.kill();
    await server.exited;
  }
}

/** A config whose `[storage]` is the PostgreSQL database, with the instance's master key. */
function postgresConfig(dir: string, db: TestDatabase, masterKey: string): string {
  const path = join(dir, 'postgres.toml');
  writeFileSync(
    path,
    `[storage]\nbackend = "postgres"\nurl = "${db.url}"\n[encryption]\nmaster_key_file = "${masterKey}"\n[log]\nlevel = "warn"\n`,
  );
  return path;
}

describePostgres('secryn migrate-storage', (db) => {
  test('SQLite to PostgreSQL and back: exact, verified, source untouched, servable', async () => {
    using dir = tempDir();
    const { config, secretId, adminToken } = await populatedInstance(dir.path);
    const source = join(dir.path, 'data/secryn.db');
    const before = readFileSync(source);

    const there = await runCli(['migrate-storage', '--config', config, '--to', db.url, '--json']);
    expect(there.stderr).toBe('');
    expect(there.exitCode).toBe(0);
    const forth = JSON.parse(there.stdout) as Summary & { verified: boolean };
    expect(forth.verified).toBe(true);
    // The source file is byte for byte what it was.
    expect(readFileSync(source).equals(before)).toBe(true);
    // Every table of the schema, and the counts both sides really hold (checked independently).
    expect(forth.tables.map((t) => t.table).sort()).toEqual(
      schemaTableSpecs()
        .map((t) => t.name)
        .sort(),
    );
    const counts = sqliteCounts(source);
    expect(await postgresCounts(db)).toEqual(counts);
    for (const table of ['projects', 'vaults', 'resources', 'api_keys', 'webhooks', 'events']) {
      expect(counts[table]).toBeGreaterThan(0);
    }
    expect(counts.resource_versions).toBeGreaterThanOrEqual(3);
    expect(counts.audit_log).toBeGreaterThan(10);
    // Identity sequences continue after the copied ids.
    const [next] = await db.sql.unsafe(
      `SELECT nextval(pg_get_serial_sequence('audit_log', 'seq'))::int AS n`,
    );
    expect(next.n).toBeGreaterThan(counts.audit_log!);

    // And back, into a new instance directory.
    using back = tempDir();
    mkdirSync(join(back.path, 'data'), { mode: 0o700 });
    copyFileSync(join(dir.path, 'data/master.key'), join(back.path, 'data/master.key'));
    const pgConfig = postgresConfig(back.path, db, join(back.path, 'data/master.key'));
    const copy = join(back.path, 'data/secryn.db');
    const home = await runCli([
      'migrate-storage',
      '--config',
      pgConfig,
      '--to',
      `sqlite:${copy}`,
      '--json',
    ]);
    expect(home.stderr).toBe('');
    expect(home.exitCode).toBe(0);
    expect((JSON.parse(home.stdout) as Summary).tables).toEqual(forth.tables);
    expect(sqliteCounts(copy)).toEqual(counts);
    expect(existsSync(`${copy}.migrate-tmp`)).toBe(false);

    const port = freePort();
    const copyConfig = writeConfig(back.path, `[server]\nport = ${port}\n`);
    const verify = await runCli(['audit', 'verify', '--config', copyConfig]);
    expect(verify.exitCode).toBe(0);
    // A server on the copy reveals the latest value with the original admin key.
    expect(await readThroughServe(copyConfig, port, secretId, adminToken)).toEqual({
      status: 200,
      value: 'v3-the-latest',
    });

    // The target is no longer empty: a second copy is refused and changes nothing.
    const again = await runCli(['migrate-storage', '--config', config, '--to', db.url]);
    expect(again.exitCode).toBe(4);
    expect(again.stderr).toContain('already holds Secryn data');
    expect(await postgresCounts(db)).toEqual(counts);
    // So is an existing SQLite file.
    const onto = await runCli(['migrate-storage', '--config', pgConfig, '--to', `sqlite:${copy}`]);
    expect(onto.exitCode).toBe(4);
    expect(onto.stderr).toContain('already exists');
  }, 60_000);

  test('rows altered in PostgreSQL are caught on the way back, and nothing is kept', async () => {
    using dir = tempDir();
    const { config } = await populatedInstance(dir.path);
    const target = new TestDatabase();
    await target.create();
    try {
      const there = await runCli(['migrate-storage', '--config', config, '--to', target.url]);
      expect(there.exitCode).toBe(0);
      const pgConfig = postgresConfig(dir.path, target, join(dir.path, 'data/master.key'));
      const copy = join(dir.path, 'copy.db');
      const back = () =>
        runCli(['migrate-storage', '--config', pgConfig, '--to', `sqlite:${copy}`]);

      // A reader key promoted to admin by hand: its MAC no longer verifies.
      await target.sql`UPDATE api_keys SET role = 'admin' WHERE name = 'ci'`;
      const promoted = await back();
      expect(promoted.exitCode).toBe(65);
      expect(promoted.stderr).toContain('the copy fails verification, nothing was kept');
      expect(promoted.stderr).toContain('API key');
      // Only what failed, not restore's own sentence about a backup.
      expect(promoted.stderr).not.toContain('backup refused');
      expect(existsSync(copy)).toBe(false);
      await target.sql`UPDATE api_keys SET role = 'reader' WHERE name = 'ci'`;

      // An audit entry rewritten: the keyed chain breaks.
      const [entry] =
        await target.sql`SELECT seq, action FROM audit_log ORDER BY seq LIMIT 1 OFFSET 3`;
      await target.sql`UPDATE audit_log SET action = 'project.delete' WHERE seq = ${entry.seq}`;
      const rewritten = await back();
      expect(rewritten.exitCode).toBe(65);
      expect(rewritten.stderr).toContain('audit log is broken');
      expect(existsSync(copy)).toBe(false);
      await target.sql`UPDATE audit_log SET action = ${entry.action} WHERE seq = ${entry.seq}`;

      // Put right, the same copy verifies: the refusals were about the rows, nothing else.
      expect((await back()).exitCode).toBe(0);
    } finally {
      await target.drop();
    }
  }, 60_000);

  test('the database password is refused in the URL and never printed', async () => {
    using dir = tempDir();
    const config = writeConfig(dir.path);
    expect((await runCli(['init', '--config', config])).exitCode).toBe(0);
    const password = 'S3KRET-pw-7f1c';
    const inUrl = new URL(db.url);
    inUrl.password = password;
    const refused = await runCli(['migrate-storage', '--config', config, '--to', inUrl.toString()]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain('must not contain a password');
    expect(refused.stderr + refused.stdout).not.toContain(password);

    // From the environment, to a server that is not there: the error names it, not the password.
    const nowhere = new URL(db.url);
    nowhere.port = String(freePort());
    const unreachable = await runCli(
      ['migrate-storage', '--config', config, '--to', nowhere.toString(), '--json'],
      { env: { SECRYN_DB_PASSWORD: password } },
    );
    expect(unreachable.exitCode).toBe(1);
    expect(unreachable.stderr).toContain('PostgreSQL');
    expect(unreachable.stderr + unreachable.stdout).not.toContain(password);

    // A server running on the source would take writes the copy misses: refused.
    writeFileSync(serveMarkerPath(join(dir.path, 'data/secryn.db')), `${process.pid}\n`);
    const serving = await runCli(['migrate-storage', '--config', config, '--to', db.url]);
    expect(serving.exitCode).toBe(1);
    expect(serving.stderr).toContain('stop it before migrating');
  }, 30_000);
});

test.if(Boolean(process.env.SECRYN_TEST_POSTGRES_URL))(
  'a source that fails verification leaves the target without a row (one transaction)',
  async () => {
    using dir = tempDir();
    const config = writeConfig(dir.path);
    expect((await runCli(['init', '--config', config])).exitCode).toBe(0);
    const sqlite = new Database(join(dir.path, 'data/secryn.db'));
    sqlite.run(`UPDATE api_keys SET name = 'planted'`);
    sqlite.close();
    const target = new TestDatabase();
    await target.create();
    try {
      const refused = await runCli(['migrate-storage', '--config', config, '--to', target.url]);
      expect(refused.exitCode).toBe(65);
      expect(refused.stderr).toContain('API key');
      const counts = await postgresCounts(target);
      expect(Object.values(counts).every((n) => n === 0)).toBe(true);
    } finally {
      await target.drop();
    }
  },
  30_000,
);
