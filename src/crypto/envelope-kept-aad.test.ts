/**
 * The envelope keeps the associated data of frozen locations (the vault read keeps one location
 * per cached row): these tests hold it to binding exactly as a fresh location does — a kept AAD
 * follows the value's header, never lets a value open at another location, and a location
 * that can still change (or whose owner can) is never kept.
 */
import { describe, expect, test } from 'bun:test';
import { randomBytes } from 'node:crypto';
import { openValueText, sealValue, type ValueLocation } from './envelope.ts';
import { DecryptionError } from './errors.ts';

const key = (version: number) => ({ version, key: new Uint8Array(randomBytes(32)) });
const text = (value: string) => new TextEncoder().encode(value);

function location(rowId: string): ValueLocation {
  return {
    table: 'resource_versions',
    column: 'value',
    rowId,
    version: 1,
    owner: { parentId: rowId.split(':')[0]!, projectId: 'prj_a', vaultId: 'vlt_a' },
  };
}

function frozen(rowId: string): ValueLocation {
  const where = location(rowId);
  Object.freeze(where.owner);
  return Object.freeze(where);
}

describe('kept associated data of frozen locations', () => {
  test('follows the header: values sealed under two data keys both open', () => {
    const [v1, v2] = [key(1), key(2)];
    const where = frozen('res_a:1');
    const old = sealValue(v1, text('old'), location('res_a:1'));
    const fresh = sealValue(v2, text('new'), location('res_a:1'));
    for (let round = 0; round < 2; round++) {
      expect(openValueText(v1, old, where)).toBe('old');
      expect(openValueText(v2, fresh, where)).toBe('new');
    }
  });

  test('never opens a value of another location', () => {
    const v1 = key(1);
    const [a, b] = [frozen('res_a:1'), frozen('res_b:1')];
    const sealedA = sealValue(v1, text('a'), location('res_a:1'));
    const sealedB = sealValue(v1, text('b'), location('res_b:1'));
    expect(openValueText(v1, sealedB, b)).toBe('b'); // b's AAD is now kept
    expect(() => openValueText(v1, sealedA, b)).toThrow(DecryptionError);
    expect(openValueText(v1, sealedA, a)).toBe('a');
    expect(() => openValueText(v1, sealedB, a)).toThrow(DecryptionError);
  });

  test('is not kept for a location whose owner can still change', () => {
    const v1 = key(1);
    const sealed = sealValue(v1, text('x'), location('res_a:1'));
    const where = location('res_a:1');
    Object.freeze(where); // the owner object stays mutable
    expect(openValueText(v1, sealed, where)).toBe('x');
    where.owner!.vaultId = 'vlt_other';
    expect(() => openValueText(v1, sealed, where)).toThrow(DecryptionError);
    const loose = location('res_a:1');
    expect(openValueText(v1, sealed, loose)).toBe('x');
    loose.rowId = 'res_a:2';
    expect(() => openValueText(v1, sealed, loose)).toThrow(DecryptionError);
  });
});
