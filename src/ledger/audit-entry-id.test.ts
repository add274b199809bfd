import { describe, expect, test } from 'bun:test';
import { TypeID } from 'typeid-js';
import { auditEntryId, seqOfAuditEntryId } from './audit-entry-id.ts';

describe('auditEntryId', () => {
  test('is a TypeID over a UUIDv7 carrying the time and the chain position', () => {
    const at = Date.UTC(2026, 10, 26, 12, 0, 0, 123);
    for (const seq of [
      1,
      2,
      255,
      256,
      2 ** 32 - 1,
      2 ** 32,
      2 ** 40 + 7,
      Number.MAX_SAFE_INTEGER,
    ]) {
      const id = auditEntryId(seq, at);
      expect(id).toMatch(/^aud_[0-7][0-9a-hjkmnp-tv-z]{25}$/);
      const uuid = TypeID.fromString(id, 'aud').toUUID().replaceAll('-', '');
      expect(uuid[12]).toBe('7'); // version
      expect('89ab').toContain(uuid[16]!); // variant 10xx
      expect(parseInt(uuid.slice(0, 12), 16)).toBe(at);
      expect(BigInt('0x' + uuid.slice(16)) & ((1n << 62n) - 1n)).toBe(BigInt(seq));
      expect(seqOfAuditEntryId(id)).toBe(seq);
    }
  });

  test('ids of one millisecond sort by position; equal positions still differ in time', () => {
    const at = Date.UTC(2030, 0, 1);
    const ids = Array.from({ length: 1_000 }, (_, i) => auditEntryId(i + 1, at));
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
    expect(auditEntryId(5, at)).not.toBe(auditEntryId(5, at + 1));
  });

  test('refuses positions and times it cannot encode', () => {
    for (const seq of [0, -1, 1.5, Number.MAX_SAFE_INTEGER + 1, Number.NaN]) {
      expect(() => auditEntryId(seq, 0)).toThrow(RangeError);
    }
    for (const at of [-1, 2 ** 48, 0.5]) expect(() => auditEntryId(1, at)).toThrow(RangeError);
  });
});

describe('seqOfAuditEntryId', () => {
  test('is null for anything that is not an audit id with a position', () => {
    const otherPrefix = auditEntryId(7, Date.now()).replace('aud_', 'res_');
    const noPosition = `aud_${'0'.repeat(26)}`; // version 0 and seq 0
    for (const id of ['', 'aud_', 'aud_nope', 'aud_x', otherPrefix, noPosition, 'AUD_01']) {
      expect(seqOfAuditEntryId(id)).toBeNull();
    }
  });
});
