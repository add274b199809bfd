/**
 * Request rate limiting (docs/api.md §1): one token bucket per API key for authenticated requests,
 * one per client address for requests without a usable key (so guessing keys is slow). Both
 * are bounded by `rate_limit.max_tracked_clients` and O(1) per request; see
 * `token-bucket.ts` for the bucket model and the eviction trade-off.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { AppError } from '../errors.ts';
import { formatIp, ipv6Groups, parseIp, unmapIpv4 } from '../net/ip.ts';
import type { Principal } from './principal.ts';
import {
  TokenBucketLimiter,
  type TokenBucketLimits,
  type TokenBucketResult,
} from './token-bucket.ts';

/** The `[rate_limit]` settings. */
export type RateLimitSettings = {
  requestsPerMinute: number;
  burst: number;
  maxTrackedClients: number;
};

/** 429 in the error shape; the `Retry-After` header travels beside it. */
export class RateLimitedError extends AppError {
  constructor(readonly retryAfterSeconds: number) {
    super('RATE_LIMITED', 'Too many requests', {
      reason: `Rate limit exceeded; retry after ${retryAfterSeconds} s`,
    });
  }
}

/** The two limiters of the API: per key, and per client address for anonymous requests. */
export class RequestRateLimiter {
  private readonly keys: TokenBucketLimiter;
  private readonly clients: TokenBucketLimiter;
  private defaults: TokenBucketLimits;

  /** @param now the clock in epoch ms (inject one in tests). */
  constructor(settings: RateLimitSettings, now: () => number = Date.now) {
    this.defaults = { capacity: settings.burst, refillPerMinute: settings.requestsPerMinute };
    const options = { ...this.defaults, maxEntries: settings.maxTrackedClients, now };
    this.keys = new TokenBucketLimiter(options);
    this.clients = new TokenBucketLimiter(options);
  }

  /**
   * New default rate and burst (SIGHUP): buckets keep their state and are charged at the new
   * rate from the next request on (the bucket model allows that without stale state).
   * `max_tracked_clients` needs a restart.
   */
  reconfigure(settings: { requests_per_minute: number; burst: number }): void {
    this.defaults = { capacity: settings.burst, refillPerMinute: settings.requests_per_minute };
    this.keys.setDefaults(this.defaults);
    this.clients.setDefaults(this.defaults);
  }

  /** Takes one token from the key's bucket, honouring its per-key override. */
  forKey(principal: Principal): TokenBucketResult {
    const { requestsPerMinute, burst } = principal.rateLimit;
    if (requestsPerMinute === null && burst === null) return this.keys.take(principal.keyId);
    return this.keys.take(principal.keyId, 1, {
      capacity: burst ?? this.defaults.capacity,
      refillPerMinute: requestsPerMinute ?? this.defaults.refillPerMinute,
    });
  }

  /** Takes one token from the bucket of a client address (IPv6 grouped by /64). */
  forClient(ip: string): TokenBucketResult {
    return this.clients.take(clientBucketKey(ip));
  }

  /** Drops buckets that are full again (they carry no state); run it on a timer. */
  sweep(): number {
    return this.keys.sweep() + this.clients.sweep();
  }

  /** Buckets held, per limiter (each at most `maxTrackedClients`). */
  get size(): { keys: number; clients: number } {
    return { keys: this.keys.size, clients: this.clients.size };
  }
}

/** The `X-RateLimit-*` headers of a bucket decision (docs/api.md §1). */
export function rateLimitHeaders(result: TokenBucketResult): Record<string, string> {
  return {
    'x-ratelimit-limit': String(result.limit),
    'x-ratelimit-remaining': String(result.remaining),
    'x-ratelimit-reset': String(result.resetAtSeconds),
  };
}

/**
 * The bucket key of a client address: IPv4 as is, IPv4-mapped IPv6 as its IPv4 address, any
 * other IPv6 address as its /64 (one host usually owns a whole /64, so per-address buckets
 * would be free to multiply). Anything else (e.g. `unknown`) is used verbatim.
 */
export function clientBucketKey(ip: string): string {
  if (isIPv4(ip)) return ip;
  if (!isIPv6(ip)) return ip;
  // Fast path: the first four groups are written out (most global addresses).
  const firstGap = ip.indexOf('::');
  const head = (firstGap === -1 ? ip : ip.slice(0, firstGap)).split(':', 4);
  if (head.length === 4 && !head[3]!.includes('.') && !head[3]!.includes('%')) {
    const prefix = head.map((g) => parseInt(g, 16).toString(16)).join(':');
    if (prefix !== '0:0:0:0') return `${prefix}::/64`;
  }
  const parsed = parseIp(ip);
  if (parsed === null) return ip;
  const address = unmapIpv4(parsed);
  if (address.family === 4) return formatIp(address);
  return `${ipv6Groups(address)
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}
