/** Where "now" comes from. Services take a Clock so that tests can move time deterministically. */
export type Clock = { now(): number };

/** One day in milliseconds (retention windows, purge ages, expiry notices are given in days). */
export const DAY_MS = 86_400_000;

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
