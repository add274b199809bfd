import { describe, expect, test } from 'bun:test';
import { chooseRequestId } from './request-meta.ts';

describe('chooseRequestId', () => {
  test('generates distinct 96-bit ids, across refills of the random pool', () => {
    const ids = Array.from({ length: 2_000 }, () => chooseRequestId(null));
    for (const id of ids) expect(id).toMatch(/^req_[A-Za-z0-9_-]{16}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

  test('echoes a sane incoming id and replaces anything else', () => {
    expect(chooseRequestId('trace-1234.abcd:ef')).toBe('trace-1234.abcd:ef');
    for (const bad of ['short', 'has space in it', 'x'.repeat(129), 'semi;colon-id', '']) {
      expect(chooseRequestId(bad)).toMatch(/^req_/);
    }
  });
});
