import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { DEFAULT_BACKOFF, nextAttemptDelayMs } from './backoff.ts';

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const middle = () => 0.5;

describe('nextAttemptDelayMs', () => {
  test('without jitter (random = ½) the schedule is 5 s, 5 min, 30 min, 2 h, 5 h, then 10 h', () => {
    const delays = Array.from({ length: 9 }, (_, i) => nextAttemptDelayMs(i + 1, middle));
    expect(delays).toEqual([
      5 * SECOND,
      5 * MINUTE,
      30 * MINUTE,
      2 * HOUR,
      5 * HOUR,
      10 * HOUR,
      10 * HOUR,
      10 * HOUR,
      10 * HOUR,
    ]);
  });

  test('the default 10 attempts retry for about two days, at least a day and a half', () => {
    const window = (random: () => number) =>
      Array.from({ length: 9 }, (_, i) => nextAttemptDelayMs(i + 1, random)).reduce(
        (a, b) => a + b,
      );
    expect(window(() => 0)).toBeGreaterThanOrEqual(36 * HOUR);
    expect(window(middle)).toBeGreaterThanOrEqual(47 * HOUR);
    expect(window(() => 1)).toBeLessThanOrEqual(58 * HOUR);
  });

  test('±20 % jitter: the ends of the random range scale each delay by 0.8 and 1.2', () => {
    expect(nextAttemptDelayMs(1, () => 0)).toBe(4 * SECOND);
    expect(nextAttemptDelayMs(1, () => 1)).toBe(6 * SECOND);
    expect(nextAttemptDelayMs(3, () => 0.25)).toBe(27 * MINUTE);
    expect(nextAttemptDelayMs(10_000, () => 1)).toBe(12 * HOUR);
    expect(nextAttemptDelayMs(Number.MAX_SAFE_INTEGER, () => 1)).toBe(12 * HOUR);
  });

  test('custom options are honoured', () => {
    const opts = { scheduleMs: [1_000, 60_000], jitter: 0 };
    expect(nextAttemptDelayMs(1, () => 1, opts)).toBe(1_000);
    expect(nextAttemptDelayMs(2, () => 0, opts)).toBe(60_000);
    expect(nextAttemptDelayMs(9, () => 1, opts)).toBe(60_000);
    expect(nextAttemptDelayMs(3, () => 1, { scheduleMs: [], jitter: 0.2 })).toBe(0);
    expect(nextAttemptDelayMs(1, () => 1, { scheduleMs: [10_000], jitter: 5 })).toBe(20_000);
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
      expect(delay).toBeLessThanOrEqual(12 * HOUR); // the longest: 10 h × 1.2
    },
  );

  test('property: an integer within ±20 % of the schedule, for any attempt and random', () => {
    const { scheduleMs } = DEFAULT_BACKOFF;
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5_000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (attempt, r) => {
          const delay = nextAttemptDelayMs(attempt, () => r);
          const base = scheduleMs[Math.min(attempt, scheduleMs.length) - 1]!;
          expect(Number.isInteger(delay)).toBe(true);
          expect(delay).toBeGreaterThanOrEqual(Math.floor(base * 0.8));
          expect(delay).toBeLessThanOrEqual(base * 1.2);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  test('uses Math.random by default and stays in range', () => {
    for (let i = 0; i < 1_000; i++) {
      const delay = nextAttemptDelayMs(2);
      expect(delay).toBeGreaterThanOrEqual(4 * MINUTE);
      expect(delay).toBeLessThanOrEqual(6 * MINUTE);
    }
  });
});
