import { describe, expect, test } from 'bun:test';
import { createDecipheriv, randomBytes } from 'node:crypto';
import {
  MIN_SEALED_BYTES,
  encodeFields,
  openValue,
  readDataKeyVersion,
  sealValue,
  type DataKey,
  type ValueLocation,
  type ValueOwner,
} from './envelope.ts';
import { DecryptionError } from './errors.ts';
import { sealLegacyValue } from '../../test/legacy-seal.ts';

const dataKey: DataKey = { version: 7, key: new Uint8Array(randomBytes(32)) };
const where: ValueLocation = {
  table: 'secret_versions',
  column: 'value',
  rowId: 'res_abc',
  version: 3,
};
const utf8 = new TextEncoder();

function expectDecryptionError(fn: () => unknown, reason?: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(DecryptionError);
  if (reason) expect((caught as DecryptionError).reason).toBe(reason as DecryptionError['reason']);
}

describe('sealValue / openValue', () => {
  const cases: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['1 byte', new Uint8Array([0x2a])],
    ['64 KiB', new Uint8Array(randomBytes(64 * 1024))],
    ['non-ASCII', utf8.encode('pässwörd 🔑 秘密 \u0000 end')],
  ];
  for (const [name, plaintext] of cases) {
    test(`round trip: ${name}`, () => {
      const sealed = sealValue(dataKey, plaintext, where);
      expect(sealed.byteLength).toBe(MIN_SEALED_BYTES + plaintext.byteLength);
      expect(sealed[0]).toBe(2);
      expect(readDataKeyVersion(sealed)).toBe(7);
      const opened = openValue(dataKey, sealed, where);
      expect(opened).toBeInstanceOf(Uint8Array);
      expect(Buffer.from(opened).equals(Buffer.from(plaintext))).toBe(true);
    });
  }

  test('ciphertext does not contain the plaintext and nonces are fresh', () => {
    const plaintext = utf8.encode('a'.repeat(64));
    const a = sealValue(dataKey, plaintext, where);
    const b = sealValue(dataKey, plaintext, where);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
    expect(Buffer.from(a.subarray(5, 17)).equals(Buffer.from(b.subarray(5, 17)))).toBe(false);
    expect(Buffer.from(a).includes(Buffer.from(plaintext.subarray(0, 16)))).toBe(false);
  });

  test('header layout: format byte then data-key version uint32 BE', () => {
    const sealed = sealValue({ version: 0x01020304, key: dataKey.key }, utf8.encode('x'), where);
    expect([...sealed.subarray(0, 5)]).toEqual([2, 1, 2, 3, 4]);
  });

  const plaintext = utf8.encode('the secret value');
  const sealed = sealValue(dataKey, plaintext, where);
  const regions: [string, number, string][] = [
    ['format version byte', 0, 'unsupported_format'],
    ['data-key version', 4, 'key_mismatch'],
    ['nonce', 5 + 6, 'authentication_failed'],
    ['ciphertext', 17 + 3, 'authentication_failed'],
    ['tag', sealed.byteLength - 1, 'authentication_failed'],
  ];
  for (const [region, index, reason] of regions) {
    test(`flipped bit in ${region} → DecryptionError`, () => {
      const tampered = new Uint8Array(sealed);
      tampered[index]! ^= 0x01;
      expectDecryptionError(() => openValue(dataKey, tampered, where), reason);
    });
  }

  test('flipped key version authenticated even if the key matched the new number', () => {
    const tampered = new Uint8Array(sealed);
    tampered[4]! ^= 0x01; // header now says version 6
    expectDecryptionError(
      () => openValue({ version: 6, key: dataKey.key }, tampered, where),
      'authentication_failed',
    );
  });

  test('every single-bit flip anywhere fails', () => {
    for (let bit = 0; bit < sealed.byteLength * 8; bit += 5) {
      const tampered = new Uint8Array(sealed);
      tampered[bit >> 3]! ^= 1 << (bit & 7);
      expect(() => openValue(dataKey, tampered, where)).toThrow(DecryptionError);
    }
  });

  test('truncated, short, empty and extended inputs → DecryptionError', () => {
    expectDecryptionError(() => openValue(dataKey, new Uint8Array(0), where), 'malformed');
    expectDecryptionError(() => openValue(dataKey, sealed.subarray(0, 32), where), 'malformed');
    expectDecryptionError(() =>
      openValue(dataKey, sealed.subarray(0, sealed.byteLength - 1), where),
    );
    const extended = new Uint8Array(sealed.byteLength + 1);
    extended.set(sealed);
    expectDecryptionError(() => openValue(dataKey, extended, where));
    expectDecryptionError(() => readDataKeyVersion(new Uint8Array(10)), 'malformed');
  });

  test('version 0 header is malformed', () => {
    const zero = new Uint8Array(sealed);
    zero.set([0, 0, 0, 0], 1);
    expectDecryptionError(() => readDataKeyVersion(zero), 'malformed');
  });

  test('wrong key with same version → DecryptionError', () => {
    const other: DataKey = { version: 7, key: new Uint8Array(randomBytes(32)) };
    expectDecryptionError(() => openValue(other, sealed, where), 'authentication_failed');
  });

  const moved: [string, ValueLocation][] = [
    ['table', { ...where, table: 'secret_versions2' }],
    ['column', { ...where, column: 'value2' }],
    ['rowId', { ...where, rowId: 'res_abd' }],
    ['version', { ...where, version: 4 }],
    ['version removed', { table: where.table, column: where.column, rowId: where.rowId }],
    ['version 0', { ...where, version: 0 }],
  ];
  for (const [field, other] of moved) {
    test(`opened at another ${field} → DecryptionError`, () => {
      expectDecryptionError(() => openValue(dataKey, sealed, other), 'authentication_failed');
    });
  }

  test('location fields cannot be shifted into each other (length-prefixed)', () => {
    const a = sealValue(dataKey, plaintext, { table: 'ab', column: 'c', rowId: 'r' });
    expect(() => openValue(dataKey, a, { table: 'a', column: 'bc', rowId: 'r' })).toThrow(
      DecryptionError,
    );
    const unversioned = sealValue(dataKey, plaintext, { table: 't', column: 'c', rowId: 'r' });
    expect(() =>
      openValue(dataKey, unversioned, { table: 't', column: 'c', rowId: 'r', version: 0 }),
    ).toThrow(DecryptionError);
    expect(
      new TextDecoder().decode(
        openValue(dataKey, unversioned, { table: 't', column: 'c', rowId: 'r' }),
      ),
    ).toBe('the secret value');
  });

  test('AAD is the documented length-prefixed encoding (independent decrypt)', () => {
    const u64 = (n: number) => {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigUint64(0, BigInt(n));
      return b;
    };
    const locations: ValueLocation[] = [
      where,
      { table: 't', column: 'c', rowId: 'r' },
      { table: 'tablé', column: '列', rowId: 'x'.repeat(5000), version: 2 ** 40 + 5 },
      { ...where, owner: { parentId: 'res_p', projectId: 'prj_é', vaultId: 'v'.repeat(3000) } },
      { table: 't', column: 'c', rowId: 'r', owner: { projectId: null } },
    ];
    for (const location of locations) {
      const sealed = sealValue(dataKey, plaintext, location);
      const aad = encodeFields([
        utf8.encode('secryn/v2/value'),
        sealed.subarray(0, 5),
        utf8.encode(location.table),
        utf8.encode(location.column),
        utf8.encode(location.rowId),
        location.version === undefined ? new Uint8Array(0) : u64(location.version),
        utf8.encode(location.owner?.parentId ?? ''),
        utf8.encode(location.owner?.projectId ?? ''),
        utf8.encode(location.owner?.vaultId ?? ''),
      ]);
      const decipher = createDecipheriv('aes-256-gcm', dataKey.key, sealed.subarray(5, 17));
      decipher.setAAD(aad);
      decipher.setAuthTag(sealed.subarray(sealed.byteLength - 16));
      const opened = decipher.update(sealed.subarray(17, sealed.byteLength - 16));
      decipher.final();
      expect(opened.toString()).toBe('the secret value');
      expect(new TextDecoder().decode(openValue(dataKey, sealed, location))).toBe(
        'the secret value',
      );
    }
  });

  test('a value does not open for another owner (vault, project, parent), nor without one', () => {
    const owned: ValueLocation = {
      ...where,
      owner: { parentId: 'p', projectId: 'prj_a', vaultId: 'vlt_a' },
    };
    const sealed = sealValue(dataKey, plaintext, owned);
    expect(new TextDecoder().decode(openValue(dataKey, sealed, owned))).toBe('the secret value');
    const others: ValueOwner[] = [
      { parentId: 'p', projectId: 'prj_a', vaultId: 'vlt_b' },
      { parentId: 'p', projectId: 'prj_b', vaultId: 'vlt_a' },
      { parentId: 'q', projectId: 'prj_a', vaultId: 'vlt_a' },
      { parentId: 'p', projectId: 'prj_a', vaultId: null },
      { parentId: 'p', projectId: 'prj_avlt_a', vaultId: null }, // shifted field boundary
      {},
    ];
    for (const owner of others) {
      expectDecryptionError(
        () => openValue(dataKey, sealed, { ...where, owner }),
        'authentication_failed',
      );
    }
    expectDecryptionError(() => openValue(dataKey, sealed, where), 'authentication_failed');
    // The message names the place for the log, never the data.
    expect(() => openValue(dataKey, sealed, where)).toThrow(/secret_versions\.value row res_abc/);
  });

  test('a format-1 value opens only when the migration asks for the legacy format', () => {
    const legacy = sealLegacyValue(dataKey, plaintext, where);
    expect(legacy[0]).toBe(1);
    expectDecryptionError(() => openValue(dataKey, legacy, where), 'unsupported_format');
    const owned = { ...where, owner: { vaultId: 'vlt_a', projectId: 'prj_a' } };
    expectDecryptionError(() => openValue(dataKey, legacy, owned), 'unsupported_format');
    const opened = openValue(dataKey, legacy, { ...owned, legacyFormat: true });
    expect(new TextDecoder().decode(opened)).toBe('the secret value');
    // legacyFormat does not loosen format 2, and a format-1 value stays bound to its row.
    const current = sealValue(dataKey, plaintext, owned);
    expectDecryptionError(
      () => openValue(dataKey, current, { ...where, legacyFormat: true }),
      'authentication_failed',
    );
    expectDecryptionError(
      () => openValue(dataKey, legacy, { ...where, rowId: 'res_other', legacyFormat: true }),
      'authentication_failed',
    );
  });

  test('error messages carry no key or plaintext', () => {
    const tampered = new Uint8Array(sealed);
    tampered[20]! ^= 1;
    try {
      openValue(dataKey, tampered, where);
      throw new Error('expected failure');
    } catch (error) {
      const text = `${(error as Error).message} ${(error as Error).stack ?? ''}`;
      expect(text).not.toContain(Buffer.from(dataKey.key).toString('hex'));
      expect(text).not.toContain(Buffer.from(dataKey.key).toString('base64'));
      expect(text).not.toContain('the secret value');
    }
  });

  test('the data-key version is read back as an unsigned 32-bit number', () => {
    for (const version of [1, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff]) {
      const sealed = sealValue({ version, key: dataKey.key }, plaintext, where);
      expect(readDataKeyVersion(sealed)).toBe(version);
      expect(openValue({ version, key: dataKey.key }, sealed, where)).toEqual(plaintext);
    }
  });

  test('bad key, version or location are programming errors, not DecryptionError', () => {
    expect(() => sealValue({ version: 1, key: new Uint8Array(16) }, plaintext, where)).toThrow(
      RangeError,
    );
    expect(() => sealValue({ version: 0, key: dataKey.key }, plaintext, where)).toThrow(RangeError);
    expect(() => sealValue({ version: 2 ** 32, key: dataKey.key }, plaintext, where)).toThrow(
      RangeError,
    );
    expect(() => sealValue(dataKey, plaintext, { ...where, rowId: '' })).toThrow(TypeError);
    expect(() => sealValue(dataKey, plaintext, { ...where, version: -1 })).toThrow(RangeError);
    expect(() => sealValue(dataKey, plaintext, { ...where, version: 1.5 })).toThrow(RangeError);
  });
});
