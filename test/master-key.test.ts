import { Database } from 'bun:sqlite';
import { describe, expect, test } from 'bun:test';
import { chmodSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeMasterKey, generateMasterKey } from '../src/crypto/master-key.ts';
import { runCli, tempDir, writeConfig } from './harness.ts';
import {
  cli,
  databaseHashes,
  expectEveryValueDecrypts,
  fileFingerprint,
  fileHash,
  keyFiles,
  makeInstance,
  statusJson,
  type Setup,
} from './master-key-helpers.ts';

/** One line on stderr, nothing on stdout, the given exit code. */
function expectRefusal(
  result: { exitCode: number; stdout: string; stderr: string },
  code: number,
  pattern: RegExp,
) {
  expect(result.exitCode).toBe(code);
  expect(result.stdout).toBe('');
  const lines = result.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}

describe('secryn init and the master key', () => {
  test('init writes the key (0600, dir 0700) with the database; refuses an existing key file', async () => {
    using dir = tempDir();
    const configPath = writeConfig(dir.path);
    const keyPath = join(dir.path, 'data/master.key');
    const dbPath = join(dir.path, 'data/secryn.db');
    const first = await runCli(['init', '--config', configPath, '--json']);
    expect(first.exitCode).toBe(0);
    const out = JSON.parse(first.stdout);
    expect(out).toMatchObject({
      created: true,
      database: dbPath,
      master_key: { source: 'file', file: keyPath, fingerprint: fileFingerprint(keyPath) },
    });
    expect(statSync(keyPath).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir.path, 'data')).mode & 0o777).toBe(0o700);

    // A key file without a database: init must not overwrite it, nor create a database.
    rmSync(dbPath);
    const keyBefore = fileHash(keyPath);
    const again = await runCli(['init', '--config', configPath]);
    expectRefusal(again, 4, /master key file already exists at .*master\.key; refusing/);
    expect(fileHash(keyPath)).toBe(keyBefore);
    expect(existsSync(dbPath)).toBe(false);
  });

  test('init with SECRYN_MASTER_KEY uses that key and writes no file', async () => {
    using dir = tempDir();
    const configPath = writeConfig(dir.path);
    const env = { SECRYN_MASTER_KEY: encodeMasterKey(generateMasterKey()) };
    const result = await runCli(['init', '--config', configPath], { env });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('SECRYN_MASTER_KEY environment variable');
    expect(result.stdout).toContain('no key file was written');
    expect(existsSync(join(dir.path, 'data/master.key'))).toBe(false);
    const status = await runCli(['master-key', 'status', '--json', '--config', configPath], {
      env,
    });
    expect(status.exitCode).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ source: 'env', key_file: null });
    // Without the variable the instance cannot start.
    const without = await runCli(['master-key', 'status', '--config', configPath]);
    expectRefusal(without, 10, /no master key found/);
  });
});

describe('a start with an unusable master key is refused and changes nothing', () => {
  const cases: {
    name: string;
    code: number;
    pattern: RegExp;
    spoil(setup: Setup): void;
  }[] = [
    {
      name: 'missing key',
      code: 10,
      pattern: /no master key found; looked in: .*master\.key/,
      spoil: (s) => rmSync(s.keyPath),
    },
    {
      name: 'key file mode 0644',
      code: 11,
      pattern: /has mode 0644; .*fix: chmod 600 .*master\.key/,
      spoil: (s) => chmodSync(s.keyPath, 0o644),
    },
    {
      name: 'truncated key',
      code: 12,
      pattern: /master key in file .*master\.key is truncated or not base64 of 32 bytes/,
      spoil: (s) => writeFileSync(s.keyPath, readFileSync(s.keyPath, 'utf8').slice(0, 30)),
    },
    {
      name: 'wrong key',
      code: 13,
      pattern:
        /wrong master key: the key from file .*fingerprint [0-9a-f]{32}.*fingerprint [0-9a-f]{32}/,
      spoil: (s) => writeFileSync(s.keyPath, encodeMasterKey(generateMasterKey()) + '\n'),
    },
  ];

  for (const { name, code, pattern, spoil } of cases) {
    test(`${name}: exit ${code} from serve and master-key status`, async () => {
      using dir = tempDir();
      const setup = await makeInstance(dir.path, { values: 5 });
      const original = readFileSync(setup.keyPath);
      spoil(setup);
      const before = databaseHashes(setup.dbPath);
      expect(before).toMatchObject({ db: expect.any(String), wal: null, shm: null });
      for (const args of [['serve'], ['master-key', 'status'], ['master-key', 'rotate']]) {
        const result = await cli(setup, args);
        expectRefusal(result, code, pattern);
        expect(databaseHashes(setup.dbPath)).toEqual(before);
      }
      // The refusal left no trace: with the right key everything is as it was.
      writeFileSync(setup.keyPath, original, { mode: 0o600 });
      chmodSync(setup.keyPath, 0o600);
      await expectEveryValueDecrypts(setup);
    });
  }
});

