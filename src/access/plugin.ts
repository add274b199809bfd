/**
 * The access layer as one Elysia plugin, mounted first among the features (see `features.ts`):
 *
 * 1. `onRequest` (before routing and body parsing), for every path under `/v1` except the public
 *    ones: authenticate the bearer key, then charge its rate-limit bucket — or, without a
 *    usable key, the client address's bucket — and answer 401 / 429 right there. So probing
 *    routes, validation or body handling without a key is impossible.
 * 2. `transform` (after routing, before validation and the handler): look the matched route up
 *    in the permission table and answer 403 unless the key holds its permission. A `/v1` route
 *    without a table entry is refused (fail closed). Sets the audit action and target.
 * 3. Handlers then only check *where* (projects, vaults) with the helpers of `visibility.ts`.
 *
 * On `listen` it refuses to start if any `/v1` route lacks a table entry or was mounted before
 * this plugin (and so would bypass step 2).
 */
import { Elysia } from 'elysia';
import { appendAuditEntryDurably } from '../ledger/audit-record.ts';
import { ForbiddenError, UnauthorizedError } from '../errors.ts';
import { requestMeta, type AuditActor, type RequestMeta } from '../http/request-meta.ts';
import type { Instance } from '../instance.ts';
import { Authenticator, LastUsedTracker, UNAUTHORIZED_REASON } from './authenticate.ts';
import { GUARDED_PATHS, PUBLIC_V1_PATHS, routeRule } from './permissions.ts';
import { SessionAuthenticator } from './session-authenticate.ts';
import { findPrincipal, setPrincipal } from './principal.ts';
import { RateLimitedError, rateLimitHeaders, RequestRateLimiter } from './rate-limit.ts';
import type { TokenBucketResult } from './token-bucket.ts';

/** Options of {@link createAccessLayer}; the defaults suit production. */
export type AccessLayerOptions = {
  /** Clock (epoch ms) for expiry and rate limits; default the instance's clock. */
  now?: () => number;
  /** How often coalesced `last_used_at` times are written; default 5 s. */
  lastUsedFlushMs?: number;
  /** How often full rate-limit buckets are dropped; default 60 s. */
  sweepIntervalMs?: number;
};

/** The access layer of one app: its plugin, its parts, and its background timers. */
export type AccessLayer = {
  /** Mount before every feature that declares `/v1` routes. */
  plugin: ReturnType<typeof accessPlugin>['plugin'];
  authenticator: Authenticator;
  limiter: RequestRateLimiter;
  lastUsed: LastUsedTracker;
  /** Console session cookies; undefined when `[console] enabled = false`. */
  sessions: SessionAuthenticator | undefined;
  /**
   * The `/v1` routes of an app that this layer would not guard (no table entry, or mounted
   * before the plugin); checked on `listen`, and by the tests for the assembled app.
   */
  unguardedRoutes(routes: readonly RegisteredRoute[]): string[];
  /** Starts the last-used flusher and the bucket sweeper. */
  start(): void;
  /** Stops them and writes pending last-used times. */
  stop(): Promise<void>;
};

const ANONYMOUS: AuditActor = { type: 'anonymous', id: null, name: null };

/** True for a request path or route pattern that needs an API key. */
export function needsKey(path: string): boolean {
  if (GUARDED_PATHS.has(path)) return true;
  return (path === '/v1' || path.startsWith('/v1/')) && !PUBLIC_V1_PATHS.has(path);
}

/** Builds the access layer for an instance. */
export function createAccessLayer(
  instance: Instance,
  options: AccessLayerOptions = {},
): AccessLayer {
  const now = options.now ?? (() => instance.clock.now());
  const lastUsed = new LastUsedTracker(instance, instance.logger);
  const authenticator = new Authenticator(instance.sqlite, now, (id, at) => lastUsed.touch(id, at));
  const reportTampered = tamperedKeyReporter(instance);
  const { rate_limit, console: consoleConfig } = instance.config;
  const sessions = consoleConfig.enabled
    ? new SessionAuthenticator({
        sqlite: instance.sqlite,
        changes: instance,
        logger: instance.logger,
        now,
        idleMs: consoleConfig.session_idle_minutes * 60_000,
        maxMs: consoleConfig.session_max_hours * 3_600_000,
        onUsed: (id, at) => lastUsed.touch(id, at),
      })
    : undefined;
  const limiter = new RequestRateLimiter(
    {
      requestsPerMinute: rate_limit.requests_per_minute,
      burst: rate_limit.burst,
      maxTrackedClients: rate_limit.max_tracked_clients,
    },
    now,
  );
  let sweeper: ReturnType<typeof setInterval> | undefined;
  const { plugin, authorize } = accessPlugin(authenticator, limiter, reportTampered, sessions);
  return {
    plugin,
    authenticator,
    limiter,
    lastUsed,
    sessions,
    unguardedRoutes: (routes) => unguardedRoutes(routes, authorize),
    start() {
      lastUsed.start(options.lastUsedFlushMs ?? 5_000);
      sweeper ??= setInterval(() => limiter.sweep(), options.sweepIntervalMs ?? 60_000);
      sweeper.unref?.();
    },
    async stop() {
      if (sweeper) clearInterval(sweeper);
      sweeper = undefined;
      await lastUsed.stop();
    },
  };
}

/**
 * Logs, and audits as `api_key.tampered`, a request that presented the token of a key whose row
 * fails its MAC: someone wrote the database file and is now using what they planted.
 */
