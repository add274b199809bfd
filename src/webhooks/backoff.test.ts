import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { DEFAULT_BACKOFF, nextAttemptDelayMs } from './backoff.ts';

const HOUR = 3_600_000;

describe('nextAttemptDelayMs', () => {
  test('with the top of the jitter range, the ceiling doubles from 5 s up to the 6 h cap', () => {
    const top = () => 1;
    const delays = Array.from({ length: 16 }, (_, i) => nextAttemptDelayMs(i + 1, top));
    expect(delays.slice(0, 6)).toEqual([5_000, 10_000, 20_000, 40_000, 80_000, 160_000]);
    for (let i = 1; i < delays.length; i++)
      expect(delays[i]!).toBeGreaterThanOrEqual(delays[i - 1]!);
    // Attempt 13: 5 s × 2^12 = 20 480 s ≈ 5.7 h, still under 6 h; attempt 14 onwards is capped.
    expect(delays[12]).toBe(5_000 * 2 ** 12);
    expect(delays.slice(13)).toEqual([6 * HOUR, 6 * HOUR, 6 * HOUR]);
  });

  test('with a fixed mid-range random the spacing grows strictly until the cap', () => {
    const half = () => 0.5;
    const delays = Array.from({ length: 14 }, (_, i) => nextAttemptDelayMs(i + 1, half));
    expect(delays[0]).toBe(2_500);
    for (let i = 1; i < 13; i++) expect(delays[i]!).toBe(delays[i - 1]! * 2);
    expect(delays[13]).toBe(3 * HOUR);
  });

  test('full jitter: the delay is random × ceiling', () => {
    expect(nextAttemptDelayMs(3, () => 0)).toBe(0);
    expect(nextAttemptDelayMs(3, () => 0.25)).toBe(5_000);
    expect(nextAttemptDelayMs(3, () => 0.999999)).toBe(19_999);
  });

  test('huge attempt counts stay at the cap', () => {
    expect(nextAttemptDelayMs(10_000, () => 1)).toBe(6 * HOUR);
    expect(nextAttemptDelayMs(Number.MAX_SAFE_INTEGER, () => 1)).toBe(6 * HOUR);
  });

  test('custom options are honoured', () => {
    const opts = { baseMs: 1_000, maxMs: 60_000 };
    expect(nextAttemptDelayMs(1, () => 1, opts)).toBe(1_000);
    expect(nextAttemptDelayMs(6, () => 1, opts)).toBe(32_000);
    expect(nextAttemptDelayMs(7, () => 1, opts)).toBe(60_000);
    expect(nextAttemptDelayMs(50, () => 1, { baseMs: 0, maxMs: 60_000 })).toBe(0);
  });

  test.each([
    [0, () => 1],
    [-3, () => 1],
    [Number.NaN, () => 1],
    [2, () => -5],
    [2, () => Number.NaN],
    [2, () => 7],
  ])(
    'bad input (attempt %p) never yields a negative, NaN or out-of-range delay',
    (attempt, random) => {
      const delay = nextAttemptDelayMs(attempt, random);
      expect(Number.isInteger(delay)).toBe(true);
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThanOrEqual(DEFAULT_BACKOFF.maxMs);
    },
  );

  test('property: integer, within [0, min(cap, base·2^(n-1))], for any attempt and random', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5_000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (attempt, r) => {
          const delay = nextAttemptDelayMs(attempt, () => r);
          const ceiling = Math.min(
            DEFAULT_BACKOFF.maxMs,
            DEFAULT_BACKOFF.baseMs * 2 ** (attempt - 1),
          );
          expect(Number.isInteger(delay)).toBe(true);
          expect(delay).toBeGreaterThanOrEqual(0);
          expect(delay).toBeLessThanOrEqual(ceiling);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  test('uses Math.random by default and stays in range', () => {
    for (let i = 0; i < 1_000; i++) {
      const delay = nextAttemptDelayMs(4);
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThanOrEqual(40_000);
    }
  });
});
