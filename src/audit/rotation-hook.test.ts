import { afterEach, beforeEach, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../config/load.ts';
import { createInstance, type Instance } from '../instance.ts';
import { emitMasterKeyRotated } from '../keyring/hooks.ts';
import type { RotationRecord } from '../keyring/store.ts';
import { createLogger } from '../log/logger.ts';
import './rotation-hook.ts';
import { verifyChain } from './verify.ts';

let dir: string;
let instance: Instance;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'secryn-'));
  const config = validateConfig({
    storage: { path: join(dir, 'secryn.db') },
    encryption: { master_key_file: join(dir, 'master.key') },
  });
  instance = createInstance(config, createLogger({ level: 'silent', format: 'json' }));
});
afterEach(async () => {
  await instance.close();
  rmSync(dir, { recursive: true, force: true });
});

const rotation: RotationRecord = {
  id: 1,
  rotatedAt: Date.UTC(2026, 5, 1),
  completedAt: null,
  actor: 'ops',
  oldFingerprint: 'aaaa',
  newFingerprint: 'bbbb',
  keySource: 'file',
  keyFile: '/etc/secryn/master.key',
  backupFile: null,
  newKeyFile: null,
  newDataKeyVersion: null,
  reencryptCompletedAt: null,
  reencryptedValues: 0,
};

test('a master-key rotation is audited inside its own transaction', () => {
  instance.sqlite.transaction(() => emitMasterKeyRotated({ rotation, sqlite: instance.sqlite }))();
  const rows = instance.sqlite
    .query('SELECT actor_type, actor_id, action, target_type, target_id, at FROM audit_log')
    .all();
  expect(rows).toEqual([
    {
      actor_type: 'local_user',
      actor_id: 'ops',
      action: 'master_key.rotate',
      target_type: 'master_key',
      target_id: 'bbbb',
      at: rotation.rotatedAt,
    },
  ]);
  expect(verifyChain(instance.sqlite).intact).toBe(true);
});

test('a rotation whose entry cannot be written is aborted with it', () => {
  instance.sqlite.run(
    "CREATE TRIGGER refuse BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'no'); END",
  );
  expect(() =>
    instance.sqlite.transaction(() =>
      emitMasterKeyRotated({ rotation, sqlite: instance.sqlite }),
    )(),
  ).toThrow();
});
