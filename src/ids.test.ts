import { describe, expect, test } from 'bun:test';
import { TypeID } from 'typeid-js';
import { newTypeId, pooledRandomBytes } from './ids.ts';

describe('newTypeId', () => {
  test('makes valid TypeIDs over UUIDv7 with the given time', () => {
    const at = Date.UTC(2026, 10, 26, 12, 0, 0, 123);
    const id = newTypeId('aud', at);
    expect(id).toMatch(/^aud_[0-7][0-9a-hjkmnp-tv-z]{25}$/);
    const uuid = TypeID.fromString(id, 'aud').toUUID();
    expect(uuid[14]).toBe('7'); // version
    expect('89ab').toContain(uuid[19]!); // variant 10xx
    expect(parseInt(uuid.replaceAll('-', '').slice(0, 12), 16)).toBe(at);
  });

  test('ids increase within one millisecond and when the clock steps back', () => {
    const at = Date.UTC(2030, 0, 1);
    const ids = [
      ...Array.from({ length: 5_000 }, () => newTypeId('res', at)),
      newTypeId('res', at - 5_000),
      newTypeId('res', at + 1),
    ];
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(() => TypeID.fromString(id, 'res')).not.toThrow();
  });

  test('a new millisecond draws a fresh random field', () => {
    const a = newTypeId('x', Date.UTC(2031, 0, 1));
    const b = newTypeId('x', Date.UTC(2031, 0, 1) + 1);
    // Same time prefix length, different random tails (2^-74 chance of a false failure).
    expect(a.slice(-16)).not.toBe(b.slice(-16));
  });

  test('pooledRandomBytes: fresh bytes across refills of the pool, at most 64 at a time', () => {
    const drawn = Array.from({ length: 1_000 }, () => pooledRandomBytes(16).toString('hex'));
    expect(new Set(drawn).size).toBe(drawn.length);
    expect(() => pooledRandomBytes(65)).toThrow(RangeError);
  });
});
