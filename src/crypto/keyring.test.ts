import { describe, expect, test } from 'bun:test';
import { randomBytes } from 'node:crypto';
import type { ValueLocation } from './envelope.ts';
import {
  DecryptionError,
  NoCurrentDataKeyError,
  UnknownDataKeyError,
  WrongMasterKeyError,
} from './errors.ts';
import {
  Keyring,
  WRAPPED_DATA_KEY_BYTES,
  generateDataKey,
  masterKeyFingerprint,
  unwrapDataKey,
  wrapDataKey,
} from './keyring.ts';

const where: ValueLocation = {
  table: 'secret_versions',
  column: 'value',
  rowId: 'res_1',
  version: 1,
};
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

describe('Keyring', () => {
  test('empty keyring cannot encrypt', () => {
    const ring = new Keyring();
    expect(ring.currentVersion).toBeUndefined();
    expect(ring.isReady).toBe(false);
    expect(() => ring.encrypt('x', where)).toThrow(NoCurrentDataKeyError);
  });

  test('round trips bytes and strings, incl. empty, non-ASCII and a leading BOM', () => {
    const ring = new Keyring([{ version: 1, key: generateDataKey() }]);
    for (const value of ['', 'a', 'pässwörd 🔑 秘密', '\uFEFFbom-first', 'x'.repeat(65536)]) {
      expect(ring.decryptString(ring.encrypt(value, where), where)).toBe(value);
    }
    const bytes = new Uint8Array(randomBytes(300));
    expect(hex(ring.decrypt(ring.encrypt(bytes, where), where))).toBe(hex(bytes));
  });

  test('encrypts with the current key and decrypts older versions', () => {
    const ring = new Keyring();
    ring.add({ version: 1, key: generateDataKey() }, true);
    const old = ring.encrypt('old', where);
    ring.add({ version: 2, key: generateDataKey() }, true);
    const fresh = ring.encrypt('new', where);
    expect(ring.currentVersion).toBe(2);
    expect(ring.versions()).toEqual([1, 2]);
    expect(ring.has(1) && ring.has(2) && !ring.has(3)).toBe(true);
    expect(fresh[4]).toBe(2);
    expect(old[4]).toBe(1);
    expect(ring.decryptString(old, where)).toBe('old');
    expect(ring.decryptString(fresh, where)).toBe('new');
  });

  test('add without makeCurrent keeps the current key', () => {
    const ring = new Keyring([{ version: 5, key: generateDataKey() }]);
    ring.add({ version: 9, key: generateDataKey() }, false);
    expect(ring.currentVersion).toBe(5);
    expect(ring.versions()).toEqual([5, 9]);
  });

  test('constructor defaults current to the highest version and validates an explicit one', () => {
    const keys = [3, 10, 2].map((version) => ({ version, key: generateDataKey() }));
    expect(new Keyring(keys).currentVersion).toBe(10);
    expect(new Keyring(keys, 3).currentVersion).toBe(3);
    expect(() => new Keyring(keys, 4)).toThrow(RangeError);
  });

  test('re-adding a version: same bytes ok, other bytes refused', () => {
    const key = generateDataKey();
    const ring = new Keyring([{ version: 1, key }]);
    ring.add({ version: 1, key: new Uint8Array(key) }, true);
    expect(() => ring.add({ version: 1, key: generateDataKey() }, true)).toThrow(RangeError);
  });

  test('copies key bytes so later mutation by the caller has no effect', () => {
    const key = generateDataKey();
    const ring = new Keyring([{ version: 1, key }]);
    const sealed = ring.encrypt('v', where);
    key.fill(0);
    expect(ring.decryptString(sealed, where)).toBe('v');
  });

  test('unknown version → UnknownDataKeyError carrying the version', () => {
    const writer = new Keyring([{ version: 42, key: generateDataKey() }]);
    const reader = new Keyring([{ version: 1, key: generateDataKey() }]);
    const sealed = writer.encrypt('x', where);
    let caught: unknown;
    try {
      reader.decrypt(sealed, where);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(UnknownDataKeyError);
    expect((caught as UnknownDataKeyError).version).toBe(42);
  });

  test('tampered or moved ciphertext → DecryptionError', () => {
    const ring = new Keyring([{ version: 1, key: generateDataKey() }]);
    const sealed = ring.encrypt('x', where);
    const tampered = new Uint8Array(sealed);
    tampered[tampered.byteLength - 1]! ^= 0x80;
    expect(() => ring.decrypt(tampered, where)).toThrow(DecryptionError);
    expect(() => ring.decrypt(sealed, { ...where, rowId: 'res_2' })).toThrow(DecryptionError);
    expect(() => ring.decrypt(new Uint8Array(3), where)).toThrow(DecryptionError);
  });

  test('decryptString refuses invalid UTF-8', () => {
    const ring = new Keyring([{ version: 1, key: generateDataKey() }]);
    const sealed = ring.encrypt(new Uint8Array([0xc3, 0x28]), where);
    let caught: unknown;
    try {
      ring.decryptString(sealed, where);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(DecryptionError);
    expect((caught as DecryptionError).reason).toBe('invalid_utf8');
  });
});

describe('wrapDataKey / unwrapDataKey', () => {
  const masterKey = new Uint8Array(randomBytes(32));

  test('round trip', () => {
    const dek = generateDataKey();
    const wrapped = wrapDataKey(masterKey, 3, dek);
    expect(wrapped.byteLength).toBe(WRAPPED_DATA_KEY_BYTES);
    expect(Buffer.from(wrapped).includes(Buffer.from(dek))).toBe(false);
    expect(hex(unwrapDataKey(masterKey, 3, wrapped))).toBe(hex(dek));
  });

  test('wrong master key → WrongMasterKeyError', () => {
    const wrapped = wrapDataKey(masterKey, 3, generateDataKey());
    const otherMaster = new Uint8Array(randomBytes(32));
    expect(() => unwrapDataKey(otherMaster, 3, wrapped)).toThrow(WrongMasterKeyError);
  });

  test('wrapped key presented as another version fails', () => {
    const wrapped = wrapDataKey(masterKey, 3, generateDataKey());
    expect(() => unwrapDataKey(masterKey, 4, wrapped)).toThrow(WrongMasterKeyError);
  });

  test('tampered or malformed blobs fail', () => {
    const wrapped = wrapDataKey(masterKey, 3, generateDataKey());
    for (const index of [1, 20, WRAPPED_DATA_KEY_BYTES - 1]) {
      const tampered = new Uint8Array(wrapped);
      tampered[index]! ^= 1;
      expect(() => unwrapDataKey(masterKey, 3, tampered)).toThrow(WrongMasterKeyError);
    }
    const badFormat = new Uint8Array(wrapped);
    badFormat[0] = 2;
    expect(() => unwrapDataKey(masterKey, 3, badFormat)).toThrow(DecryptionError);
    expect(() => unwrapDataKey(masterKey, 3, wrapped.subarray(1))).toThrow(DecryptionError);
  });

  test('message names the version, not the key', () => {
    const wrapped = wrapDataKey(masterKey, 3, generateDataKey());
    const otherMaster = new Uint8Array(randomBytes(32));
    try {
      unwrapDataKey(otherMaster, 3, wrapped);
      throw new Error('expected failure');
    } catch (error) {
      expect((error as WrongMasterKeyError).dataKeyVersion).toBe(3);
      expect((error as Error).message).not.toContain(hex(otherMaster));
      expect((error as Error).message).not.toContain(Buffer.from(otherMaster).toString('base64'));
    }
  });
});

describe('masterKeyFingerprint', () => {
  test('stable, 32 hex chars, differs per key, reveals no key bytes', () => {
    const a = new Uint8Array(randomBytes(32));
    const b = new Uint8Array(randomBytes(32));
    const fa = masterKeyFingerprint(a);
    expect(fa).toMatch(/^[0-9a-f]{32}$/);
    expect(masterKeyFingerprint(new Uint8Array(a))).toBe(fa);
    expect(masterKeyFingerprint(b)).not.toBe(fa);
    expect(hex(a)).not.toContain(fa);
    expect(fa).not.toContain(hex(a).slice(0, 8));
    expect(Buffer.from(a).toString('base64')).not.toContain(fa);
    const plainHash = new Bun.CryptoHasher('sha256').update(a).digest('hex');
    expect(plainHash.startsWith(fa)).toBe(false);
  });

  test('known answer (guards the label and construction)', () => {
    expect(masterKeyFingerprint(new Uint8Array(32))).toBe(
      new Bun.CryptoHasher('sha256', new Uint8Array(32))
        .update('secryn/v1/master-key-fingerprint')
        .digest('hex')
        .slice(0, 32),
    );
  });
});
