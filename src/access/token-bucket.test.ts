import { describe, expect, test } from 'bun:test';
import { TokenBucketLimiter, type TokenBucketOptions } from './token-bucket.ts';

/** 2024-01-15T10:30:00Z, on a whole second so reset maths is easy to read. */
const T0 = Date.UTC(2024, 0, 15, 10, 30, 0);

function limiterAt(options: Partial<TokenBucketOptions> = {}) {
  const clock = { ms: T0 };
  const limiter = new TokenBucketLimiter({
    capacity: 100,
    refillPerMinute: 600, // 10 tokens per second, one per 100 ms
    maxEntries: 1000,
    now: () => clock.ms,
    ...options,
  });
  return { limiter, clock };
}

describe('TokenBucketLimiter.take', () => {
  test('a new key gets the full burst, then is denied', () => {
    const { limiter } = limiterAt();
    for (let i = 1; i <= 100; i++) {
      const result = limiter.take('1.2.3.4');
      expect(result.allowed).toBe(true);
      expect(result.remaining).toBe(100 - i);
      expect(result.retryAfterSeconds).toBe(0);
      expect(result.limit).toBe(100);
    }
    const denied = limiter.take('1.2.3.4');
    expect(denied).toEqual({
      allowed: false,
      limit: 100,
      remaining: 0,
      resetAtSeconds: T0 / 1000 + 10, // 100 tokens at 10/s
      retryAfterSeconds: 1, // one token back after 100 ms, rounded up
    });
    // Another key is unaffected.
    expect(limiter.take('5.6.7.8').allowed).toBe(true);
  });

  test('first call reports the exact remaining and reset', () => {
    const { limiter } = limiterAt();
    expect(limiter.take('k')).toEqual({
      allowed: true,
      limit: 100,
      remaining: 99,
      resetAtSeconds: T0 / 1000 + 1, // 100 ms to refill one token, rounded up to the second
      retryAfterSeconds: 0,
    });
  });

  test('refill is continuous: 250 ms at 10/s gives 2.5 tokens, 2 usable', () => {
    const { limiter, clock } = limiterAt();
    for (let i = 0; i < 100; i++) limiter.take('k');
    clock.ms += 250;
    const first = limiter.take('k');
    expect(first.allowed).toBe(true);
    expect(first.remaining).toBe(1); // 2.5 - 1
    expect(limiter.take('k')).toMatchObject({ allowed: true, remaining: 0 }); // 0.5 left
    const denied = limiter.take('k');
    expect(denied).toMatchObject({ allowed: false, remaining: 0, retryAfterSeconds: 1 });
    // Bucket owes 99.5 tokens = 9 950 ms at T0 + 250 → full at T0 + 10 200 ms → ceil → +11 s.
    expect(denied.resetAtSeconds).toBe(T0 / 1000 + 11);
    clock.ms += 49; // 0.99 tokens: still short
    expect(limiter.take('k').allowed).toBe(false);
    clock.ms += 1; // exactly 1.0 token
    expect(limiter.take('k')).toMatchObject({ allowed: true, remaining: 0 });
  });

  test('refill is capped at capacity', () => {
    const { limiter, clock } = limiterAt();
    limiter.take('k', 40);
    clock.ms += 60 * 60 * 1000;
    const result = limiter.take('k');
    expect(result.remaining).toBe(99);
    expect(result.resetAtSeconds).toBe(clock.ms / 1000 + 1);
  });

  test('retryAfter counts seconds until one token at slow rates', () => {
    const { limiter, clock } = limiterAt({ capacity: 2, refillPerMinute: 6 }); // 1 per 10 s
    limiter.take('k');
    limiter.take('k');
    expect(limiter.take('k')).toMatchObject({
      allowed: false,
      remaining: 0,
      retryAfterSeconds: 10,
      resetAtSeconds: T0 / 1000 + 20,
    });
    clock.ms += 3_500;
    expect(limiter.take('k').retryAfterSeconds).toBe(7); // 6.5 s → 7
    clock.ms += 6_500;
    expect(limiter.take('k')).toMatchObject({ allowed: true, remaining: 0 });
  });

  test('cost > 1 takes several tokens and waits for all of them', () => {
    const { limiter } = limiterAt({ capacity: 10, refillPerMinute: 60 }); // 1 per second
    expect(limiter.take('k', 8)).toMatchObject({ allowed: true, remaining: 2 });
    const denied = limiter.take('k', 5);
    expect(denied).toMatchObject({ allowed: false, remaining: 2, retryAfterSeconds: 3 });
    // A cost above capacity can never pass; it is told to wait for a full bucket.
    expect(limiter.take('k', 11)).toMatchObject({ allowed: false, retryAfterSeconds: 8 });
    expect(limiter.take('k', 0)).toMatchObject({ allowed: true, remaining: 2 });
  });

  test('per-key override replaces the default limits', () => {
    const { limiter, clock } = limiterAt();
    const perKey = { capacity: 5, refillPerMinute: 60 };
    for (let i = 0; i < 5; i++) {
      expect(limiter.take('key_a', 1, perKey)).toMatchObject({ allowed: true, limit: 5 });
    }
    expect(limiter.take('key_a', 1, perKey)).toEqual({
      allowed: false,
      limit: 5,
      remaining: 0,
      resetAtSeconds: T0 / 1000 + 5,
      retryAfterSeconds: 1,
    });
    // Default-limited key is independent and still gets 100.
    expect(limiter.take('key_b')).toMatchObject({ allowed: true, limit: 100, remaining: 99 });
    clock.ms += 1000;
    expect(limiter.take('key_a', 1, perKey)).toMatchObject({ allowed: true, remaining: 0 });
  });

  test('a smaller override or a clock stepping back never owes more than an empty bucket', () => {
    const { limiter, clock } = limiterAt();
    for (let i = 0; i < 100; i++) limiter.take('k'); // owes 10 s
    // Under a 2-token, 1-per-second override the 10 s debt is capped at an empty bucket (2 s).
    const small = { capacity: 2, refillPerMinute: 60 };
    expect(limiter.take('k', 1, small)).toMatchObject({ allowed: false, retryAfterSeconds: 1 });
    clock.ms += 1000;
    expect(limiter.take('k', 1, small)).toMatchObject({ allowed: true });

    const back = limiterAt();
    for (let i = 0; i < 100; i++) back.limiter.take('k');
    back.clock.ms -= 60 * 60 * 1000; // NTP step back by an hour
    const result = back.limiter.take('k');
    expect(result.allowed).toBe(false);
    expect(result.resetAtSeconds).toBe(back.clock.ms / 1000 + 10);
    back.clock.ms += 100;
    expect(back.limiter.take('k').allowed).toBe(true);
  });

  test('rates with non-terminating ms per token hit exact boundaries', () => {
    // 180/min = one token per 333.33… ms; 3 tokens take exactly 1 s to come back.
    const { limiter, clock } = limiterAt({ capacity: 3, refillPerMinute: 180 });
    for (let i = 0; i < 3; i++) limiter.take('k');
    expect(limiter.take('k')).toMatchObject({ allowed: false, resetAtSeconds: T0 / 1000 + 1 });
    clock.ms += 1000;
    expect(limiter.take('k')).toMatchObject({ allowed: true, remaining: 2 });
    // 4 200 single takes in one instant add 142.857… ms each to the stored time; the sum
    // must still land within a microsecond of 600 s so the 7 tokens due after 1 s are whole.
    const deep = limiterAt({ capacity: 4200, refillPerMinute: 420 });
    for (let i = 0; i < 4200; i++) expect(deep.limiter.take('k').allowed).toBe(true);
    expect(deep.limiter.take('k')).toMatchObject({ allowed: false, remaining: 0 });
    deep.clock.ms += 1000;
    for (let i = 0; i < 7; i++) expect(deep.limiter.take('k').allowed).toBe(true);
    expect(deep.limiter.take('k').allowed).toBe(false);
    // Drain for a long time at exactly the refill rate: never a token short or over.
    const steady = limiterAt({ capacity: 3, refillPerMinute: 180 });
    for (let i = 0; i < 3; i++) steady.limiter.take('k');
    for (let second = 1; second <= 20_000; second++) {
      steady.clock.ms += 1000;
      for (let i = 0; i < 3; i++) expect(steady.limiter.take('k').allowed).toBe(true);
      expect(steady.limiter.take('k').allowed).toBe(false);
    }
  });

  test('rejects invalid options, costs and overrides', () => {
    const base = { capacity: 10, refillPerMinute: 60, maxEntries: 10 };
    expect(() => new TokenBucketLimiter({ ...base, capacity: 0 })).toThrow(RangeError);
    expect(() => new TokenBucketLimiter({ ...base, refillPerMinute: 0 })).toThrow(RangeError);
    expect(() => new TokenBucketLimiter({ ...base, refillPerMinute: NaN })).toThrow(RangeError);
    expect(() => new TokenBucketLimiter({ ...base, maxEntries: 0 })).toThrow(RangeError);
    expect(() => new TokenBucketLimiter({ ...base, maxEntries: 1.5 })).toThrow(RangeError);
    expect(() => new TokenBucketLimiter({ ...base, idleMs: -1 })).toThrow(RangeError);
    const limiter = new TokenBucketLimiter(base);
    expect(() => limiter.take('k', -1)).toThrow(RangeError);
    expect(() => limiter.take('k', NaN)).toThrow(RangeError);
    expect(() => limiter.take('k', 1, { capacity: 1, refillPerMinute: 0 })).toThrow(RangeError);
    expect(limiter.size).toBe(0);
  });
});

