/**
 * Bearer-token authentication: the token is checked offline first (shape and checksum, no I/O),
 * then its key is found by lookup id, its hash compared in constant time, and the revoked and
 * expired checks applied. `last_used_at` is coalesced in memory and written in one batch every
 * few seconds (and on shutdown) instead of once per request.
 *
 * Keys are cached per lookup id (the hash comparison still runs on every request), because a
 * point read outside a transaction costs more than everything else here together. The cache is
 * dropped
 * - at once when this process changes a key ({@link noteApiKeyChange}, called by the keys
 *   service), so `DELETE /v1/api-keys/:id` refuses the very next request;
 * - when another process (the CLI) has committed anything, seen through SQLite's
 *   `PRAGMA data_version`, which is read at most every {@link CROSS_PROCESS_CHECK_MS}. `secryn
 *   keys revoke` waits {@link KEY_CHANGE_VISIBLE_AFTER_MS} before it reports success, so a
 *   request made after it has said so is refused.
 */
import type { Database, Statement } from 'bun:sqlite';
import {
  apiTokenChecksumMatches,
  apiTokenHashMatches,
  apiTokenLookupId,
} from '../crypto/api-token.ts';
import { commitSystemChange, type ChangeDeps } from '../changes/index.ts';
import { integrityOf } from '../keyring/integrity.ts';
import {
  API_KEY_MAC_COLUMNS,
  apiKeyMacMatches,
  type ApiKeyMacFields,
} from '../keyring/api-key-mac.ts';
import type { Logger } from '../log/logger.ts';
import { isPermission, isRole, type Permission } from './permissions.ts';
import { principalFor, type Principal } from './principal.ts';

/**
 * The one `details.reason` of every 401: missing, malformed, unknown, expired and revoked keys
 * must look the same to the caller.
 */
export const UNAUTHORIZED_REASON = 'A valid API key is required';

export type KeyRecord = ApiKeyMacFields & { mac: string | null };

const BEARER = /^Bearer +([^\s]+) *$/i;

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | null): string | undefined {
  if (header === null) return undefined;
  return BEARER.exec(header)?.[1];
}

/** Compared against when the lookup id is unknown, so that a miss costs what a hit costs. */
const NO_SUCH_HASH = new Uint8Array(32);

/** Longest a cached key is trusted without asking SQLite whether another process wrote. */
export const CROSS_PROCESS_CHECK_MS = 50;

/**
 * How long a process that changed a key must wait before it can say that a running server has
 * seen the change: longer than {@link CROSS_PROCESS_CHECK_MS}, so every request the server takes
 * after that moment follows a `data_version` read made after the change committed.
 */
export const KEY_CHANGE_VISIBLE_AFTER_MS = 2 * CROSS_PROCESS_CHECK_MS;

/** Most keys cached; past it the cache starts over (there are rarely this many live keys). */
const MAX_CACHED_KEYS = 10_000;

let keyChanges = 0;

/**
 * Tells every Authenticator of this process that a key was created, changed or revoked: their
 * caches are dropped before the next request. Call it whenever `api_keys` is written (a rolled
 * back write only costs a refill).
 */
export function noteApiKeyChange(): void {
  keyChanges++;
}

/** A key as cached: what every request needs, with the principal built once. */
type CachedKey = {
  id: string;
  tokenHash: Uint8Array;
  revoked: boolean;
  expiresAt: number | null;
  /** Undefined when the stored role is unknown (unreachable: a CHECK constraint). */
  principal: Principal | undefined;
  /** The row's MAC does not verify: planted or edited in the file; refused like an unknown key. */
  tampered: boolean;
};

/** Options of {@link Authenticator}, for tests. */
export type AuthenticatorOptions = {
  /** Monotonic clock (ms) that paces the cross-process check; default `performance.now`. */
  monotonicNow?: () => number;
};

/** Told when a presented token matches a key whose row fails its MAC (see authenticate). */
export type TamperedKeyReport = (keyId: string) => void;

