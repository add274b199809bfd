import { describe, expect, test } from 'bun:test';
import { readFileSync, writeFileSync } from 'node:fs';
import { UnknownDataKeyError } from '../crypto/errors.ts';
import { encodeMasterKey, generateMasterKey } from '../crypto/master-key.ts';
import type { Instance } from '../instance.ts';
import { tempDir } from '../../test/harness.ts';
import { makeInstance, open } from '../../test/master-key-helpers.ts';
import { rotateMasterKey } from './rotate.ts';
import { getTestValue, putTestValues, testValueColumn } from './test-fixture.ts';

function rotateWithNewDataKey(instance: Instance) {
  return rotateMasterKey(
    {
      sqlite: instance.sqlite,
      config: instance.config,
      env: {},
      clock: instance.clock,
      logger: instance.logger,
      keyring: instance.keyring,
    },
    { actor: 't', reencrypt: true, columns: [] },
  );
}

describe('LiveKeyring', () => {
  test('a failed reload keeps the loaded keys working, is logged once, and is retried', async () => {
    using dir = tempDir();
    const setup = await makeInstance(dir.path, { values: 3, notes: 0 });
    const server = open(setup, { keyringRefreshMs: 0 });
    const admin = open(setup);
    const lines = (server.logger as unknown as { lines: string[] }).lines;
    try {
      rotateWithNewDataKey(admin);
      putTestValues(admin.sqlite, admin.keyring, [{ id: 'res_v2', version: 1, plaintext: 'v2' }]);
      const goodKey = readFileSync(setup.keyPath);
      writeFileSync(setup.keyPath, encodeMasterKey(generateMasterKey()) + '\n'); // operator mistake

      expect(server.keyring.refresh()).toBe(false);
      expect(server.keyring.refresh()).toBe(false);
      expect(server.keyring.isReady()).toBe(true);
      expect(server.keyring.currentVersion).toBe(1);
      // Old values still open; new ones are sealed under the key it has.
      expect(getTestValue(server.sqlite, server.keyring, 'res_000001')).toBe(
        setup.expected.get('res_000001')!,
      );
      putTestValues(server.sqlite, server.keyring, [{ id: 'res_v1', version: 1, plaintext: 'v1' }]);
      expect(() => getTestValue(server.sqlite, server.keyring, 'res_v2')).toThrow(
        UnknownDataKeyError,
      );
      expect(lines.filter((l) => l.includes('keyring reload failed'))).toHaveLength(1);
      expect(lines.join('\n')).not.toContain(goodKey.toString('utf8').trim());

      writeFileSync(setup.keyPath, goodKey);
      expect(getTestValue(server.sqlite, server.keyring, 'res_v2')).toBe('v2');
      expect(server.keyring.currentVersion).toBe(2);
    } finally {
      await server.close();
      await admin.close();
    }
  });

  test('encrypt checks for a new data key at most once per refresh interval', async () => {
    using dir = tempDir();
    const setup = await makeInstance(dir.path, { values: 1, notes: 0 });
    const server = open(setup, { keyringRefreshMs: 1000 });
    const admin = open(setup);
    try {
      rotateWithNewDataKey(admin);
      const where = testValueColumn.at('res_x', 1);
      const versionOf = (sealed: Uint8Array) => new DataView(sealed.buffer).getUint32(1);
      expect(versionOf(server.keyring.encrypt('a', where))).toBe(1);
      await Bun.sleep(1050);
      expect(versionOf(server.keyring.encrypt('b', where))).toBe(2);
    } finally {
      await server.close();
      await admin.close();
    }
  });
});
