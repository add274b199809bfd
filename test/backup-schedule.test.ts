/**
 * Scheduled, age-encrypted backups: the scheduler of `serve` runs on an injected clock and timer,
 * writes backups that hold no plain SQLite bytes, prunes to exactly keep_last after a success,
 * records backup.completed / backup.failed; `secryn restore --identity` and `secryn backup
 * verify` open them only with the identity (cross-checked with Debian's `age` when installed),
 * verify detects a damaged file, and a restore keeps the replaced database's owner and mode.
 */
import { describe, expect, test } from 'bun:test';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  BackupScheduler,
  nextRunAfter,
  parseSchedule,
  type Timers,
} from '../src/backup/schedule.ts';
import { manualClock } from '../src/clock.ts';
import { loadConfig } from '../src/config/load.ts';
import { openInstance } from '../src/instance.ts';
import { buildApp } from '../src/server.ts';
import { fillDatabase } from './fill-database.ts';
import { memoryLogger, runCli, tempDir, writeConfig } from './harness.ts';

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

/** A timer that fires only when the test says so, remembering the delay it was set for. */
function manualTimers(): Timers & { fire(): void; delay(): number | null } {
  let pending: { callback: () => void; delayMs: number } | null = null;
  return {
    set(callback, delayMs) {
      pending = { callback, delayMs };
      return pending;
    },
    clear(handle) {
      if (pending === handle) pending = null;
    },
    fire() {
      const job = pending;
      pending = null;
      job?.callback();
    },
    delay: () => pending?.delayMs ?? null,
  };
}

async function newIdentity(dir: string, name = 'backup.key') {
  const identity = await generateX25519Identity();
  const path = join(dir, name);
  writeFileSync(path, `# created by the test\n${identity}\n`, { mode: 0o600 });
  return { path, recipient: await identityToRecipient(identity) };
}

async function initInstance(dir: string, extraToml = '') {
  const configPath = writeConfig(dir, extraToml);
  const init = await runCli(['init', '--json', '--config', configPath]);
  expect(init.exitCode).toBe(0);
  return configPath;
}

/** Waits until the scheduler has finished the run the timer started. */
async function settled(scheduler: BackupScheduler): Promise<void> {
  for (let i = 0; i < 500 && scheduler.status().running; i++) await Bun.sleep(5);
  await Bun.sleep(0);
}

describe('schedule', () => {
  test('daily HH:MM is the next UTC occurrence; every N is aligned to the epoch', () => {
    const at = Date.UTC(2026, 0, 1, 2, 30);
    expect(nextRunAfter(parseSchedule('daily 03:00'), at)).toBe(Date.UTC(2026, 0, 1, 3, 0));
    expect(nextRunAfter(parseSchedule('daily 02:30'), at)).toBe(Date.UTC(2026, 0, 2, 2, 30));
    expect(nextRunAfter(parseSchedule('every 6h'), at)).toBe(Date.UTC(2026, 0, 1, 6, 0));
    expect(nextRunAfter(parseSchedule('every 15m'), at)).toBe(Date.UTC(2026, 0, 1, 2, 45));
    expect(() => parseSchedule('hourly')).toThrow(/daily HH:MM/);
  });
});

