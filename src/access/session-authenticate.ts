/**
 * Cookie authentication for the web console: a console session (`POST /v1/sessions`) resolves
 * to exactly the principal of the API key it was made from, on every request, with CSRF checks.
 *
 * - The cookie holds 32 random bytes (base64url); only their SHA-256 is stored
 *   (`console_sessions.token_hash`), so a copy of the database signs nobody in.
 * - Every request re-reads the key row and applies the same checks as a bearer request: MAC,
 *   revoked, expired. Revoking the key (or its expiry) ends its sessions at the next request.
 * - A session ends `idleMs` after its last request and `maxMs` after sign-in, whichever first.
 *   The last activity is kept in memory and written at most once a {@link TOUCH_WRITE_MS}, so the
 *   idle timeout seen by another process (or after a restart) may be up to that much longer.
 * - CSRF: a request that changes state (any method but GET, HEAD, OPTIONS) must carry
 *   `X-CSRF-Token` equal to HMAC-SHA256(session token, "secryn.console.csrf.v1") — bound to the
 *   session, and computable only by whoever saw the sign-in response (the cookie is HttpOnly) —
 *   and, when the browser says where it comes from (`Origin`, `Sec-Fetch-Site`), come from this
 *   same host. Requests with `Authorization` never use the cookie and are never CSRF-checked.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Database } from 'bun:sqlite';
import { commitSystemChange, type ChangeDeps } from '../changes/index.ts';
import { ForbiddenError } from '../errors.ts';
import type { RequestMeta } from '../http/request-meta.ts';
import { integrityOf } from '../keyring/integrity.ts';
import { apiKeyMacMatches } from '../keyring/api-key-mac.ts';
import type { Logger } from '../log/logger.ts';
import { SessionStore } from './session-store.ts';
import { toPrincipal } from './authenticate.ts';
import type { Principal } from './principal.ts';

/** Cookie name over plain HTTP (no `__Host-` prefix: browsers only accept that with Secure). */
export const SESSION_COOKIE = 'secryn_session';
/** Cookie name under TLS: `__Host-` makes the browser insist on Secure, Path=/ and no Domain. */
export const SECURE_SESSION_COOKIE = '__Host-secryn_session';
/** The request header that carries the CSRF token on state-changing cookie requests. */
export const CSRF_HEADER = 'x-csrf-token';

/** Longest the stored `last_seen_at` lags behind the real last request. */
export const TOUCH_WRITE_MS = 60_000;

const CSRF_CONTEXT = 'secryn.console.csrf.v1';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** The console session a request was authenticated by, if it came with the cookie. */
export type SessionInfo = { id: string; expiresAt: number; idleExpiresAt: number };

const sessionsByRequest = new WeakMap<Request, SessionInfo>();

/** The console session of a request (undefined for bearer requests). */
export function sessionOf(request: Request): SessionInfo | undefined {
  return sessionsByRequest.get(request);
}

/** A new session token (the cookie value): 256 random bits, base64url. */
export function newSessionToken(): string {
  return randomBytes(32).toString('base64url');
}

/** The SHA-256 of a session token, as stored. */
export function hashSessionToken(token: string): Uint8Array {
  return createHash('sha256').update(token).digest();
}

/** The CSRF token bound to a session token. */
export function csrfTokenFor(sessionToken: string): string {
  return createHmac('sha256', sessionToken).update(CSRF_CONTEXT).digest('base64url');
}

/** The session token in a `Cookie` header (either cookie name), or undefined. */
export function sessionCookieValue(cookieHeader: string | null): string | undefined {
  if (!cookieHeader) return undefined;
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    const name = part.slice(0, eq).trim();
    if (name !== SESSION_COOKIE && name !== SECURE_SESSION_COOKIE) continue;
    const value = part.slice(eq + 1).trim();
    if (TOKEN_PATTERN.test(value)) return value;
  }
  return undefined;
}

/** Options of {@link SessionAuthenticator}. */
export type SessionAuthenticatorOptions = {
  sqlite: Database;
  /** Where the once-a-minute activity write goes (a system change: no audit entry). */
  changes: ChangeDeps;
  logger?: Logger;
  /** Clock (epoch ms). */
  now: () => number;
  idleMs: number;
  maxMs: number;
  /** Told about every successful authentication (the key's last-used tracker). */
  onUsed?: (keyId: string, at: number) => void;
};

