import { randomBytes } from 'node:crypto';

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
};

const metas = new WeakMap<Request, RequestMeta>();

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/** Echoes a sane incoming `X-Request-Id` (8–128 of `[A-Za-z0-9._:-]`), else generates one. */
export function chooseRequestId(incoming: string | null): string {
  if (incoming && SAFE_REQUEST_ID.test(incoming)) return incoming;
  return `req_${randomBytes(12).toString('base64url')}`;
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