describe('scheduled encrypted backups', () => {
  test('run on the injected clock, are encrypted, prune to exactly keep_last, restore only with the identity', async () => {
    using dir = tempDir();
    const key = await newIdentity(dir.path);
    const other = await newIdentity(dir.path, 'other.key');
    const backups = join(dir.path, 'backups');
    require('node:fs').mkdirSync(backups);
    const configPath = await initInstance(
      dir.path,
      `[backup]\nschedule = "every 1h"\ndirectory = "${backups}"\nkeep_last = 2\nencrypt_to = ["${key.recipient}"]\n`,
    );
    // A file that is not a scheduled backup is never pruned.
    writeFileSync(join(backups, 'notes.txt'), 'keep me');
    const { config } = loadConfig({ path: configPath, env: {} });
    const clock = manualClock(Date.UTC(2026, 0, 1, 0, 30));
    const instance = openInstance(config, memoryLogger(), { env: {}, clock });
    const timers = manualTimers();
    const scheduler = new BackupScheduler(instance, { timers, env: {} });
    try {
      scheduler.start();
      expect(timers.delay()).toBe(30 * 60_000);
      expect(scheduler.status().nextRunAt).toBe(Date.UTC(2026, 0, 1, 1, 0));
      for (let run = 0; run < 3; run++) {
        clock.advance(run === 0 ? 30 * 60_000 : 3_600_000);
        timers.fire();
        await settled(scheduler);
        expect(scheduler.status().lastError).toBeNull();
      }
      expect(scheduler.status().successes).toBe(3);
      expect(scheduler.status().lastSuccessAt).toBe(Date.UTC(2026, 0, 1, 3, 0));
      const names = readdirSync(backups).sort();
      expect(names).toEqual([
        'notes.txt',
        'secryn-20260101T020000Z.db.age',
        'secryn-20260101T030000Z.db.age',
      ]);
      for (const name of names.slice(1)) {
        const bytes = readFileSync(join(backups, name));
        expect(bytes.includes(SQLITE_MAGIC)).toBe(false);
        expect(bytes.subarray(0, 21).toString()).toBe('age-encryption.org/v1');
        expect(statSync(join(backups, name)).mode & 0o777).toBe(0o600);
      }
      const events = instance.sqlite
        .query<{ type: string; payload: string }, []>('SELECT type, payload FROM events')
        .all()
        .filter((e) => e.type.startsWith('backup.'));
      expect(events.map((e) => e.type)).toEqual(Array(3).fill('backup.completed'));
      expect(JSON.parse(events[2]!.payload).data.object).toMatchObject({
        file: 'secryn-20260101T030000Z.db.age',
        encrypted: true,
        recipients: 1,
      });
    } finally {
      await scheduler.stop();
      await instance.close();
    }

    const newest = join(backups, 'secryn-20260101T030000Z.db.age');
    const without = await runCli(['restore', newest, '--config', configPath]);
    expect(without.exitCode).not.toBe(0);
    expect(without.stderr).toMatch(/--identity/);
    const wrong = await runCli([
      'restore',
      newest,
      '--identity',
      other.path,
      '--config',
      configPath,
    ]);
    expect(wrong.exitCode).not.toBe(0);
    expect(wrong.stderr).toMatch(/not encrypted to the given identity/);
    const verified = await runCli([
      'backup',
      'verify',
      newest,
      '--identity',
      key.path,
      '--json',
      '--config',
      configPath,
    ]);
    expect(verified.exitCode).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true, encrypted: true });
    const restored = await runCli([
      'restore',
      newest,
      '--identity',
      key.path,
      '--config',
      configPath,
    ]);
    expect(restored.stderr).toBe('');
    expect(restored.exitCode).toBe(0);
    // No decrypted copy is left behind.
    expect(readdirSync(join(dir.path, 'data')).filter((n) => n.includes('decrypted'))).toEqual([]);
  });

  test('a failed run is logged, emitted as backup.failed, and prunes nothing', async () => {
    using dir = tempDir();
    const backups = join(dir.path, 'missing-directory');
    const configPath = await initInstance(
      dir.path,
      `[backup]\nschedule = "every 1h"\ndirectory = "${backups}"\nkeep_last = 1\n`,
    );
    const { config } = loadConfig({ path: configPath, env: {} });
    const logger = memoryLogger();
    const instance = openInstance(config, logger, { env: {} });
    const scheduler = new BackupScheduler(instance, { timers: manualTimers(), env: {} });
    try {
      expect(await scheduler.runNow()).toBeNull();
      expect(scheduler.status()).toMatchObject({ failures: 1, lastSuccessAt: null });
      expect(scheduler.status().lastError).toMatch(/does not exist/);
      expect(logger.lines.join('\n')).toMatch(/backup failed/);
      const types = instance.sqlite
        .query<{ type: string }, []>(`SELECT type FROM events WHERE type LIKE 'backup.%'`)
        .all();
      expect(types).toEqual([{ type: 'backup.failed' }]);
    } finally {
      await scheduler.stop();
      await instance.close();
    }
  });

  test('reschedule applies a new schedule and refuses a bad recipient without changing anything', async () => {
    using dir = tempDir();
    const configPath = await initInstance(dir.path);
    const { config } = loadConfig({ path: configPath, env: {} });
    const clock = manualClock(Date.UTC(2026, 0, 1, 0, 0, 1));
    const instance = openInstance(config, memoryLogger(), { env: {}, clock });
    const timers = manualTimers();
    const scheduler = new BackupScheduler(instance, { timers, env: {} });
    try {
      scheduler.start();
      expect(timers.delay()).toBeNull();
      const backup = { ...config.backup, schedule: 'daily 03:00', directory: dir.path };
      scheduler.reschedule(backup);
      expect(scheduler.status().nextRunAt).toBe(Date.UTC(2026, 0, 1, 3, 0));
      expect(() =>
        scheduler.reschedule({ ...backup, schedule: 'every 1h', encrypt_to: ['age1notakey'] }),
      ).toThrow(/encrypt_to\.0/);
      expect(scheduler.status().nextRunAt).toBe(Date.UTC(2026, 0, 1, 3, 0));
    } finally {
      await scheduler.stop();
      await instance.close();
    }
  });
});

