/**
 * Crash safety of `secryn master-key rotate`: the real command runs in a child process that
 * SIGKILLs itself at each step of the protocol (SECRYN_TEST_CRASH_AT, test-only). The next start
 * must find the key file and the keyring in agreement, and every value must decrypt; a rerun of
 * `--reencrypt` finishes the job.
 */
import { describe, expect, test } from 'bun:test';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeMasterKey, generateMasterKey } from '../src/crypto/master-key.ts';
import { tempDir } from './harness.ts';
import {
  cli,
  expectEveryValueDecrypts,
  fileFingerprint,
  keyFiles,
  makeInstance,
  statusJson,
  type Setup,
} from './master-key-helpers.ts';

const KILLED = 137; // 128 + SIGKILL

async function crashAt(
  setup: Setup,
  step: string,
  args: string[],
  env: Record<string, string> = {},
) {
  const result = await cli(setup, ['master-key', 'rotate', ...args], {
    SECRYN_TEST_CRASH_AT: step,
    ...env,
  });
  expect({ step, exitCode: result.exitCode }).toEqual({ step, exitCode: KILLED });
}

/** After a crash: one start recovers; key file and database agree; every value decrypts. */
async function expectConsistent(setup: Setup, before: string) {
  const status = await statusJson(setup);
  const now = fileFingerprint(setup.keyPath);
  expect(status.fingerprint).toBe(now);
  expect(keyFiles(setup).some((f) => f.endsWith('.next'))).toBe(false);
  // Whichever key won, the other one is not lost: it is the backup (rotation done) or nothing
  // changed at all (rotation undone).
  if (now !== before) {
    expect(status.backup_files.map(fileFingerprint)).toContain(before);
  }
  await expectEveryValueDecrypts(setup);
  return status;
}

describe('rotate killed at each step (key file)', () => {
  const steps: [step: string, committed: boolean][] = [
    ['rotate:next-key-written', false],
    ['rotate:keyring-rewrapped', false],
    ['rotate:committed', true],
    ['rotate:backup-written', true],
    ['rotate:key-file-replaced', true],
    ['rotate:completed', true],
  ];
  for (const [step, committed] of steps) {
    test(step, async () => {
      using dir = tempDir();
      const setup = await makeInstance(dir.path, { values: 60, notes: 3 });
      const before = fileFingerprint(setup.keyPath);
      await crashAt(setup, step, []);
      const status = await expectConsistent(setup, before);
      expect(status.rotations).toBe(committed ? 1 : 0);
      expect(status.fingerprint !== before).toBe(committed);
      // And the instance can rotate again afterwards.
      expect((await cli(setup, ['master-key', 'rotate'])).exitCode).toBe(0);
      await expectConsistent(setup, status.fingerprint);
    });
  }
});

// `rotate --reencrypt` is a data-key rotation (1), its re-encryption, then a master-key rotation.
describe('rotate --reencrypt killed at each step, then rerun', () => {
  const steps: [step: string, rotations: number, masterRotated: boolean][] = [
    ['reencrypt:batch-written#2', 1, false],
    ['reencrypt:batch-committed#2', 1, false],
    ['reencrypt:before-complete', 1, false],
    ['rotate:keyring-rewrapped', 1, false],
    ['rotate:committed', 2, true],
    ['rotate:key-file-replaced', 2, true],
    ['rotate:completed', 2, true],
  ];
  for (const [step, rotations, masterRotated] of steps) {
    test(
      step,
      async () => {
        using dir = tempDir();
        const setup = await makeInstance(dir.path, { values: 250, notes: 4 });
        const before = fileFingerprint(setup.keyPath);
        await crashAt(setup, step, ['--reencrypt', '--batch-size', '50']);
        const interrupted = await expectConsistent(setup, before);
        expect(interrupted.rotations).toBe(rotations);
        expect(interrupted.current_data_key_version).toBe(2);
        expect(interrupted.fingerprint !== before).toBe(masterRotated);

        const rerun = await cli(setup, [
          'master-key',
          'rotate',
          '--reencrypt',
          '--batch-size',
          '50',
        ]);
        expect(rerun.exitCode).toBe(0);
        if (interrupted.reencryption) {
          expect(rerun.stdout).toContain('resuming the re-encryption of rotation 1');
        }
        const final = await expectConsistent(setup, interrupted.fingerprint);
        expect(final.reencryption).toBeNull();
        expect(final.fingerprint).not.toBe(interrupted.fingerprint);
        // Every value under the newest data key, none left under an older one.
        const values = final.data_keys.map((k) => k.values);
        expect(values.at(-1)).toBe(254);
        expect(values.slice(0, -1).every((n) => n === 0)).toBe(true);
      },
      20_000,
    ); // two CLI runs, each waiting out the re-encryption's sweep grace
  }
});

describe('rotate killed with the key in SECRYN_MASTER_KEY', () => {
  test('before the database commits: the old key still works, the orphan key file is inert', async () => {
    using dir = tempDir();
    const oldEnv = { SECRYN_MASTER_KEY: encodeMasterKey(generateMasterKey()) };
    const setup = await makeInstance(dir.path, { values: 20, env: oldEnv });
    const newKeyFile = join(dir.path, 'new.key');
    await crashAt(setup, 'rotate:new-key-file-written', ['--new-key-file', newKeyFile], oldEnv);
    expect(existsSync(newKeyFile)).toBe(true);
    expect((await statusJson(setup, oldEnv)).rotations).toBe(0);
    await expectEveryValueDecrypts(setup, { env: oldEnv });
  });

  test('after the commit: the new key file holds the key the database needs', async () => {
    using dir = tempDir();
    const oldEnv = { SECRYN_MASTER_KEY: encodeMasterKey(generateMasterKey()) };
    const setup = await makeInstance(dir.path, { values: 20, env: oldEnv });
    const newKeyFile = join(dir.path, 'new.key');
    await crashAt(setup, 'rotate:committed', ['--new-key-file', newKeyFile], oldEnv);
    const refused = await cli(setup, ['master-key', 'status'], oldEnv);
    expect(refused.exitCode).toBe(13);
    expect(refused.stderr).toContain(newKeyFile);
    const newEnv = { SECRYN_MASTER_KEY: readFileSync(newKeyFile, 'utf8').trim() };
    expect((await statusJson(setup, newEnv)).fingerprint).toBe(fileFingerprint(newKeyFile));
    await expectEveryValueDecrypts(setup, { env: newEnv });
  });
});
