/**
 * In-memory token-bucket rate limiter with bounded memory.
 *
 * Each bucket is stored as one number: the time in ms (counted from the limiter's creation)
 * at which it will be full again, `fullAt`. Tokens available at `now` are `capacity - max(0, fullAt - now) × rate`, so
 * refill is computed lazily from elapsed time: no timers, O(1) per call, and a bucket whose
 * `fullAt` has passed is exactly equivalent to no bucket at all — which is what makes
 * `sweep()` and eviction cheap and (mostly) lossless. It also means a per-key override can
 * change a bucket's capacity or rate between calls without stale state.
 *
 * Memory is bounded by `maxEntries`: the Map doubles as an LRU (every touch, denied calls
 * included, deletes and re-inserts the key at the end), and inserting a new key into a full
 * map evicts the least recently used bucket, in O(1).
 *
 * Eviction trade-off: an evicted bucket comes back full, so eviction can hand a throttled
 * client a fresh burst. To achieve that, an attacker must push more than `maxEntries`
 * *other* keys through the limiter after the victim's last request and before the victim's
 * bucket refills by itself (at most `capacity / refillPerMinute` minutes; 10 s at the
 * defaults 100 / 600 per min) — and a client that keeps sending is refreshed to the
 * most-recent end on every call, denied calls included, so it is the last to go. Size
 * `maxEntries` above the number of distinct keys you expect in one refill window (100 000
 * keys ≈ 10 k new keys per second sustained at the defaults). Keys must not be cheap to mint:
 * key per API key id, and per IPv6 /64 rather than per address.
 */

/** Limits applied to a bucket: burst size and sustained rate. */
export interface TokenBucketLimits {
  /** Maximum tokens (the burst); also the `limit` reported to clients. Positive. */
  capacity: number;
  /** Tokens added per minute, continuously (not in steps). Positive. */
  refillPerMinute: number;
}

/** Construction options for {@link TokenBucketLimiter}. */
export interface TokenBucketOptions extends TokenBucketLimits {
  /** Upper bound on stored buckets; the least recently used is evicted beyond it. ≥ 1. */
  maxEntries: number;
  /**
   * How long a bucket must have been full before `sweep()` drops it (default 0: a full
   * bucket is indistinguishable from an absent one, so it can go at once). A larger value
   * only keeps recently active keys counted in `size` a little longer.
   */
  idleMs?: number;
  /** Clock in Unix milliseconds (default `Date.now`); inject one in tests. */
  now?: () => number;
}

/** Outcome of one `take()`, shaped for the `X-RateLimit-*` and `Retry-After` headers. */
export interface TokenBucketResult {
  /** True when the tokens were taken; false leaves the bucket unchanged. */
  allowed: boolean;
  /** Bucket capacity in force for this call (`X-RateLimit-Limit`). */
  limit: number;
  /** Whole tokens left after this call (`X-RateLimit-Remaining`), ≥ 0. */
  remaining: number;
  /** Unix seconds (rounded up) when the bucket will be full again (`X-RateLimit-Reset`). */
  resetAtSeconds: number;
  /**
   * 0 when allowed; otherwise whole seconds (rounded up, ≥ 1) until this same request
   * (`cost` tokens, or a full bucket if `cost` exceeds capacity) would be allowed
   * (`Retry-After`). For the usual cost of 1 that is the time until one token is back.
   */
  retryAfterSeconds: number;
}

const MS_PER_MINUTE = 60_000;
/**
 * Tolerance for floating-point rounding at exact boundaries (a rate like 180/min makes each
 * token 333.33… ms): being a microsecond generous is invisible, being a token short is not.
 */
const EPSILON_MS = 0.001;

function assertLimits(limits: TokenBucketLimits, where: string): void {
  if (!(Number.isFinite(limits.capacity) && limits.capacity > 0)) {
    throw new RangeError(`${where}: capacity must be a positive finite number`);
  }
  if (!(Number.isFinite(limits.refillPerMinute) && limits.refillPerMinute > 0)) {
    throw new RangeError(`${where}: refillPerMinute must be a positive finite number`);
  }
}

/**
 * Keyed token-bucket limiter (see the module comment for the model and the eviction
 * trade-off). Not shared across processes: each server process limits on its own.
 */
export class TokenBucketLimiter {
  private readonly buckets = new Map<string, number>();
  private defaults: TokenBucketLimits;
  private readonly maxEntries: number;
  private readonly idleMs: number;
  private readonly now: () => number;
  /**
   * Stored times are relative to this instant: small magnitudes keep the rounding of each
   * `fullAt += msPerToken` far below a microsecond (absolute epoch ms would lose ~0.25 µs
   * per step and drift with every token taken).
   */
  private readonly epochMs: number;
  /**
   * Long-lived cursor over the Map in insertion order, used only to find eviction victims.
   * Every key it has passed was deleted (evicted here, or deleted and re-appended behind it
   * on touch), so its next key is always the least recently used one. Restarting from
   * `keys()` each time would be O(deleted slots) per eviction in JavaScriptCore, which
   * keeps tombstones at the front: 1 M inserts through 100 000 entries took ~58 s that way.
   */
  private evictionCursor: Iterator<string> | undefined;