describe('secryn backup --encrypt-to and backup verify', () => {
  test('by hand: encrypted, verify needs the identity, detects a damaged file; Debian age decrypts it', async () => {
    using dir = tempDir();
    const key = await newIdentity(dir.path);
    const configPath = await initInstance(dir.path);
    const file = join(dir.path, 'by-hand.db.age');
    const made = await runCli([
      'backup',
      file,
      '--encrypt-to',
      key.recipient,
      '--json',
      '--config',
      configPath,
    ]);
    expect(made.stderr).toBe('');
    expect(JSON.parse(made.stdout)).toMatchObject({ encrypted: true });
    expect(readFileSync(file).includes(SQLITE_MAGIC)).toBe(false);
    // Only the backup remains: no plain or check copy beside it.
    expect(readdirSync(dir.path).filter((n) => n.includes('secryn-tmp'))).toEqual([]);

    const noIdentity = await runCli(['backup', 'verify', file, '--config', configPath]);
    expect(noIdentity.exitCode).not.toBe(0);
    expect(noIdentity.stderr).toMatch(/encrypted with age/);

    if (Bun.which('age')) {
      const plain = join(dir.path, 'decrypted-by-age.db');
      const age = Bun.spawnSync(['age', '--decrypt', '-i', key.path, '-o', plain, file]);
      expect(age.exitCode).toBe(0);
      expect(readFileSync(plain).subarray(0, 16).equals(SQLITE_MAGIC)).toBe(true);
      const plainVerify = await runCli(['backup', 'verify', plain, '--config', configPath]);
      expect(plainVerify.exitCode).toBe(0);
    }

    const damaged = join(dir.path, 'damaged.db.age');
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    writeFileSync(damaged, bytes);
    const bad = await runCli([
      'backup',
      'verify',
      damaged,
      '--identity',
      key.path,
      '--config',
      configPath,
    ]);
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toMatch(/cannot be decrypted/);
  });

  test('a file encrypted by Debian age to our recipient restores with --identity', async () => {
    if (!Bun.which('age')) return;
    using dir = tempDir();
    const key = await newIdentity(dir.path);
    const configPath = await initInstance(dir.path);
    const plain = join(dir.path, 'plain.db');
    expect((await runCli(['backup', plain, '--config', configPath])).exitCode).toBe(0);
    const file = join(dir.path, 'by-age.db.age');
    expect(Bun.spawnSync(['age', '-r', key.recipient, '-o', file, plain]).exitCode).toBe(0);
    const restored = await runCli([
      'restore',
      file,
      '--identity',
      key.path,
      '--config',
      configPath,
    ]);
    expect(restored.stderr).toBe('');
    expect(restored.exitCode).toBe(0);
  });
});

describe('restore keeps owner and mode', () => {
  test.skipIf(process.getuid?.() !== 0)(
    'a restore run as root leaves the database with the replaced one’s owner, group and mode',
    async () => {
      using dir = tempDir();
      const configPath = await initInstance(dir.path);
      const db = join(dir.path, 'data/secryn.db');
      const backup = join(dir.path, 'snapshot.db');
      expect((await runCli(['backup', backup, '--config', configPath])).exitCode).toBe(0);
      chownSync(db, 4242, 4343);
      chmodSync(db, 0o640);
      const restored = await runCli(['restore', backup, '--config', configPath]);
      expect(restored.exitCode).toBe(0);
      const stat = statSync(db);
      expect({ uid: stat.uid, gid: stat.gid, mode: stat.mode & 0o777 }).toEqual({
        uid: 4242,
        gid: 4343,
        mode: 0o640,
      });
      for (const suffix of ['-wal', '-shm']) {
        if (existsSync(db + suffix)) expect(statSync(db + suffix).uid).toBe(4242);
      }
    },
  );
});

describe('a scheduled backup runs off the event loop', () => {
  test('health requests keep answering promptly while a large database is backed up and checked', async () => {
    using dir = tempDir();
    const backups = join(dir.path, 'backups');
    mkdirSync(backups);
    const { recipient } = await newIdentity(dir.path);
    const configPath = await initInstance(
      dir.path,
      `[backup]\nschedule = "every 1h"\ndirectory = "${backups}"\nkeep_last = 1\nencrypt_to = ["${recipient}"]\n`,
    );
    const { config } = loadConfig({ path: configPath, env: {} });
    const instance = openInstance(config, memoryLogger(), { env: {} });
    const app = buildApp(instance, {});
    const scheduler = new BackupScheduler(instance, { timers: manualTimers(), env: {} });
    try {
      fillDatabase(instance, 20_000, 60_000);
      const started = performance.now();
      const run = scheduler.runNow();
      const latencies: number[] = [];
      let done = false;
      void run.finally(() => (done = true));
      while (!done) {
        const sent = performance.now();
        const response = await app.handle(new Request('http://localhost/v1/health'));
        expect(response.status).toBe(200);
        latencies.push(performance.now() - sent);
        await Bun.sleep(10);
      }
      const result = await run;
      const backupMs = performance.now() - started;
      expect(result).not.toBeNull();
      // The backup takes long enough for a stall to show (snapshot, encryption, full check)…
      expect(backupMs).toBeGreaterThan(500);
      expect(latencies.length).toBeGreaterThan(10);
      // …and no request waited for it.
      expect(Math.max(...latencies)).toBeLessThan(200);
      // Recorded on the server's connection, through the change pipeline, as before.
      const types = instance.sqlite
        .query<{ type: string }, []>(`SELECT type FROM events WHERE type LIKE 'backup.%'`)
        .all();
      expect(types).toEqual([{ type: 'backup.completed' }]);
    } finally {
      await scheduler.stop();
      await instance.close();
    }
  }, 60_000);
});
