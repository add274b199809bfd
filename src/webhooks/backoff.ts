/**
 * Retry spacing for webhook deliveries: a fixed schedule that starts fast and stretches to hours
 * (5 s, 5 min, 30 min, 2 h, 5 h, then every 10 h — the schedule Standard Webhooks senders
 * commonly use), each delay randomised by ±20 %. With the default 10 attempts a delivery is
 * retried for about two days, so a receiver that is down for a deploy, a night or a weekend
 * outage of a few hours still gets its events; a quick second try still covers a blip. The
 * jitter spreads a burst of failures (a receiver that was down for everyone) over a window
 * instead of retrying them in lock-step, without ever retrying early in the sequence
 * after a near-zero wait, as full jitter can. The delay depends only on the attempt count,
 * which the delivery row already stores.
 */

/** Backoff parameters: delays before retries 1, 2, …; the last repeats. */
export type BackoffOptions = {
  /** Milliseconds before the n-th retry (after the n-th failure); the last entry repeats. */
  scheduleMs: readonly number[];
  /** Each delay is scaled by a uniform factor in [1 − jitter, 1 + jitter]; 0 ≤ jitter ≤ 1. */
  jitter: number;
};

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** 5 s, 5 min, 30 min, 2 h, 5 h, then 10 h apart, each ±20 %. */
export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = {
  scheduleMs: [5 * SECOND, 5 * MINUTE, 30 * MINUTE, 2 * HOUR, 5 * HOUR, 10 * HOUR],
  jitter: 0.2,
};

/**
 * Milliseconds to wait before the next attempt, given `attempt` = the number of failed attempts
 * so far (1 after the first failure): the schedule's entry for it (the last entry once past the
 * end) times a uniformly random factor in [1 − jitter, 1 + jitter], as an integer. An `attempt`
 * below 1 (or not finite) is treated as 1, and a `random` value outside [0, 1] (or NaN) and a
 * jitter outside [0, 1] are clamped, so bad input cannot produce a negative, NaN or unbounded
 * delay. Use the result as "not before"; the worker's own polling adds to it.
 */
export function nextAttemptDelayMs(
  attempt: number,
  random: () => number = Math.random,
  opts: BackoffOptions = DEFAULT_BACKOFF,
): number {
  const failures = Number.isFinite(attempt) && attempt >= 1 ? Math.floor(attempt) : 1;
  const schedule = opts.scheduleMs;
  if (schedule.length === 0) return 0;
  const base = nonNegative(schedule[Math.min(failures, schedule.length) - 1]!);
  const jitter = Math.min(1, nonNegative(opts.jitter));
  const r = random();
  const fraction = Number.isFinite(r) ? Math.min(1, Math.max(0, r)) : 0.5;
  return Math.floor(base * (1 - jitter + 2 * jitter * fraction));
}

function nonNegative(value: number): number {
  return Number.isFinite(value) ? Math.max(0, value) : 0;
}