describe('an altered keyring in the database is exit 14, whatever was done to it', () => {
  const alterations: [string, string][] = [
    [
      'a wrapped key replaced by random bytes',
      'UPDATE keyring_data_keys SET wrapped_key = randomblob(61)',
    ],
    ['a wrapped key cut to one byte', "UPDATE keyring_data_keys SET wrapped_key = x'00'"],
    ['the data-key table dropped', 'DROP TABLE keyring_data_keys'],
    ['the keyring state table dropped', 'DROP TABLE keyring_state'],
  ];
  for (const [name, sql] of alterations) {
    test(name, async () => {
      using dir = tempDir();
      const setup = await makeInstance(dir.path, { values: 2 });
      const db = new Database(setup.dbPath);
      db.run('PRAGMA foreign_keys = OFF');
      db.run(sql);
      db.run('PRAGMA wal_checkpoint(TRUNCATE)');
      db.close();
      const before = databaseHashes(setup.dbPath);
      for (const args of [['serve'], ['master-key', 'status']]) {
        const result = await cli(setup, args);
        expectRefusal(
          result,
          14,
          /stored keyring was (altered|removed) \(restore it from a backup\)/,
        );
        expect(databaseHashes(setup.dbPath)).toEqual(before);
      }
    });
  }
});

describe('secryn master-key status and rotate', () => {
  test('status --json before and after rotate and rotate --reencrypt', async () => {
    using dir = tempDir();
    const setup = await makeInstance(dir.path, { values: 40, notes: 3 });
    const initial = await statusJson(setup);
    expect(initial).toEqual({
      fingerprint: fileFingerprint(setup.keyPath),
      source: 'file',
      key_file: setup.keyPath,
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      last_rotated_at: null,
      rotations: 0,
      current_data_key_version: 1,
      data_keys: [{ version: 1, created_at: initial.created_at, current: true, values: 43 }],
      unreadable_values: 0,
      reencryption: null,
      backup_files: [],
    });

    const rotate = await cli(setup, ['master-key', 'rotate']);
    expect(rotate.exitCode).toBe(0);
    expect(rotate.stdout).toMatch(
      new RegExp(`fingerprint ${initial.fingerprint} -> ${fileFingerprint(setup.keyPath)}`),
    );
    expect(rotate.stdout).toMatch(/old key is kept at .*\.bak; remove it once you have a backup/);
    const afterRotate = await statusJson(setup);
    // (read before toMatchObject, which replaces matched fields with the matchers in bun 1.4)
    const backupFile = afterRotate.backup_files[0]!;
    expect(fileFingerprint(backupFile)).toBe(initial.fingerprint);
    expect(afterRotate.fingerprint).toBe(fileFingerprint(setup.keyPath));
    expect(afterRotate.fingerprint).not.toBe(initial.fingerprint);
    expect(afterRotate).toMatchObject({
      last_rotated_at: expect.any(String),
      rotations: 1,
      current_data_key_version: 1,
      data_keys: [{ version: 1, current: true, values: 43 }],
      backup_files: [expect.stringMatching(/master\.key\.\d{4}-\d\d-\d\dT\d{6}Z\.bak$/)],
    });

    const rotatedFingerprint = fileFingerprint(setup.keyPath);
    const reencrypt = await cli(setup, ['master-key', 'rotate', '--reencrypt', '--json']);
    expect(reencrypt.exitCode).toBe(0);
    expect(reencrypt.stderr).toBe(''); // no progress bar without a TTY
    expect(JSON.parse(reencrypt.stdout)).toMatchObject({
      resumed: false,
      old_fingerprint: rotatedFingerprint,
      new_fingerprint: fileFingerprint(setup.keyPath),
      reencryption: { data_key_version: 2, reencrypted: 43, remaining: 0, completed: true },
    });
    const final = await statusJson(setup);
    expect(final).toMatchObject({
      // rotate, then rotate --reencrypt: a data-key rotation and a master-key rotation.
      rotations: 3,
      current_data_key_version: 2,
      data_keys: [
        { version: 1, current: false, values: 0 },
        { version: 2, current: true, values: 43 },
      ],
      reencryption: null,
    });
    expect(final.backup_files).toHaveLength(2);
    expect(keyFiles(setup).filter((f) => f.endsWith('.next'))).toEqual([]);
    await expectEveryValueDecrypts(setup);

    const text = await cli(setup, ['master-key', 'status']);
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toContain(`fingerprint    ${final.fingerprint}`);
    expect(text.stdout).toMatch(/v2 \(current\) .* 43 value\(s\)/);
  });

  test('a key from the environment: rotate needs --new-key-file and explains the next steps', async () => {
    using dir = tempDir();
    const oldKey = encodeMasterKey(generateMasterKey());
    const setup = await makeInstance(dir.path, { values: 6, env: { SECRYN_MASTER_KEY: oldKey } });
    const env = { SECRYN_MASTER_KEY: oldKey };
    const before = databaseHashes(setup.dbPath);

    const refused = await cli(setup, ['master-key', 'rotate'], env);
    expectRefusal(refused, 2, /environment variable SECRYN_MASTER_KEY.*--new-key-file PATH/);
    expect(databaseHashes(setup.dbPath)).toEqual(before);

    const taken = join(dir.path, 'taken.key');
    writeFileSync(taken, 'not mine');
    const exists = await cli(setup, ['master-key', 'rotate', '--new-key-file', taken], env);
    expectRefusal(exists, 1, /refusing to overwrite existing master key file .*taken\.key/);
    expect(readFileSync(taken, 'utf8')).toBe('not mine');

    const newKeyFile = join(dir.path, 'new.key');
    const rotated = await cli(setup, ['master-key', 'rotate', '--new-key-file', newKeyFile], env);
    expect(rotated.exitCode).toBe(0);
    expect(rotated.stdout).toContain(`the new key is in ${newKeyFile} (mode 0600)`);
    expect(rotated.stdout).toContain(
      'SECRYN_MASTER_KEY environment variable (a start with the old key is refused',
    );
    expect(statSync(newKeyFile).mode & 0o777).toBe(0o600);

    const stale = await cli(setup, ['master-key', 'status'], env);
    expectRefusal(stale, 13, new RegExp(`wrong master key: .*wrote the new key to ${newKeyFile}`));
    const newEnv = { SECRYN_MASTER_KEY: readFileSync(newKeyFile, 'utf8').trim() };
    expect((await statusJson(setup, newEnv)).fingerprint).toBe(fileFingerprint(newKeyFile));
    await expectEveryValueDecrypts(setup, { env: newEnv });
  });

  test('--help lists the master-key commands; a bad --batch-size is a usage error', async () => {
    const help = await runCli(['master-key', '--help']);
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toContain('rotate');
    expect(help.stdout).toContain('status');
    const bad = await runCli(['master-key', 'rotate', '--batch-size', '0']);
    expectRefusal(bad, 2, /--batch-size must be an integer/);
  });
});

describe('rotation is recorded', () => {
  test('master-key rotate writes a master_key.rotate audit entry and a master_key.rotated event', async () => {
    using dir = tempDir();
    const configPath = writeConfig(dir.path);
    expect((await runCli(['init', '--config', configPath])).exitCode).toBe(0);
    expect((await runCli(['master-key', 'rotate', '--config', configPath])).exitCode).toBe(0);
    const exported = await runCli(['audit', 'export', '--format', 'jsonl', '--config', configPath]);
    expect(exported.exitCode).toBe(0);
    const entries = exported.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { action: string; actor: { type: string } });
    expect(entries.filter((entry) => entry.action === 'master_key.rotate')).toEqual([
      expect.objectContaining({ actor: expect.objectContaining({ type: 'local_user' }) }),
    ]);
    expect((await runCli(['audit', 'verify', '--config', configPath])).exitCode).toBe(0);
    const { Database } = await import('bun:sqlite');
    const db = new Database(join(dir.path, 'data/secryn.db'), { readonly: true });
    const events = db.query(`SELECT type FROM events WHERE type = 'master_key.rotated'`).all();
    db.close();
    expect(events).toHaveLength(1);
  });
});
