/**
 * Bearer-token authentication: the token is checked offline first (shape and checksum, no I/O),
 * then one prepared point read by its lookup id, a constant-time hash comparison, and the
 * revoked/expired checks. Nothing is cached between requests, so a revocation takes effect on
 * the very next request. `last_used_at` is coalesced in memory and written in one batch every
 * few seconds (and on shutdown) instead of once per request.
 */
import type { Database, Statement } from 'bun:sqlite';
import { apiTokenHashMatches, parseApiToken } from '../crypto/api-token.ts';
import type { WriteQueue } from '../db/write-queue.ts';
import type { Logger } from '../log/logger.ts';
import { isPermission, isRole, type Permission } from './permissions.ts';
import { principalFor, type Principal } from './principal.ts';

/**
 * The one `details.reason` of every 401: missing, malformed, unknown, expired and revoked keys
 * must look the same to the caller.
 */
export const UNAUTHORIZED_REASON = 'A valid API key is required';

type KeyRecord = {
  id: string;
  name: string;
  role: string;
  token_hash: Uint8Array;
  project_ids: string;
  vault_ids: string;
  scopes: string | null;
  expires_at: number | null;
  revoked_at: number | null;
  rate_limit_per_minute: number | null;
  rate_limit_burst: number | null;
};

const BEARER = /^Bearer +([^\s]+) *$/i;

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | null): string | undefined {
  if (header === null) return undefined;
  return BEARER.exec(header)?.[1];
}

/** Compared against when the lookup id is unknown, so that a miss costs what a hit costs. */
const NO_SUCH_HASH = new Uint8Array(32);

/** Turns bearer tokens into principals against the `api_keys` table. */
export class Authenticator {
  private readonly lookup: Statement<KeyRecord, [string]>;

  /**
   * @param now the clock (epoch ms) that decides expiry.
   * @param onUsed told about every successful authentication (the last-used tracker).
   */
  constructor(
    sqlite: Database,
    private readonly now: () => number,
    private readonly onUsed: (keyId: string, at: number) => void = () => {},
  ) {
    this.lookup = sqlite.prepare<KeyRecord, [string]>(
      `SELECT id, name, role, token_hash, project_ids, vault_ids, scopes, expires_at, revoked_at,
              rate_limit_per_minute, rate_limit_burst
         FROM api_keys WHERE lookup_id = ?1`,
    );
  }

  /**
   * The principal of an `Authorization` header value, or undefined when there is no usable key
   * (missing, malformed, bad checksum, unknown, wrong secret, revoked or expired: the caller
   * answers all of them with the same 401).
   */
  authenticate(authorization: string | null): Principal | undefined {
    const token = bearerToken(authorization);
    if (token === undefined) return undefined;
    const parsed = parseApiToken(token);
    if (parsed === null) return undefined;
    const record = this.lookup.get(parsed.lookupId);
    if (record === null) {
      apiTokenHashMatches(token, NO_SUCH_HASH);
      return undefined;
    }
    if (!apiTokenHashMatches(token, record.token_hash)) return undefined;
    const now = this.now();
    if (record.revoked_at !== null) return undefined;
    if (record.expires_at !== null && record.expires_at <= now) return undefined;
    const principal = toPrincipal(record);
    if (principal) this.onUsed(record.id, now);
    return principal;
  }
}

function toPrincipal(record: KeyRecord): Principal | undefined {
  if (!isRole(record.role)) return undefined; // a CHECK constraint makes this unreachable
  const scopes = record.scopes === null ? null : stringArray(record.scopes);
  return principalFor({
    keyId: record.id,
    name: record.name,
    role: record.role,
    projectIds: stringArray(record.project_ids),
    vaultIds: stringArray(record.vault_ids),
    // An unknown stored scope grants nothing (fail closed), it is not an error.
    scopes: scopes === null ? null : scopes.filter((s): s is Permission => isPermission(s)),
    expiresAt: record.expires_at,
    rateLimit: {
      requestsPerMinute: record.rate_limit_per_minute,
      burst: record.rate_limit_burst,
    },
  });
}

function stringArray(json: string): string[] {
  const value: unknown = JSON.parse(json);
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/**
 * Coalesces `last_used_at`: requests only touch a map; `flush` writes every pending time in one
 * group-committed transaction. A time never moves backwards (the UPDATE keeps the later one).
 */
export class LastUsedTracker {
  private pendingTimes = new Map<string, number>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private readonly update: Statement<unknown, [number, string]>;

  constructor(
    sqlite: Database,
    private readonly writes: WriteQueue,
    private readonly logger?: Logger,
  ) {
    this.update = sqlite.prepare<unknown, [number, string]>(
      `UPDATE api_keys SET last_used_at = ?1
        WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)`,
    );
  }

  /** Records a use; O(1), no I/O. The map holds at most one entry per existing key. */
  touch(keyId: string, at: number): void {
    const previous = this.pendingTimes.get(keyId);
    if (previous === undefined || at > previous) this.pendingTimes.set(keyId, at);
  }

  /** The use not yet written for a key, if any (so reads can show it before the flush). */
  pending(keyId: string): number | undefined {
    return this.pendingTimes.get(keyId);
  }

  /** Writes every pending time in one transaction; resolves once it is committed. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.flushNow());
    return this.flushing;
  }

  /** Flushes every `intervalMs` until {@link stop}. */
  start(intervalMs: number): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref?.();
  }

  /** Stops the timer and writes what is pending. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  private async flushNow(): Promise<void> {
    if (this.pendingTimes.size === 0) return;
    const batch = this.pendingTimes;
    this.pendingTimes = new Map();
    try {
      await this.writes.run(() => {
        for (const [keyId, at] of batch) this.update.run(at, keyId);
      });
    } catch (error) {
      // Keep them for the next flush (a later use of the same key wins).
      for (const [keyId, at] of batch) this.touch(keyId, at);
      this.logger?.warn('could not record API key use', {
        keys: batch.size,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }
}
