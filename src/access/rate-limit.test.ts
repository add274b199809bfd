import { describe, expect, test } from 'bun:test';
import { principalFor, type Principal } from './principal.ts';
import { clientBucketKey, rateLimitHeaders, RequestRateLimiter } from './rate-limit.ts';

const START = Date.UTC(2030, 0, 1, 12, 0, 0);

function setup(settings = { requestsPerMinute: 60, burst: 3, maxTrackedClients: 100 }) {
  let now = START;
  const limiter = new RequestRateLimiter(settings, () => now);
  return { limiter, advance: (ms: number) => void (now += ms) };
}

const keyPrincipal = (id: string, rateLimit?: Principal['rateLimit']): Principal =>
  principalFor({
    keyId: id,
    name: id,
    role: 'reader',
    projectIds: [],
    vaultIds: [],
    scopes: null,
    expiresAt: null,
    rateLimit,
  });

describe('request rate limiter', () => {
  test('burst, then one request per refill interval; Retry-After and Reset are exact', () => {
    const { limiter, advance } = setup();
    const alice = keyPrincipal('key_alice');
    const first = limiter.forKey(alice);
    expect(first).toMatchObject({ allowed: true, limit: 3, remaining: 2 });
    // One token back per second: full again 1 s after the first take.
    expect(first.resetAtSeconds).toBe(START / 1000 + 1);
    expect(limiter.forKey(alice).remaining).toBe(1);
    expect(limiter.forKey(alice).remaining).toBe(0);
    const denied = limiter.forKey(alice);
    expect(denied).toMatchObject({ allowed: false, remaining: 0, retryAfterSeconds: 1 });
    expect(denied.resetAtSeconds).toBe(START / 1000 + 3);
    advance(999);
    expect(limiter.forKey(alice).allowed).toBe(false);
    advance(1);
    expect(limiter.forKey(alice)).toMatchObject({ allowed: true, remaining: 0 });
    advance(10_000);
    expect(limiter.forKey(alice).remaining).toBe(2); // refilled to the burst, no more
  });

  test('keys and client addresses have separate buckets; per-key overrides apply', () => {
    const { limiter } = setup();
    const alice = keyPrincipal('key_alice');
    for (let i = 0; i < 3; i++) limiter.forKey(alice);
    expect(limiter.forKey(alice).allowed).toBe(false);
    expect(limiter.forKey(keyPrincipal('key_bob')).allowed).toBe(true);
    expect(limiter.forClient('key_alice').allowed).toBe(true); // another namespace
    const generous = keyPrincipal('key_big', { requestsPerMinute: 6000, burst: 50 });
    expect(limiter.forKey(generous)).toMatchObject({ limit: 50, remaining: 49 });
    const burstOnly = keyPrincipal('key_burst', { requestsPerMinute: null, burst: 1 });
    expect(limiter.forKey(burstOnly)).toMatchObject({ limit: 1, remaining: 0 });
    expect(limiter.forKey(burstOnly)).toMatchObject({ allowed: false, retryAfterSeconds: 1 });
  });

  test('IPv6 clients share one bucket per /64; IPv4-mapped addresses count as IPv4', () => {
    expect(clientBucketKey('192.0.2.7')).toBe('192.0.2.7');
    expect(clientBucketKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(clientBucketKey('2001:db8:1:2::ffff')).toBe('2001:db8:1:2::/64');
    expect(clientBucketKey('2001:DB8:0001:0002::1')).toBe('2001:db8:1:2::/64');
    expect(clientBucketKey('::1')).toBe('0:0:0:0::/64');
    expect(clientBucketKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(clientBucketKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(clientBucketKey('64:ff9b::192.0.2.7')).toBe('64:ff9b:0:0::/64');
    expect(clientBucketKey('unknown')).toBe('unknown');
    const { limiter } = setup();
    for (let i = 0; i < 3; i++) limiter.forClient(`2001:db8:0:1::${i + 1}`);
    expect(limiter.forClient('2001:db8:0:1:ffff:ffff:ffff:ffff').allowed).toBe(false);
    expect(limiter.forClient('2001:db8:0:2::1').allowed).toBe(true);
  });

  test('memory stays bounded under a flood of distinct clients; full buckets are swept', () => {
    const { limiter, advance } = setup({ requestsPerMinute: 60, burst: 3, maxTrackedClients: 100 });
    for (let i = 0; i < 10_000; i++) limiter.forClient(`10.0.${i >> 8}.${i & 255}`);
    expect(limiter.size.clients).toBe(100);
    expect(limiter.size.keys).toBe(0);
    advance(1000);
    expect(limiter.sweep()).toBe(100);
    expect(limiter.size.clients).toBe(0);
  });

  test('headers', () => {
    expect(
      rateLimitHeaders({
        allowed: true,
        limit: 5,
        remaining: 4,
        resetAtSeconds: 123,
        retryAfterSeconds: 0,
      }),
    ).toEqual({
      'x-ratelimit-limit': '5',
      'x-ratelimit-remaining': '4',
      'x-ratelimit-reset': '123',
    });
  });
});
