/** toRfc3339: second-precision RFC 3339, the same text as toISOString through its one-entry memo. */
import { expect, test } from 'bun:test';
import { toRfc3339 } from './columns.ts';

test('toRfc3339 matches toISOString (without milliseconds) across and within seconds', () => {
  const reference = (ms: number) => new Date(ms).toISOString().slice(0, 19) + 'Z';
  const base = Date.UTC(2030, 0, 15, 10, 30, 0);
  // Alternating seconds and repeated ones exercise the memo's hit and miss paths.
  for (const ms of [base, base + 999, base + 1000, base + 999, base, -1, -1000, -1001, 0, 999]) {
    expect(toRfc3339(ms)).toBe(reference(ms));
  }
  expect(toRfc3339(base)).toBe('2030-01-15T10:30:00Z');
  expect(toRfc3339(null)).toBeNull();
  expect(toRfc3339(undefined)).toBeNull();
});
