/** Per-request metadata (id, start, client address, audit actor and target). */
import { pooledRandomBytes } from '../ids.ts';

/**
 * What Secryn knows about one request beyond what Elysia carries: its id, when it started and
 * where it came from. Kept in a WeakMap keyed by the Request so that every lifecycle hook
 * (including the error funnel and the access log) sees the same record without threading it
 * through handlers.
 */
export type RequestMeta = {
  requestId: string;
  startedAt: number;
  clientIp: string;
  /** Who made the request, once authentication has looked at it (set by the access layer). */
  actor?: AuditActor;
  /** The audited action of the matched route, e.g. `resource.reveal` (set by the access layer). */
  action?: string;
  /** What the request acted on, as far as it is known (set by the access layer or a handler). */
  target?: AuditTarget;
  /**
   * True when a 404 was the access layer hiding something outside the caller's projects or
   * vaults (a denial), as opposed to something that does not exist.
   */
  denied?: boolean;
  /**
   * Extra facts for this request's audit entry (its `details`), e.g. `{via: 'console',
   * session_id}` for a request made through a console session.
   */
  auditDetails?: Record<string, unknown>;
  /** True once this request's audit entry has been committed (e.g. with its write). */
  audited?: boolean;
  /**
   * True when the request already waited `storage.busy_timeout_ms` for the write lock (its write
   * failed with DatabaseBusyError): its audit entry is tried, but does not wait again.
   */
  lockWaitSpent?: boolean;
};

/** The actor of an audit entry. API requests: `api_key` (or `anonymous` when no key was usable). */
export type AuditActor = {
  type: 'api_key' | 'anonymous' | 'local_user' | 'system';
  id: string | null;
  name: string | null;
};

/** The target of an audit entry: `{ type: 'resource', id: 'res_…' }`; `id` null for collections. */
export type AuditTarget = { type: string; id: string | null };

/**
 * The meta of each request. Kept in a WeakMap keyed by the Request rather than on Elysia's typed
 * context (derive/resolve), measured and decided in issue 14: the state is made in `onRequest`,
 * which runs before any `derive`/`resolve` (authentication and rate limiting come before body
 * parsing on purpose), and it is read by code that holds only the Request: the change pipeline, the
 * audit entry builders, `hideAsNotFound`, the error funnel and the access log (83 call sites in 27
 * files). Elysia passes one context object through every hook, so a global `derive` could re-expose
 * it to handlers, but the code below the handlers would still need it threaded by hand. Cost is not
 * the reason: three WeakMap sets and six gets cost ~30 ns a request, the same state on the context
 * plus a derive's copy ~70 ns, against ~2.5–4 µs for the smallest Elysia request through
 * `app.handle` (micro-benchmarks in one run, Bun 1.4.5, Elysia 1.4.30).
 */
const metas = new WeakMap<Request, RequestMeta>();

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/** Echoes a sane incoming `X-Request-Id` (8–128 of `[A-Za-z0-9._:-]`), else generates one. */
export function chooseRequestId(incoming: string | null): string {
  if (incoming && SAFE_REQUEST_ID.test(incoming)) return incoming;
  return `req_${pooledRandomBytes(12).toString('base64url')}`;
}

/** Records the meta of a request; called once, first thing, by the request hook. */
export function setRequestMeta(request: Request, meta: RequestMeta): RequestMeta {
  metas.set(request, meta);
  return meta;
}

/**
 * The meta of a request. A request that never went through the request hook (should not happen)
 * gets a fresh record rather than a crash.
 */
export function requestMeta(request: Request): RequestMeta {
  let meta = metas.get(request);
  if (!meta) {
    meta = { requestId: chooseRequestId(null), startedAt: performance.now(), clientIp: 'unknown' };
    metas.set(request, meta);
  }
  return meta;
}
