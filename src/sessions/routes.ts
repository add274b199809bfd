/**
 * Console sessions (docs/api.md §10): `POST /v1/sessions` turns the bearer API key of the request into
 * an HttpOnly, SameSite=Strict session cookie plus a CSRF token; `GET /v1/sessions/current` gives
 * a reloaded console page its CSRF token again; `DELETE /v1/sessions/current` signs out. How a
 * cookie is then checked is in `src/access/session-authenticate.ts`; docs/console.md explains
 * the design.
 *
 * These routes are mounted before the idempotency plugin on purpose: every sign-in must be a new
 * session, and a replayed response would hand out a CSRF token without its cookie.
 */
import { Elysia, t } from 'elysia';
import { principalOf } from '../access/principal.ts';
import { commitChange } from '../changes/index.ts';
import {
  csrfTokenFor,
  hashSessionToken,
  newSessionToken,
  SECURE_SESSION_COOKIE,
  SESSION_COOKIE,
  sessionCookieValue,
  sessionOf,
  type SessionAuthenticator,
} from '../access/session-authenticate.ts';
import { toRfc3339 } from '../db/columns.ts';
import { ForbiddenError, NotFoundError } from '../errors.ts';
import { respondCreated } from '../http/created.ts';
import { ResponseInteger } from '../http/schemas.ts';
import { requestMeta } from '../http/request-meta.ts';
import { newTypeId } from '../ids.ts';
import type { Instance } from '../instance.ts';
import { toMeObject } from '../me/routes.ts';
import { MeSchema } from '../me/schemas.ts';
import { Deleted } from '../http/fields.ts';

/** What sign-in and `GET /v1/sessions/current` answer. Never the session token itself. */
export const SessionSchema = t.Object(
  {
    id: t.String({ description: 'ses_…, named in the audit entries of the session' }),
    csrf_token: t.String({
      description: 'Send as X-CSRF-Token on every state-changing request made with the cookie',
    }),
    expires_at: t.String({ description: 'When the session ends at the latest (RFC 3339)' }),
    idle_timeout_seconds: ResponseInteger({
      description: 'The session ends after this long without a request',
    }),
    key: MeSchema,
  },
  { description: 'A console session' },
);

const detail = (summary: string, description: string) => ({
  summary,
  description,
  tags: ['sessions'],
});

type SetLike = { status?: unknown; headers: Record<string, unknown> };

/** The `/v1/sessions` routes; `sessions` is undefined when the console is disabled. */
export function sessionRoutes(instance: Instance, sessions: SessionAuthenticator | undefined) {
  const { clock, config } = instance;
  const idleMs = config.console.session_idle_minutes * 60_000;
  const maxMs = config.console.session_max_hours * 3_600_000;
  const tls = config.server.tls_cert_file !== undefined;

  const enabled = (): SessionAuthenticator => {
    if (!sessions) throw new NotFoundError('Console');
    return sessions;
  };
  const secure = (request: Request) => tls || request.url.startsWith('https:');
  const noStore = (set: SetLike) => {
    set.headers['cache-control'] = 'no-store';
  };

  return new Elysia({ name: 'sessions' })
    .post(
      '/v1/sessions',
      async ({ request, set }) => {
        const store = enabled().store;
        if (sessionOf(request)) {
          throw new ForbiddenError(
            'Sign in with an API key (Authorization: Bearer), not a session',
          );
        }
        const key = principalOf(request);
        const now = clock.now();
        const id = newTypeId('ses', now);
        const token = newSessionToken();
        // The key's own expiry ends the session anyway; the cookie need not outlive it.
        const expiresAt = Math.min(now + maxMs, key.expiresAt ?? Number.POSITIVE_INFINITY);
        requestMeta(request).target = { type: 'session', id };
        requestMeta(request).auditDetails = { via: 'console', session_id: id };
        // The session row and the sign-in's audit entry commit together. No body is kept for
        // replay: these routes are mounted before the idempotency plugin.
        await commitChange(instance, request, 201, () => {
          store.deleteEnded(now, now - idleMs);
          store.insert({
            id,
            tokenHash: hashSessionToken(token),
            keyId: key.keyId,
            createdAt: now,
            expiresAt,
          });
          return { body: null };
        });
        const name = secure(request) ? SECURE_SESSION_COOKIE : SESSION_COOKIE;
        const maxAge = Math.max(0, Math.floor((expiresAt - now) / 1000));
        set.headers['set-cookie'] =
          `${name}=${token}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Strict` +
          (secure(request) ? '; Secure' : '');
        noStore(set);
        return respondCreated(set, '/v1/sessions/current', {
          id,
          csrf_token: csrfTokenFor(token),
          expires_at: toRfc3339(expiresAt),
          idle_timeout_seconds: idleMs / 1000,
          key: toMeObject(key),
        });
      },
      {
        response: { 201: SessionSchema },
        detail: detail(
          'Sign in to the console',
          'Call with `Authorization: Bearer <api key>`. Sets an HttpOnly, SameSite=Strict ' +
            'session cookie (Secure and `__Host-` prefixed under TLS) that acts as exactly ' +
            'that key until it is idle for `[console] session_idle_minutes`, reaches ' +
            '`session_max_hours`, is signed out, or the key is revoked or expires. Requests ' +
            'made with the cookie that change state must send `X-CSRF-Token: <csrf_token>`. ' +
            '`Idempotency-Key` is ignored: every call is a new session. 404 when the console ' +
            'is disabled.',
        ),
      },
    )
    .get(
      '/v1/sessions/current',
      ({ request, set }) => {
        enabled();
        const session = sessionOf(request);
        const token = sessionCookieValue(request.headers.get('cookie'));
        if (!session || token === undefined) throw new NotFoundError('Session');
        requestMeta(request).target = { type: 'session', id: session.id };
        noStore(set);
        return {
          id: session.id,
          csrf_token: csrfTokenFor(token),
          expires_at: toRfc3339(session.expiresAt),
          idle_timeout_seconds: idleMs / 1000,
          key: toMeObject(principalOf(request)),
        };
      },
      {
        response: { 200: SessionSchema },
        detail: detail(
          'The current console session',
          'Only with the session cookie (404 with a bearer key): the session and its CSRF ' +
            'token again, for a console page that was reloaded.',
        ),
      },
    )
    .delete(
      '/v1/sessions/current',
      async ({ request, set }) => {
        const authenticator = enabled();
        const session = sessionOf(request);
        if (!session) throw new NotFoundError('Session');
        requestMeta(request).target = { type: 'session', id: session.id };
        await commitChange(instance, request, 200, () => {
          authenticator.store.delete(session.id);
          return { body: null };
        });
        authenticator.forget(session.id);
        set.headers['set-cookie'] = secure(request)
          ? `${SECURE_SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict; Secure`
          : `${SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict`;
        noStore(set);
        return { id: session.id, deleted: true as const };
      },
      {
        response: { 200: Deleted },
        detail: detail(
          'Sign out of the console',
          'Only with the session cookie and its `X-CSRF-Token` (404 with a bearer key). Ends ' +
            'the session at once and clears the cookie.',
        ),
      },
    );
}