  /** Throws `RangeError` on a non-positive capacity, rate or `maxEntries`, or negative `idleMs`. */
  constructor(options: TokenBucketOptions) {
    assertLimits(options, 'TokenBucketLimiter');
    if (!(Number.isInteger(options.maxEntries) && options.maxEntries >= 1)) {
      throw new RangeError('TokenBucketLimiter: maxEntries must be an integer ≥ 1');
    }
    const idleMs = options.idleMs ?? 0;
    if (!(Number.isFinite(idleMs) && idleMs >= 0)) {
      throw new RangeError('TokenBucketLimiter: idleMs must be a finite number ≥ 0');
    }
    this.defaults = { capacity: options.capacity, refillPerMinute: options.refillPerMinute };
    this.maxEntries = options.maxEntries;
    this.idleMs = idleMs;
    this.now = options.now ?? Date.now;
    this.epochMs = this.now();
  }

  /** Replaces the default limits (a configuration reload); stored buckets carry over. */
  setDefaults(limits: TokenBucketLimits): void {
    assertLimits(limits, 'TokenBucketLimiter.setDefaults');
    this.defaults = { capacity: limits.capacity, refillPerMinute: limits.refillPerMinute };
  }

  /** Number of buckets currently stored (≤ `maxEntries`). */
  get size(): number {
    return this.buckets.size;
  }

  /**
   * Takes `cost` tokens from `key`'s bucket if it holds that many, refilling it first for
   * the time elapsed since the last call. `override` replaces the default limits for this
   * call (e.g. a per-API-key limit); pass the same override for a key every time. A denied
   * call takes nothing but still marks the key as recently used. O(1).
   *
   * Throws `RangeError` for a negative or non-finite `cost` or invalid override limits.
   */
  take(key: string, cost = 1, override?: TokenBucketLimits): TokenBucketResult {
    if (!(Number.isFinite(cost) && cost >= 0)) {
      throw new RangeError('TokenBucketLimiter.take: cost must be a finite number ≥ 0');
    }
    let limits = this.defaults;
    if (override !== undefined) {
      assertLimits(override, 'TokenBucketLimiter.take override');
      limits = override;
    }
    const { capacity, refillPerMinute } = limits;
    const msPerToken = MS_PER_MINUTE / refillPerMinute;
    const msToFillFromEmpty = capacity * msPerToken;
    const now = this.now() - this.epochMs;

    let fullAt = this.buckets.get(key);
    if (fullAt === undefined) {
      if (this.buckets.size >= this.maxEntries) this.evictLeastRecentlyUsed();
      fullAt = now;
    } else {
      this.buckets.delete(key);
      if (fullAt < now) fullAt = now;
      // Never owe more than an empty bucket: guards a smaller override and a clock that
      // stepped backwards, which would otherwise lock a client out for the gap.
      else if (fullAt - now > msToFillFromEmpty) fullAt = now + msToFillFromEmpty;
    }

    const available = capacity - ((fullAt - now) * refillPerMinute) / MS_PER_MINUTE;
    const tokenEpsilon = EPSILON_MS / msPerToken;
    const allowed = available + tokenEpsilon >= cost;
    let remaining = available;
    let retryAfterSeconds = 0;
    if (allowed) {
      fullAt += cost * msPerToken;
      remaining = available - cost;
    } else {
      // The moment at which `min(cost, capacity)` tokens are back.
      const affordableAt = fullAt - (capacity - Math.min(cost, capacity)) * msPerToken;
      retryAfterSeconds = Math.max(1, Math.ceil((affordableAt - now - EPSILON_MS) / 1000));
    }
    this.buckets.set(key, fullAt);

    return {
      allowed,
      limit: capacity,
      remaining: Math.max(0, Math.floor(remaining + tokenEpsilon)),
      resetAtSeconds: Math.ceil((this.epochMs + fullAt - EPSILON_MS) / 1000),
      retryAfterSeconds,
    };
  }

  /**
   * Drops every bucket that has been full for at least `idleMs`; such a bucket carries no
   * information (a new one starts full). O(size): call it on a timer (e.g. once a minute),
   * not per request. Returns how many buckets were dropped.
   */
  sweep(): number {
    const cutoff = this.now() - this.epochMs - this.idleMs;
    let dropped = 0;
    for (const [key, fullAt] of this.buckets) {
      if (fullAt <= cutoff) {
        this.buckets.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  private evictLeastRecentlyUsed(): void {
    this.evictionCursor ??= this.buckets.keys();
    let next = this.evictionCursor.next();
    if (next.done === true) {
      // Unreachable while the map is non-empty (see evictionCursor); restart defensively.
      this.evictionCursor = this.buckets.keys();
      next = this.evictionCursor.next();
    }
    if (next.done !== true) this.buckets.delete(next.value);
  }
}