function tamperedKeyReporter(instance: Instance) {
  return (keyId: string, meta: RequestMeta, userAgent: string | null) => {
    instance.logger.error('refused an API key whose stored row fails its integrity check', {
      key_id: keyId,
      request_id: meta.requestId,
    });
    appendAuditEntryDurably(instance, {
      actor: ANONYMOUS,
      action: 'api_key.tampered',
      target: { type: 'api_key', id: keyId },
      outcome: 'denied',
      status: 401,
      ip: meta.clientIp,
      userAgent,
      requestId: meta.requestId,
    }).catch(() => {
      // The writer has logged why; the request is refused either way.
    });
  };
}

function accessPlugin(
  authenticator: Authenticator,
  limiter: RequestRateLimiter,
  reportTampered: (keyId: string, meta: RequestMeta, userAgent: string | null) => void,
  sessions?: SessionAuthenticator,
) {
  const charge = (set: { headers: Record<string, unknown> }, decision: TokenBucketResult) => {
    Object.assign(set.headers, rateLimitHeaders(decision));
    if (!decision.allowed) {
      set.headers['retry-after'] = String(decision.retryAfterSeconds);
      throw new RateLimitedError(decision.retryAfterSeconds);
    }
  };

  const authenticate = ({
    request,
    set,
  }: {
    request: Request;
    set: { headers: Record<string, unknown> };
  }) => {
    if (!needsKey(pathOf(request.url))) return;
    const meta = requestMeta(request);
    const authorization = request.headers.get('authorization');
    // Without an Authorization header, a console session cookie (session-authenticate.ts).
    const principal =
      authorization === null && sessions
        ? sessions.authenticate(request, meta)
        : authenticator.authenticate(authorization, (keyId) =>
            reportTampered(keyId, meta, request.headers.get('user-agent')),
          );
    if (!principal) {
      meta.actor = ANONYMOUS;
      charge(set, limiter.forClient(meta.clientIp));
      set.headers['www-authenticate'] = 'Bearer realm="secryn"';
      throw new UnauthorizedError(UNAUTHORIZED_REASON);
    }
    setPrincipal(request, principal);
    meta.actor = { type: 'api_key', id: principal.keyId, name: principal.name };
    charge(set, limiter.forKey(principal));
  };

  // One function object for the whole app: the start-up check looks for it, by identity, among
  // the hooks of every route.
  function authorize({
    request,
    route,
    params,
  }: {
    request: Request;
    route: string;
    params: Record<string, string | undefined>;
  }) {
    if (!needsKey(route)) return;
    const principal = findPrincipal(request);
    // Only reachable if the request path and the route disagree about being under /v1.
    if (!principal) throw new UnauthorizedError(UNAUTHORIZED_REASON);
    const rule = routeRule(request.method, route);
    if (!rule) throw new ForbiddenError('No permission is declared for this route');
    const meta = requestMeta(request);
    meta.action = rule.action;
    const { type, idParam } = rule.target;
    meta.target = { type, id: idParam === undefined ? null : (params?.[idParam] ?? null) };
    if (rule.permission !== null && !principal.permissions.has(rule.permission)) {
      throw new ForbiddenError(`This API key lacks the ${rule.permission} permission`);
    }
  }

  const plugin = new Elysia({ name: 'secryn-access' })
    .onRequest(authenticate) // request hooks always run for the whole app
    .onTransform({ as: 'global' }, authorize)
    .onStart((app) => {
      const problems = unguardedRoutes(app.routes, authorize);
      if (problems.length > 0) {
        throw new Error(
          `routes outside the access layer (refusing to start): ${problems.join('; ')}`,
        );
      }
    });
  return { plugin, authorize };
}

/** A route as Elysia lists it in `app.routes`. */
export type RegisteredRoute = { method: string; path: string; hooks?: unknown };

/**
 * The `/v1` routes that the access layer would not guard: no permission-table entry, or
 * mounted before the plugin (their hooks lack its transform). Empty when all is well.
 */
export function unguardedRoutes(
  routes: readonly RegisteredRoute[],
  authorize?: (...args: never[]) => unknown,
): string[] {
  const problems: string[] = [];
  for (const route of routes) {
    if (!needsKey(route.path)) continue;
    const name = `${route.method} ${route.path}`;
    if (!routeRule(route.method, route.path)) problems.push(`${name}: no permission-table entry`);
    if (authorize && !transformHooksOf(route).includes(authorize)) {
      problems.push(`${name}: mounted before the access plugin`);
    }
  }
  return problems;
}

function transformHooksOf(route: RegisteredRoute): unknown[] {
  const hooks = route.hooks as { transform?: unknown } | undefined;
  const transform = hooks?.transform;
  const list = Array.isArray(transform) ? transform : transform === undefined ? [] : [transform];
  return list.map((hook) =>
    hook && typeof hook === 'object' && 'fn' in hook ? (hook as { fn: unknown }).fn : hook,
  );
}

/** The path of an absolute request URL, without parsing it into a URL object (hot path). */
function pathOf(url: string): string {
  const start = url.indexOf('/', url.indexOf('//') + 2);
  if (start === -1) return '/';
  let end = url.length;
  const query = url.indexOf('?', start);
  if (query !== -1) end = query;
  const hash = url.indexOf('#', start);
  if (hash !== -1 && hash < end) end = hash;
  return url.slice(start, end);
}
