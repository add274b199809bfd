/** Where "now" comes from. Services take a Clock so that tests can move time deterministically. */
export type Clock = { now(): number };

/** One day in milliseconds (retention windows, purge ages, expiry notices are given in days). */
export const DAY_MS = 86_400_000;

/**
 * Milliseconds of each unit of the short durations options take (`90d`, `12h`, `30m`, `45s`,
 * `2w`). Each parser keeps its own pattern: which units and how many digits it accepts.
 */
export const DURATION_UNIT_MS = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: DAY_MS,
  w: 7 * DAY_MS,
} as const;

/** The real wall clock, in epoch milliseconds. */
export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to; for tests. */
export function manualClock(
  startMs = Date.UTC(2026, 0, 1),
): Clock & { advance(ms: number): void; set(ms: number): void } {
  let current = startMs;
  return {
    now: () => current,
    advance: (ms: number) => void (current += ms),
    set: (ms: number) => void (current = ms),
  };
}