describe('TokenBucketLimiter memory bounds', () => {
  test('LRU eviction at maxEntries keeps the most recently used keys', () => {
    const { limiter } = limiterAt({ maxEntries: 3 });
    limiter.take('a', 100); // drained
    limiter.take('b', 100);
    limiter.take('c', 100);
    expect(limiter.size).toBe(3);
    limiter.take('a'); // denied, but touching 'a' makes 'b' the least recently used
    limiter.take('d', 100);
    expect(limiter.size).toBe(3);
    // 'b' was evicted and comes back full; 'a', 'c', 'd' are still drained.
    expect(limiter.take('a').allowed).toBe(false);
    expect(limiter.take('c').allowed).toBe(false);
    expect(limiter.take('d').allowed).toBe(false);
    expect(limiter.size).toBe(3);
    expect(limiter.take('b')).toMatchObject({ allowed: true, remaining: 99 });
    expect(limiter.size).toBe(3);
    // Inserting 'b' evicted the least recently used of a, c, d: 'a'.
    expect(limiter.take('a')).toMatchObject({ allowed: true, remaining: 99 });
  });

  test('evicts exactly like a reference LRU over a long random workload', () => {
    // Every take drains the whole bucket and the clock stands still, so a stored key is
    // always denied and a missing (never seen or evicted) key is always allowed: `allowed`
    // reveals membership, which is compared with a naive array LRU. Periodic full sweeps
    // check that the eviction order survives mass deletion.
    const maxEntries = 7;
    const { limiter, clock } = limiterAt({ maxEntries });
    let model: string[] = []; // least recently used first
    let seed = 42;
    const nextRandom = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    let evictions = 0;
    for (let step = 0; step < 20_000; step++) {
      if (step % 997 === 996) {
        // Everything refills; a sweep must empty the map without upsetting later evictions.
        clock.ms += 10_000;
        expect(limiter.sweep()).toBe(model.length);
        model = [];
      }
      const key = `k${Math.floor(nextRandom() * 12)}`;
      const index = model.indexOf(key);
      expect(limiter.take(key, 100).allowed).toBe(index === -1);
      if (index !== -1) model.splice(index, 1);
      else if (model.length === maxEntries) {
        model.shift();
        evictions++;
      }
      model.push(key);
      expect(limiter.size).toBe(model.length);
    }
    expect(evictions).toBeGreaterThan(1000);
  });

  test('size never exceeds maxEntries under a flood of distinct keys', () => {
    const { limiter } = limiterAt({ maxEntries: 100 });
    for (let i = 0; i < 10_000; i++) limiter.take(`10.0.${i >> 8}.${i & 255}`);
    expect(limiter.size).toBe(100);
    // The survivors are the last 100 keys: each is still drained by one token.
    expect(limiter.take('10.0.39.15')).toMatchObject({ remaining: 98 }); // i = 9 999
    expect(limiter.take('10.0.38.172')).toMatchObject({ remaining: 98 }); // i = 9 900
    expect(limiter.take('10.0.38.171')).toMatchObject({ remaining: 99 }); // i = 9 899: evicted
  });

  test('sweep drops only buckets that are full again', () => {
    const { limiter, clock } = limiterAt();
    limiter.take('one-token', 1); // full again after 100 ms
    limiter.take('half', 50); // after 5 s
    limiter.take('drained', 100); // after 10 s
    limiter.take('free', 0); // full already
    expect(limiter.size).toBe(4);
    expect(limiter.sweep()).toBe(1); // 'free'
    clock.ms += 100;
    expect(limiter.sweep()).toBe(1); // 'one-token'
    clock.ms += 4_899;
    expect(limiter.sweep()).toBe(0);
    expect(limiter.size).toBe(2);
    clock.ms += 1;
    expect(limiter.sweep()).toBe(1); // 'half'
    expect(limiter.take('drained').allowed).toBe(true); // still tracked, 50 tokens back
    expect(limiter.take('drained')).toMatchObject({ remaining: 48 });
    clock.ms += 10_000;
    expect(limiter.sweep()).toBe(1);
    expect(limiter.size).toBe(0);
  });

  test('idleMs keeps full buckets for that long before sweep drops them', () => {
    const { limiter, clock } = limiterAt({ idleMs: 60_000 });
    limiter.take('k'); // full again at T0 + 100 ms
    clock.ms += 100 + 59_999;
    expect(limiter.sweep()).toBe(0);
    clock.ms += 1;
    expect(limiter.sweep()).toBe(1);
    expect(limiter.size).toBe(0);
  });
});
