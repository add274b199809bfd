/**
 * Retry spacing for webhook deliveries: exponential backoff with "full jitter"
 * (delay = random × min(max, base × 2^(n-1))), as analysed in AWS's "Exponential Backoff and
 * Jitter". Full jitter is chosen over decorrelated jitter because it needs no state beyond the
 * attempt count, which the delivery row already stores, and it spreads a burst of failures
 * (a receiver that was down for everyone) evenly instead of retrying them in lock-step.
 */

/** Backoff parameters in milliseconds. */
export type BackoffOptions = { baseMs: number; maxMs: number };

/** 5 s ceiling for the first retry, doubling, capped at 6 hours. */
export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = { baseMs: 5_000, maxMs: 6 * 3_600_000 };

/**
 * Milliseconds to wait before the next attempt, given `attempt` = the number of failed attempts
 * so far (1 after the first failure). The result is a uniformly random integer in
 * [0, min(maxMs, baseMs × 2^(attempt-1))]: its ceiling doubles per failure until it reaches
 * `maxMs`, and it is never negative nor above `maxMs`. An `attempt` below 1 (or not finite) is
 * treated as 1, and a `random` value outside [0, 1] is clamped, so bad input cannot produce a
 * negative, NaN or unbounded delay. Use the result as "not before"; the worker's own polling
 * adds to it.
 */
export function nextAttemptDelayMs(
  attempt: number,
  random: () => number = Math.random,
  opts: BackoffOptions = DEFAULT_BACKOFF,
): number {
  const failures = Number.isFinite(attempt) && attempt >= 1 ? Math.floor(attempt) : 1;
  const maxMs = nonNegative(opts.maxMs);
  const baseMs = nonNegative(opts.baseMs);
  // Capping the exponent keeps the power finite, so 0 × 2^n stays 0 instead of NaN; an
  // overflow to Infinity for large bases is then clipped by min().
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(failures - 1, 1000));
  const r = random();
  const fraction = Number.isFinite(r) ? Math.min(1, Math.max(0, r)) : 0;
  return Math.floor(fraction * ceiling);
}

function nonNegative(value: number): number {
  return Number.isNaN(value) ? 0 : Math.max(0, value);
}