/** Turns console session cookies into principals. */
export class SessionAuthenticator {
  readonly store: SessionStore;
  private readonly macKey: Uint8Array;
  /** Last request per session id, newer than the stored `last_seen_at`. */
  private readonly lastSeen = new Map<string, { at: number; written: number }>();

  constructor(private readonly options: SessionAuthenticatorOptions) {
    this.store = new SessionStore(options.sqlite);
    this.macKey = integrityOf(options.sqlite).apiKeyMac;
  }

  /**
   * The principal of a request's session cookie, or undefined when there is no usable session
   * (none, unknown, idle too long, past its lifetime, key revoked, expired or tampered: the
   * caller answers 401). Throws 403 for a state-changing request without a valid CSRF token or
   * from another origin (after setting the actor, so the denial is audited against the key).
   */
  authenticate(request: Request, meta: RequestMeta): Principal | undefined {
    const token = sessionCookieValue(request.headers.get('cookie'));
    if (token === undefined) return undefined;
    const session = this.store.findByTokenHash(hashSessionToken(token));
    if (!session) return undefined;
    const now = this.options.now();
    const seen = Math.max(session.last_seen_at, this.lastSeen.get(session.id)?.at ?? 0);
    if (now >= session.expires_at || now >= seen + this.options.idleMs) {
      this.lastSeen.delete(session.id);
      return undefined;
    }
    const key = this.store.findKey(session.key_id);
    if (!key || key.revoked_at !== null) return undefined;
    if (key.expires_at !== null && key.expires_at <= now) return undefined;
    if (!apiKeyMacMatches(this.macKey, key, key.mac)) return undefined;
    const principal = toPrincipal(key);
    if (!principal) return undefined;

    meta.actor = { type: 'api_key', id: principal.keyId, name: principal.name };
    meta.auditDetails = { via: 'console', session_id: session.id };
    if (!SAFE_METHODS.has(request.method.toUpperCase())) checkCsrf(request, token);

    sessionsByRequest.set(request, {
      id: session.id,
      expiresAt: session.expires_at,
      idleExpiresAt: now + this.options.idleMs,
    });
    this.touch(session.id, session.last_seen_at, now);
    this.options.onUsed?.(principal.keyId, now);
    return principal;
  }

  /** Forgets the in-memory activity of a session that was deleted. */
  forget(sessionId: string): void {
    this.lastSeen.delete(sessionId);
  }

  private touch(id: string, stored: number, now: number): void {
    const entry = this.lastSeen.get(id) ?? { at: stored, written: stored };
    entry.at = Math.max(entry.at, now);
    this.lastSeen.set(id, entry);
    if (entry.at - entry.written < TOUCH_WRITE_MS) return;
    entry.written = entry.at;
    const at = entry.at;
    commitSystemChange(this.options.changes, () => this.store.touch(id, at)).catch(
      (error: unknown) => {
        // Only the idle timeout seen after a restart suffers; the memory copy is still right.
        this.options.logger?.warn('could not record console session activity', {
          error: error instanceof Error ? error.message : String(error),
        });
      },
    );
  }
}

/** Refuses a cookie request that changes state without proof it came from the console page. */
function checkCsrf(request: Request, sessionToken: string): void {
  const origin = request.headers.get('origin');
  const host = request.headers.get('host') ?? new URL(request.url).host;
  if (origin !== null) {
    let originHost: string | undefined;
    try {
      originHost = new URL(origin).host;
    } catch {
      originHost = undefined;
    }
    if (originHost !== host) throw new ForbiddenError('Cross-origin request refused');
  }
  const fetchSite = request.headers.get('sec-fetch-site');
  if (fetchSite !== null && fetchSite !== 'same-origin') {
    throw new ForbiddenError('Cross-site request refused');
  }
  const presented = Buffer.from(request.headers.get(CSRF_HEADER) ?? '');
  const expected = Buffer.from(csrfTokenFor(sessionToken));
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
    throw new ForbiddenError(`A valid ${CSRF_HEADER} header is required`);
  }
}
