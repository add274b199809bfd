/**
 * `secryn backup` and `secryn restore` on `backend = "postgres"`, as processes on a real
 * PostgreSQL cluster: a SQLite backup restored into PostgreSQL, backed up from there (plain and
 * age-encrypted), verified, and restored into a fresh SQLite instance whose audit chain verifies
 * and whose server reveals the secret; a non-empty PostgreSQL refused and left as it was; a
 * tampered backup refused on the way in with the database left empty.
 */
import { Database } from 'bun:sqlite';
import { expect, test } from 'bun:test';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { postgresTablesWithRows } from '../src/db/postgres/copy.ts';
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

/** A SQLite instance with a project, a vault, a secret in two versions and a reader key. */
async function sqliteInstance(dir: string) {
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
    const vault = await send('POST', '/v1/vaults', { project_id: project.id, name: 'prod' });
    const secret = await send('POST', '/v1/resources', {
      type: 'secret',
      vault_id: vault.id,
      name: 'db-password',
      value: 'v1',
    });
    await send('PUT', `/v1/resources/${secret.id}`, { value: 'v2-the-latest' });
    await send('POST', '/v1/api-keys', { name: 'ci', role: 'reader' });
    return { config, secretId: secret.id, adminToken };
  } finally {
    server.kill();
    await server.exited;
  }
}

/** A directory with the instance's master key and a config whose storage is `db`. */
function postgresInstance(dir: string, db: TestDatabase, masterKey: string): string {
  mkdirSync(join(dir, 'data'), { mode: 0o700 });
  copyFileSync(masterKey, join(dir, 'data/master.key'));
  const path = join(dir, 'postgres.toml');
  writeFileSync(
    path,
    `[storage]\nbackend = "postgres"\nurl = "${db.url}"\n[encryption]\nmaster_key_file = "${join(dir, 'data/master.key')}"\n[log]\nlevel = "warn"\n`,
  );
  return path;
}

async function lastAuditAction(db: TestDatabase): Promise<string> {
  const [row] = await db.sql`SELECT action FROM audit_log ORDER BY seq DESC LIMIT 1`;
  return row.action;
}

