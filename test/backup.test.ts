/**
 * `secryn backup` and `secryn restore` through the real CLI: a consistent, encrypted, 0600 copy
 * that a restore brings back (moving the replaced database aside), refused while a server runs,
 * for a backup sealed with another master key, or for a file that is not a Secryn database. A
 * backup that fails (source empty or damaged) leaves no file behind.
 */
import { Database } from 'bun:sqlite';
import { describe, expect, test } from 'bun:test';
import {
  closeSync,
  existsSync,
  linkSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { createBackup } from '../src/backup/backup.ts';
import { systemClock } from '../src/clock.ts';
import { loadConfig } from '../src/config/load.ts';
import { buildFeatures } from '../src/features.ts';
import { openInstance } from '../src/instance.ts';
import { serveMarkerPath } from '../src/backup/serve-marker.ts';
import { buildApp } from '../src/server.ts';
import { call, memoryLogger, runCli, tempDir, writeConfig } from './harness.ts';

const MARKER = 'BACKUP-MARKER-9d41-plaintext-never-on-disk';

/** Runs `body` against the instance of `configPath` through the real app, then closes it. */
async function withApp<T>(
  configPath: string,
  body: (
    send: (
      method: string,
      path: string,
      payload?: unknown,
    ) => Promise<{ status: number; json: any }>,
  ) => Promise<T>,
  token: string,
): Promise<T> {
  const { config } = loadConfig({ path: configPath, env: {} });
  const instance = openInstance(config, memoryLogger(), { env: {} });
  const features = buildFeatures(instance);
  const app = buildApp(instance, {
    features: features.features,
    recordOutcome: features.recordOutcome,
  });
  try {
    return await body(async (method, path, payload) => {
      const response = await call(app, method, path, {
        body: payload,
        headers: { authorization: `Bearer ${token}` },
      });
      const text = await response.text();
      return { status: response.status, json: text ? JSON.parse(text) : undefined };
    });
  } finally {
    await features.stop();
    await instance.close();
  }
}

async function initInstance(dir: string): Promise<{ configPath: string; token: string }> {
  const configPath = writeConfig(dir);
  const init = await runCli(['init', '--json', '--config', configPath]);
  expect(init.exitCode).toBe(0);
  return { configPath, token: JSON.parse(init.stdout).admin_key.token };
}

/**
 * An instance with a backup at `<dir>/snapshot.db` and a 200 ms busy timeout, so that a
 * restore refused because another process holds the database says so quickly.
 */
async function backedUpWithShortBusyTimeout(
  dir: string,
): Promise<{ configPath: string; backupFile: string; dbPath: string }> {
  const { configPath } = await initInstance(dir);
  writeFileSync(
    configPath,
    readFileSync(configPath, 'utf8').replace('[storage]\n', '[storage]\nbusy_timeout_ms = 200\n'),
  );
  const backupFile = join(dir, 'snapshot.db');
  expect((await runCli(['backup', backupFile, '--config', configPath])).exitCode).toBe(0);
  return { configPath, backupFile, dbPath: join(dir, 'data/secryn.db') };
}

describe('backup and restore', () => {
  test('backup is encrypted and 0600; restore brings it back and keeps the replaced database', async () => {
    using dir = tempDir();
    const { configPath, token } = await initInstance(dir.path);
    const secretId = await withApp(
      configPath,
      async (send) => {
        const project = await send('POST', '/v1/projects', { name: 'p' });
        const vault = await send('POST', '/v1/vaults', { project_id: project.json.id, name: 'v' });
        const secret = await send('POST', '/v1/resources', {
          type: 'secret',
          vault_id: vault.json.id,
          name: 'db',
          value: MARKER,
        });
        expect(secret.status).toBe(201);
        return secret.json.id as string;
      },
      token,
    );

    const backupFile = join(dir.path, 'snapshot.db');
    const backup = await runCli(['backup', backupFile, '--json', '--config', configPath]);
    expect(backup.exitCode).toBe(0);
    expect(JSON.parse(backup.stdout)).toMatchObject({
      file: backupFile,
      master_key_fingerprint: expect.any(String),
    });
    expect(statSync(backupFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(backupFile).includes(Buffer.from(MARKER))).toBe(false);
    const again = await runCli(['backup', backupFile, '--config', configPath]);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toContain('already exists');

    // A change after the backup, which the restore must undo.
    await withApp(
      configPath,
      async (send) => {
        expect((await send('DELETE', `/v1/resources/${secretId}`)).status).toBe(200);
      },
      token,
    );

    // Refused while a server runs on the database (this test process stands in for it).
    const dbPath = join(dir.path, 'data/secryn.db');
    writeFileSync(serveMarkerPath(dbPath), `${process.pid}\n`);
    const refused = await runCli(['restore', backupFile, '--config', configPath]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain('stop it before restoring');
    writeFileSync(serveMarkerPath(dbPath), '999999999\n'); // stale: no such process

    const restore = await runCli(['restore', backupFile, '--json', '--config', configPath]);
    expect(restore.exitCode).toBe(0);
    const { previous } = JSON.parse(restore.stdout) as { previous: string };
    expect(existsSync(previous)).toBe(true);
    expect(statSync(dbPath).mode & 0o777).toBe(0o600);

    await withApp(
      configPath,
      async (send) => {
        const secret = await send('GET', `/v1/resources/${secretId}`);
        expect(secret.status).toBe(200);
        expect(secret.json.value).toBe(MARKER);
        const restoredEntries = await send('GET', '/v1/audit-logs?action=instance.restore');
        expect(restoredEntries.json.data).toHaveLength(1);
        expect(restoredEntries.json.data[0].actor.type).toBe('local_user');
      },
      token,
    );
    expect((await runCli(['audit', 'verify', '--config', configPath])).exitCode).toBe(0);
  });

  test('a backup sealed with another master key, or a non-Secryn file, is refused and nothing changes', async () => {
    using dir = tempDir();
    using other = tempDir();
    const { configPath } = await initInstance(dir.path);
    const { configPath: otherConfig } = await initInstance(other.path);
    const foreign = join(other.path, 'foreign.db');
    expect((await runCli(['backup', foreign, '--config', otherConfig])).exitCode).toBe(0);
    const dbPath = join(dir.path, 'data/secryn.db');
    const before = readFileSync(dbPath);

    const wrongKey = await runCli(['restore', foreign, '--config', configPath]);
    expect(wrongKey.exitCode).toBe(1);
    expect(wrongKey.stderr).toMatch(
      /sealed with master key [0-9a-f]+, but the configured key is [0-9a-f]+/,
    );

    const garbage = join(dir.path, 'garbage.db');
    writeFileSync(garbage, 'not a database at all '.repeat(100));
    const notSecryn = await runCli(['restore', garbage, '--config', configPath]);
    expect(notSecryn.exitCode).toBe(1);
    expect(notSecryn.stderr).toContain('not a SQLite database');

    expect(readFileSync(dbPath).equals(before)).toBe(true);
  });

  test('a backup of an empty database file names the source, writes nothing and leaves it empty', async () => {
    using dir = tempDir();
    const { configPath } = await initInstance(dir.path);
    const dbPath = join(dir.path, 'data/secryn.db');
    writeFileSync(dbPath, '');
    const target = join(dir.path, 'n2.db');
    const backup = await runCli(['backup', target, '--config', configPath]);
    expect(backup.exitCode).toBe(1);
    expect(backup.stderr).toBe(
      `secryn: ${dbPath} (storage.path) is not a Secryn database; nothing was written\n`,
    );
    expect(existsSync(target)).toBe(false);
    expect(statSync(dbPath).size).toBe(0);
  });

  test('a backup that fails on a damaged page leaves no file, so the next attempt is not blocked', async () => {
    using dir = tempDir();
    const { configPath } = await initInstance(dir.path);
    const dbPath = join(dir.path, 'data/secryn.db');
    corruptTablePage(dbPath, '__drizzle_migrations');
    const target = join(dir.path, 'snapshot.db');
    for (let attempt = 0; attempt < 2; attempt++) {
      const backup = await runCli(['backup', target, '--config', configPath]);
      expect(backup.exitCode).toBe(1);
      expect(backup.stderr).toBe(
        `secryn: could not back up ${dbPath}: database disk image is malformed; nothing was written\n`,
      );
      expect(existsSync(target)).toBe(false);
      expect(existsSync(`${target}-journal`)).toBe(false);
    }
  });

  test('the backup file is 0600 from its first byte, whatever the umask', async () => {
    using dir = tempDir();
    const { configPath } = await initInstance(dir.path);
    const dbPath = join(dir.path, 'data/secryn.db');
    growDatabase(dbPath, 32 * 1024 * 1024); // so that VACUUM INTO runs long enough to be watched
    const target = join(dir.path, 'watched.db');
    const stopFile = join(dir.path, 'stop');
    const watcher = watchModes(target, stopFile);
    await watcher.ready;
    const previousUmask = process.umask(0o022); // what SQLite's 0644 would keep readable
    try {
      const { config } = loadConfig({ path: configPath, env: {} });
      createBackup(config, target, systemClock);
    } finally {
      process.umask(previousUmask);
      writeFileSync(stopFile, '');
    }
    const modes = await watcher.modes;
    expect(modes.length).toBeGreaterThan(0);
    expect([...new Set(modes)].map((m) => m.toString(8))).toEqual(['600']);
  });

  for (const damage of ['truncated', 'not a database'] as const) {
    test(`restore over a damaged database (${damage}) moves it aside as it was, with its -wal and -shm`, async () => {
      using dir = tempDir();
      const { configPath } = await initInstance(dir.path);
      const backupFile = join(dir.path, 'snapshot.db');
      expect((await runCli(['backup', backupFile, '--config', configPath])).exitCode).toBe(0);
      const dbPath = join(dir.path, 'data/secryn.db');
      const damaged = damageDatabase(dbPath, damage);

      const restore = await runCli(['restore', backupFile, '--json', '--config', configPath]);
      expect(restore.stderr).toBe('');
      expect(restore.exitCode).toBe(0);
      const result = JSON.parse(restore.stdout) as {
        previous: string;
        previous_files: string[];
        previous_unreadable: string;
      };
      expect(result.previous_unreadable).toMatch(/malformed|not a database/);
      expect(result.previous_files).toEqual([
        result.previous,
        `${result.previous}-wal`,
        `${result.previous}-shm`,
      ]);
      expect(readFileSync(result.previous).equals(damaged.db)).toBe(true);
      expect(readFileSync(`${result.previous}-wal`).equals(damaged.wal)).toBe(true);
      expect((await runCli(['audit', 'verify', '--config', configPath])).exitCode).toBe(0);
    });
  }

  test('restore over a damaged database says, in words, where the damaged files are kept', async () => {
    using dir = tempDir();
    const { configPath } = await initInstance(dir.path);
    const backupFile = join(dir.path, 'snapshot.db');
    expect((await runCli(['backup', backupFile, '--config', configPath])).exitCode).toBe(0);
    damageDatabase(join(dir.path, 'data/secryn.db'), 'not a database');
    const restore = await runCli(['restore', backupFile, '--config', configPath]);
    expect(restore.exitCode).toBe(0);
    expect(restore.stdout).toMatch(
      /the replaced database could not be read \(file is not a database\); it is kept as it was at \S+\.pre-restore-\d{8}T\d{6}Z \(with its -wal and -shm\)\n$/,
    );
  });

  test('a restore that fails over a damaged database puts the damaged files back as they were', async () => {
    using dir = tempDir();
    const { configPath } = await initInstance(dir.path);
    const backupFile = join(dir.path, 'snapshot.db');
    expect((await runCli(['backup', backupFile, '--config', configPath])).exitCode).toBe(0);
    // A backup this build cannot open (migrated by a newer one): it fails after the move aside.
    const sqlite = new Database(backupFile);
    sqlite.run(
      "INSERT INTO __drizzle_migrations (hash, created_at) VALUES ('0'||hex(randomblob(31)), 4102444800000)",
    );
    sqlite.close();
    const dbPath = join(dir.path, 'data/secryn.db');
    const damaged = damageDatabase(dbPath, 'truncated');

    const restore = await runCli(['restore', backupFile, '--config', configPath]);
    expect(restore.exitCode).toBe(1);
    expect(restore.stderr).toContain('made by another Secryn build');
    expect(readFileSync(dbPath).equals(damaged.db)).toBe(true);
    expect(readFileSync(`${dbPath}-wal`).equals(damaged.wal)).toBe(true);
    expect(readdirSync(join(dir.path, 'data')).filter((f) => f.includes('pre-restore'))).toEqual(
      [],
    );
  });

  test('restore refuses, moving nothing, while another process keeps the WAL from being checkpointed', async () => {
    using dir = tempDir();
    const { configPath, backupFile, dbPath } = await backedUpWithShortBusyTimeout(dir.path);
    // A commit still in the WAL, and a reader (say, a sqlite3 shell) holding a snapshot of it.
    const writer = new Database(dbPath);
    writer.run('CREATE TABLE operator_note (note TEXT)');
    writer.run("INSERT INTO operator_note VALUES ('only in the WAL')");
    const reader = new Database(dbPath, { readonly: true });
    reader.run('BEGIN');
    reader.query('SELECT count(*) FROM operator_note').get();

    const refused = await runCli(['restore', backupFile, '--config', configPath]);
    expect(refused.exitCode).toBe(75);
    expect(refused.stderr).toBe(
      `secryn: another process has ${dbPath} open or locked (its WAL could not be checkpointed); stop it before restoring\n`,
    );
    expect(readdirSync(join(dir.path, 'data')).filter((f) => f.includes('pre-restore'))).toEqual(
      [],
    );

    reader.run('COMMIT');
    reader.close();
    writer.close();
    const restore = await runCli(['restore', backupFile, '--json', '--config', configPath]);
    expect(restore.exitCode).toBe(0);
    const kept = new Database(JSON.parse(restore.stdout).previous, { readonly: true });
    expect(kept.query('SELECT note FROM operator_note').get()).toEqual({ note: 'only in the WAL' });
    kept.close();
  });

  test('a database another process holds locked is refused (exit 75), never moved aside as unreadable', async () => {
    using dir = tempDir();
    const { configPath, backupFile, dbPath } = await backedUpWithShortBusyTimeout(dir.path);
    // A process in exclusive locking mode keeps its lock after its commit.
    const holder = new Database(dbPath);
    holder.run('PRAGMA locking_mode = EXCLUSIVE');
    holder.run('CREATE TABLE operator_note (note TEXT)');
    holder.run("INSERT INTO operator_note VALUES ('held')");
    try {
      const refused = await runCli(['restore', backupFile, '--json', '--config', configPath]);
      expect(refused.exitCode).toBe(75);
      expect(refused.stderr).toContain(`another process has ${dbPath} open or locked`);
      expect(readdirSync(join(dir.path, 'data')).filter((f) => f.includes('pre-restore'))).toEqual(
        [],
      );
    } finally {
      holder.close();
    }
    const note = new Database(dbPath, { readonly: true });
    expect(note.query('SELECT note FROM operator_note').get()).toEqual({ note: 'held' });
    note.close();
  });

  test('restores in the same second keep every replaced database: a kept file is never overwritten', async () => {
    using dir = tempDir();
    const { configPath } = await initInstance(dir.path);
    const backupFile = join(dir.path, 'snapshot.db');
    expect((await runCli(['backup', backupFile, '--config', configPath])).exitCode).toBe(0);
    const dbPath = join(dir.path, 'data/secryn.db');
    // Earlier restores' kept databases, under every name the next restores could pick by time.
    const decoys = keptDatabaseDecoys(dbPath);

    const previous: string[] = [];
    for (let i = 0; i < 2; i++) {
      const restore = await runCli(['restore', backupFile, '--json', '--config', configPath]);
      expect(restore.exitCode).toBe(0);
      previous.push(JSON.parse(restore.stdout).previous);
    }
    expect(previous[0]).toMatch(/\.pre-restore-\d{8}T\d{6}Z-2$/);
    expect(new Set(previous).size).toBe(2);
    for (const path of previous) {
      expect(decoys.has(path)).toBe(false);
      expect(readFileSync(path).subarray(0, 15).toString()).toBe('SQLite format 3');
    }
    for (const [path, content] of decoys) expect(readFileSync(path, 'utf8')).toBe(content);
  });

  test('the live database is refused as the backup, by any path, and nothing is touched', async () => {
    using dir = tempDir();
    const { configPath } = await initInstance(dir.path);
    const dbPath = join(dir.path, 'data/secryn.db');
    const before = readFileSync(dbPath);
    const decoys = keptDatabaseDecoys(dbPath);
    const viaSymlink = join(dir.path, 'symlink.db');
    symlinkSync(dbPath, viaSymlink);
    const viaHardLink = join(dir.path, 'hardlink.db');
    linkSync(dbPath, viaHardLink);
    for (const source of [dbPath, viaSymlink, viaHardLink]) {
      const restore = await runCli(['restore', source, '--config', configPath]);
      expect(restore.exitCode).toBe(1);
      expect(restore.stderr).toBe(
        `secryn: ${source} is ${dbPath}, a file of the live database, not a backup; restore from ` +
          'a file written by `secryn backup`\n',
      );
    }
    expect(readFileSync(dbPath).equals(before)).toBe(true);
    for (const [path, content] of decoys) expect(readFileSync(path, 'utf8')).toBe(content);
    expect(
      readdirSync(join(dir.path, 'data')).filter((f) => f.includes('pre-restore')),
    ).toHaveLength(decoys.size);
  });
});

/**
 * Writes `<db>.pre-restore-<stamp>` files for every second from now to 20 s ahead, each holding
 * its own text: what earlier restores in the same second would have left. Returns path → text.
 */
function keptDatabaseDecoys(dbPath: string): Map<string, string> {
  const decoys = new Map<string, string>();
  for (let s = 0; s <= 20; s++) {
    const stamp = new Date(Date.now() + s * 1000)
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}Z$/, 'Z');
    const path = `${dbPath}.pre-restore-${stamp}`;
    decoys.set(path, `kept by an earlier restore at ${stamp}`);
    writeFileSync(path, decoys.get(path)!);
  }
  return decoys;
}

/**
 * Damages the (closed) database at `dbPath` the way a crash or a bad disk does: `truncated` cuts
 * it inside its first page, `not a database` overwrites it with text. A WAL and an index that
 * are not SQLite's are put beside it. Returns the bytes written, to compare with what is kept.
 */
function damageDatabase(
  dbPath: string,
  damage: 'truncated' | 'not a database',
): { db: Buffer; wal: Buffer } {
  const db =
    damage === 'truncated'
      ? readFileSync(dbPath).subarray(0, 3000)
      : Buffer.from('not a database at all '.repeat(300));
  const wal = Buffer.from('a torn write-ahead log '.repeat(50));
  writeFileSync(dbPath, db);
  writeFileSync(`${dbPath}-wal`, wal);
  writeFileSync(`${dbPath}-shm`, Buffer.alloc(32768, 0x5a));
  return { db, wal };
}

/** Overwrites the root page of `table` with 0xff bytes, as a failing disk sector would. */
function corruptTablePage(dbPath: string, table: string): void {
  const sqlite = new Database(dbPath, { readonly: true });
  const { rootpage } = sqlite
    .query<{ rootpage: number }, [string]>('SELECT rootpage FROM sqlite_master WHERE name = ?')
    .get(table)!;
  const pageSize = sqlite.query<{ page_size: number }, []>('PRAGMA page_size').get()!.page_size;
  sqlite.close();
  const fd = openSync(dbPath, 'r+');
  writeSync(fd, Buffer.alloc(pageSize, 0xff), 0, pageSize, (rootpage - 1) * pageSize);
  closeSync(fd);
}

/** Adds `bytes` of random blobs in a table of their own (the file stays a Secryn database). */
function growDatabase(dbPath: string, bytes: number): void {
  const sqlite = new Database(dbPath);
  sqlite.run('CREATE TABLE filler (b BLOB)');
  const insert = sqlite.query('INSERT INTO filler (b) VALUES (randomblob(65536))');
  sqlite.transaction(() => {
    for (let i = 0; i < bytes / 65536; i++) insert.run();
  })();
  sqlite.close();
}

/**
 * A separate process that stats `path` in a tight loop (this one is blocked in VACUUM INTO) and,
 * once `stopFile` exists, reports every permission mode it saw.
 */
function watchModes(
  path: string,
  stopFile: string,
): { ready: Promise<void>; modes: Promise<number[]> } {
  const code = `
    const { existsSync, statSync, writeSync } = require('node:fs');
    const [path, stopFile] = process.argv.slice(-2);
    const seen = [];
    writeSync(1, 'ready\\n'); // synchronous: the loop below never yields
    while (!existsSync(stopFile)) {
      try { seen.push(statSync(path).mode & 0o777); } catch {}
    }
    writeSync(1, JSON.stringify([...new Set(seen)]) + '\\n');
  `;
  const proc = Bun.spawn([process.execPath, '-e', code, path, stopFile], { stdout: 'pipe' });
  const reader = proc.stdout.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const readUntil = async (done: () => boolean) => {
    while (!done()) {
      const chunk = await reader.read();
      if (chunk.done) throw new Error(`the watcher stopped early: ${text}`);
      text += decoder.decode(chunk.value, { stream: true });
    }
  };
  const ready = readUntil(() => text.includes('ready\n'));
  const modes = ready
    .then(() => readUntil(() => text.split('\n').length > 2))
    .then(() => JSON.parse(text.split('\n')[1]!) as number[]);
  return { ready, modes };
}