/** Turns bearer tokens into principals against the `api_keys` table. */
export class Authenticator {
  private readonly lookup: Statement<KeyRecord, [string]>;
  private readonly dataVersion: Statement<{ data_version: number }, []>;
  private readonly monotonicNow: () => number;
  private readonly macKey: Uint8Array;
  private readonly cache = new Map<string, CachedKey>();
  private seenKeyChanges = keyChanges;
  private seenDataVersion = -1;
  private checkedAt = Number.NEGATIVE_INFINITY;

  /**
   * @param now the clock (epoch ms) that decides expiry.
   * @param onUsed told about every successful authentication (the last-used tracker).
   */
  constructor(
    sqlite: Database,
    private readonly now: () => number,
    private readonly onUsed: (keyId: string, at: number) => void = () => {},
    options: AuthenticatorOptions = {},
  ) {
    this.monotonicNow = options.monotonicNow ?? (() => performance.now());
    this.macKey = integrityOf(sqlite).apiKeyMac;
    this.dataVersion = sqlite.prepare<{ data_version: number }, []>('PRAGMA data_version');
    this.lookup = sqlite.prepare<KeyRecord, [string]>(
      `SELECT ${API_KEY_MAC_COLUMNS}, mac FROM api_keys WHERE lookup_id = ?1`,
    );
  }

  /**
   * The principal of an `Authorization` header value, or undefined when there is no usable key
   * (missing, malformed, bad checksum, unknown, wrong secret, revoked or expired: the caller
   * answers all of them with the same 401). A key whose row fails its MAC is one of them too;
   * `onTampered` is told when the token presented is that key's (someone uses a planted or
   * edited key).
   */
  authenticate(
    authorization: string | null,
    onTampered?: TamperedKeyReport,
  ): Principal | undefined {
    const token = bearerToken(authorization);
    if (token === undefined) return undefined;
    const lookupId = apiTokenLookupId(token);
    if (lookupId === null) return undefined;
    const key = this.findKey(lookupId, token);
    if (key === undefined) {
      apiTokenHashMatches(token, NO_SUCH_HASH);
      return undefined;
    }
    if (!apiTokenHashMatches(token, key.tokenHash)) return undefined;
    if (key.tampered) {
      onTampered?.(key.id);
      return undefined;
    }
    const now = this.now();
    if (key.revoked) return undefined;
    if (key.expiresAt !== null && key.expiresAt <= now) return undefined;
    if (key.principal) this.onUsed(key.id, now);
    return key.principal;
  }

  /**
   * The key with this lookup id, from the cache when it is still current. The token's checksum
   * is checked before the database is asked (on a cache hit the hash comparison decides). The
   * row's MAC is checked when it is read from the database, so a cached key costs nothing more.
   */
  private findKey(lookupId: string, token: string): CachedKey | undefined {
    this.dropCacheIfStale();
    const cached = this.cache.get(lookupId);
    if (cached) return cached;
    if (!apiTokenChecksumMatches(token)) return undefined;
    const record = this.lookup.get(lookupId);
    // Unknown ids are not cached: anyone can send those, the cache would be theirs to fill.
    if (record === null) return undefined;
    if (this.cache.size >= MAX_CACHED_KEYS) this.cache.clear();
    const tampered = !apiKeyMacMatches(this.macKey, record, record.mac);
    const key: CachedKey = {
      id: record.id,
      tokenHash: record.token_hash,
      revoked: record.revoked_at !== null,
      expiresAt: record.expires_at,
      principal: tampered ? undefined : toPrincipal(record),
      tampered,
    };
    this.cache.set(lookupId, key);
    return key;
  }

  private dropCacheIfStale(): void {
    if (this.seenKeyChanges !== keyChanges) {
      this.seenKeyChanges = keyChanges;
      this.cache.clear();
    }
    const now = this.monotonicNow();
    if (now - this.checkedAt < CROSS_PROCESS_CHECK_MS) return;
    this.checkedAt = now;
    const version = this.dataVersion.get()?.data_version ?? -1;
    if (version !== this.seenDataVersion) {
      this.seenDataVersion = version;
      this.cache.clear();
    }
  }
}

export function toPrincipal(record: KeyRecord): Principal | undefined {
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
    private readonly deps: ChangeDeps,
    private readonly logger?: Logger,
  ) {
    this.update = deps.sqlite.prepare<unknown, [number, string]>(
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
      await commitSystemChange(this.deps, () => {
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