describePostgres('secryn backup and restore on PostgreSQL', (db) => {
  test('SQLite → PostgreSQL → backup (plain and age) → verify → SQLite: intact and servable', async () => {
    using dir = tempDir();
    const { config, secretId, adminToken } = await sqliteInstance(dir.path);
    const first = join(dir.path, 'from-sqlite.db');
    expect((await runCli(['backup', first, '--config', config])).exitCode).toBe(0);
    const inBackup = sqliteCounts(first);

    // Into PostgreSQL: every row of the backup, plus the restore's own audit entry.
    using pg = tempDir();
    const pgConfig = postgresInstance(pg.path, db, join(dir.path, 'data/master.key'));
    const restored = await runCli(['restore', first, '--config', pgConfig, '--json']);
    expect(restored.stderr).toBe('');
    expect(restored.exitCode).toBe(0);
    const afterRestore = await postgresCounts(db);
    expect(afterRestore).toEqual({ ...inBackup, audit_log: inBackup.audit_log! + 1 });
    expect(await lastAuditAction(db)).toBe('instance.restore');

    // A backup from PostgreSQL: the same portable file, recorded in PostgreSQL's audit log.
    const plain = join(pg.path, 'from-postgres.db');
    const backedUp = await runCli(['backup', plain, '--config', pgConfig, '--json']);
    expect(backedUp.stderr).toBe('');
    expect(backedUp.exitCode).toBe(0);
    expect(JSON.parse(backedUp.stdout)).toMatchObject({ file: plain, encrypted: false });
    expect(readFileSync(plain).subarray(0, 16).toString('latin1')).toBe('SQLite format 3\0');
    expect(sqliteCounts(plain)).toEqual(afterRestore);
    expect(await lastAuditAction(db)).toBe('instance.backup');
    expect((await postgresCounts(db)).audit_log).toBe(afterRestore.audit_log! + 1);
    // Only the backup is left beside it: no snapshot, staging or check file.
    expect(readdirSync(pg.path).sort()).toEqual(['data', 'from-postgres.db', 'postgres.toml']);

    const identity = join(pg.path, 'age.key');
    const keygen = Bun.spawnSync(['age-keygen', '-o', identity]);
    expect(keygen.exitCode).toBe(0);
    const recipient = /age1[0-9a-z]+/.exec(readFileSync(identity, 'utf8'))![0];
    const sealed = join(pg.path, 'from-postgres.age');
    const encrypted = await runCli([
      'backup',
      sealed,
      '--encrypt-to',
      recipient,
      '--config',
      pgConfig,
    ]);
    expect(encrypted.stderr).toBe('');
    expect(encrypted.exitCode).toBe(0);
    expect(readFileSync(sealed).subarray(0, 21).toString()).toBe('age-encryption.org/v1');

    // verify needs no storage: it works with the PostgreSQL configuration.
    expect((await runCli(['backup', 'verify', plain, '--config', pgConfig])).exitCode).toBe(0);
    const verified = await runCli([
      'backup',
      'verify',
      sealed,
      '--identity',
      identity,
      '--config',
      pgConfig,
    ]);
    expect(verified.stderr).toBe('');
    expect(verified.exitCode).toBe(0);
    expect(verified.stdout).toContain('is a good backup (age-encrypted)');

    // Into a fresh SQLite instance: the chain verifies and a server reveals the latest value.
    using back = tempDir();
    mkdirSync(join(back.path, 'data'), { mode: 0o700 });
    copyFileSync(join(dir.path, 'data/master.key'), join(back.path, 'data/master.key'));
    const port = freePort();
    const backConfig = writeConfig(back.path, `[server]\nport = ${port}\n`);
    const home = await runCli(['restore', sealed, '--identity', identity, '--config', backConfig]);
    expect(home.stderr).toBe('');
    expect(home.exitCode).toBe(0);
    expect((await runCli(['audit', 'verify', '--config', backConfig])).exitCode).toBe(0);
    expect(await readThroughServe(backConfig, port, secretId, adminToken)).toEqual({
      status: 200,
      value: 'v2-the-latest',
    });

    // A backup that cannot be recorded is not kept, and leaves nothing behind.
    const before = await postgresCounts(db);
    await db.sql.unsafe(`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
      $$ BEGIN RAISE EXCEPTION 'audit appends refused for the test'; END $$`);
    await db.sql.unsafe(`CREATE TRIGGER refuse BEFORE INSERT ON audit_log
      FOR EACH ROW EXECUTE FUNCTION refuse()`);
    try {
      const unrecorded = await runCli(['backup', join(pg.path, 'x.db'), '--config', pgConfig]);
      expect(unrecorded.exitCode).toBe(1);
      expect(unrecorded.stderr).toContain('audit appends refused for the test');
      expect(readdirSync(pg.path).sort()).toEqual(
        ['age.key', 'data', 'from-postgres.age', 'from-postgres.db', 'postgres.toml'].sort(),
      );
      expect(await postgresCounts(db)).toEqual(before);
    } finally {
      await db.sql.unsafe('DROP TRIGGER refuse ON audit_log');
      await db.sql.unsafe('DROP FUNCTION refuse()');
    }

    // PostgreSQL holds an instance now: a restore into it is refused and changes nothing.
    const again = await runCli(['restore', first, '--config', pgConfig]);
    expect(again.exitCode).toBe(4);
    expect(again.stderr).toContain('already holds Secryn data');
    expect(again.stderr).toContain('needs an empty database');
    expect(await postgresCounts(db)).toEqual(before);
  }, 120_000);

  test('a tampered backup is refused on the way into PostgreSQL, which stays empty', async () => {
    using dir = tempDir();
    const { config } = await sqliteInstance(dir.path);
    const backup = join(dir.path, 'backup.db');
    expect((await runCli(['backup', backup, '--config', config])).exitCode).toBe(0);
    const target = new TestDatabase();
    await target.create();
    try {
      using pg = tempDir();
      const pgConfig = postgresInstance(pg.path, target, join(dir.path, 'data/master.key'));

      // A reader key promoted to admin in the file: its MAC no longer verifies.
      const promoted = join(dir.path, 'promoted.db');
      copyFileSync(backup, promoted);
      const sqlite = new Database(promoted);
      sqlite.run(`UPDATE api_keys SET role = 'admin' WHERE name = 'ci'`);
      sqlite.close();
      const refused = await runCli(['restore', promoted, '--config', pgConfig]);
      expect(refused.exitCode).toBe(65);
      expect(refused.stderr).toContain('API key');
      expect(await postgresTablesWithRows(target.sql)).toEqual([]);

      // An audit entry rewritten: the keyed chain breaks.
      const rewritten = join(dir.path, 'rewritten.db');
      copyFileSync(backup, rewritten);
      const edit = new Database(rewritten);
      edit.run(`UPDATE audit_log SET action = 'project.delete' WHERE seq = 3`);
      edit.close();
      const broken = await runCli(['restore', rewritten, '--config', pgConfig]);
      expect(broken.exitCode).toBe(65);
      expect(broken.stderr).toContain('audit log is broken');
      expect(await postgresTablesWithRows(target.sql)).toEqual([]);

      // The untouched backup goes in: the refusals were about the edits, nothing else.
      expect((await runCli(['restore', backup, '--config', pgConfig])).exitCode).toBe(0);
      expect((await postgresTablesWithRows(target.sql)).length).toBeGreaterThan(0);
    } finally {
      await target.drop();
    }
  }, 60_000);
});
