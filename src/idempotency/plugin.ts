/**
 * `Idempotency-Key` on every `POST` (docs/api.md §1), as one Elysia plugin mounted right after the
 * access layer (so it sees the authenticated key and runs after authorization and validation):
 *
 * - A key is 1–255 visible ASCII characters, scoped to the calling API key, kept 24 h.
 * - The first *successful* (2xx) response is stored, sealed by the keyring (it may hold a token
 *   or a secret). A retry with the same key, method, path and body (compared as canonical JSON:
 *   key order does not matter) gets that response again, with `Idempotent-Replayed: true`,
 *   without running the handler. The same key with anything else → 409 naming the header.
 * - Errors are not stored: a request that failed changed nothing, so its retry runs again.
 * - A retry that arrives while the first request is still running waits for it (at most
 *   `waitMs`, then 409), so two concurrent requests with one key never both run.
 * - Handlers that commit their change through a write job call
 *   `saveIdempotentResponseInJob` (src/ledger/idempotency-pending.ts) inside that job, so the change and its replayable
 *   response commit together (a crash between them cannot lead to a double create). For other
 *   handlers the plugin stores the response right after the handler, in its own write.
 */
import { Elysia } from 'elysia';
import { findPrincipal } from '../access/principal.ts';
import { ConflictError, InvalidRequestError } from '../errors.ts';
import { requestMeta } from '../http/request-meta.ts';
import type { Instance } from '../instance.ts';
import {
  findIdempotencyRecord,
  idempotencyRecordId,
  IDEMPOTENCY_TTL_MS,
  requestFingerprint,
  saveIdempotencyRecord,
  type StoredResponse,
} from '../ledger/idempotency-store.ts';
import { commitSystemChange } from '../changes/index.ts';
import { pendingByRequest, type Pending } from '../ledger/idempotency-pending.ts';

/** The request header (docs/api.md §1). */
export const IDEMPOTENCY_HEADER = 'Idempotency-Key';

/** Response header set on a replayed response. */
export const REPLAYED_HEADER = 'idempotent-replayed';

/** The audit action of a replayed request (the original action was recorded the first time). */
export const REPLAY_ACTION = 'idempotency.replay';

const VALID_KEY = /^[\x21-\x7e]{1,255}$/;

export type IdempotencyOptions = {
  /** How long a stored response is replayed; default 24 h. */
  ttlMs?: number;
  /** How long a retry waits for the first request still in flight; default 30 s. */
  waitMs?: number;
};

/** The plugin; mount it after the access layer and before every feature with `POST` routes. */
export function idempotencyPlugin(instance: Instance, options: IdempotencyOptions = {}) {
  const ttlMs = options.ttlMs ?? IDEMPOTENCY_TTL_MS;
  const waitMs = options.waitMs ?? 30_000;
  const inFlight = new Map<string, Promise<void>>();

  /** Waits (at most until `deadline`) for the request holding `id` to finish; false on timeout. */
  const waitFor = async (running: Promise<void>, deadline: number) =>
    Promise.race([
      running.then(() => true),
      Bun.sleep(Math.max(0, deadline - performance.now())).then(() => false),
    ]);

  return new Elysia({ name: 'secryn-idempotency' })
    .onBeforeHandle({ as: 'global' }, async ({ request, body }) => {
      if (request.method !== 'POST') return;
      const key = request.headers.get('idempotency-key');
      if (key === null) return;
      const principal = findPrincipal(request);
      if (!principal) return;
      if (!VALID_KEY.test(key)) {
        throw new InvalidRequestError(
          IDEMPOTENCY_HEADER,
          'Must be 1 to 255 visible ASCII characters',
        );
      }
      const id = idempotencyRecordId(principal.keyId, key);
      const url = new URL(request.url);
      const requestHash = requestFingerprint(request.method, url.pathname + url.search, body);
      // No await between the last in-flight check and claiming the key below: two requests
      // checking in the same tick must not both go ahead.
      const deadline = performance.now() + waitMs;
      for (let running = inFlight.get(id); running; running = inFlight.get(id)) {
        if (!(await waitFor(running, deadline))) {
          throw new ConflictError(
            'A request with this Idempotency-Key is still in progress; retry later',
            IDEMPOTENCY_HEADER,
          );
        }
      }
      const record = findIdempotencyRecord(
        instance.sqlite,
        instance.keyring,
        id,
        instance.clock.now(),
      );
      if (record) {
        if (record.requestHash !== requestHash) {
          throw new ConflictError(
            'This Idempotency-Key was already used for a different request',
            IDEMPOTENCY_HEADER,
          );
        }
        const meta = requestMeta(request);
        meta.action = REPLAY_ACTION;
        meta.target = record.response.target ?? undefined;
        return replay(record.response);
      }
      let release: () => void = () => {};
      const running = new Promise<void>((resolve) => (release = resolve));
      inFlight.set(id, running);
      const pending: Pending = {
        id,
        apiKeyId: principal.keyId,
        requestHash,
        ttlMs,
        stored: false,
        finished: false,
        finish() {
          if (pending.finished) return;
          pending.finished = true;
          if (inFlight.get(id) === running) inFlight.delete(id);
          release();
        },
      };
      pendingByRequest.set(request, pending);
    })
    .onAfterHandle({ as: 'global' }, async ({ request, response, set }) => {
      const pending = pendingByRequest.get(request);
      if (!pending || pending.finished) return;
      try {
        const status = response instanceof Response ? response.status : statusOf(set.status);
        if (pending.stored || status < 200 || status >= 300) return;
        if (response instanceof Response || response === undefined) return;
        const location = set.headers['location'];
        const stored: StoredResponse = {
          status,
          body: JSON.stringify(response),
          location: typeof location === 'string' ? location : null,
          target: requestMeta(request).target ?? null,
        };
        try {
          await commitSystemChange(instance, () =>
            saveIdempotencyRecord(
              instance.sqlite,
              instance.keyring,
              {
                id: pending.id,
                apiKeyId: pending.apiKeyId,
                requestHash: pending.requestHash,
                response: stored,
              },
              instance.clock.now(),
              pending.ttlMs,
            ),
          );
          pending.stored = true;
        } catch (error) {
          // The change itself is committed: answering with an error now would invite the very
          // retry that repeats it. Keep the success; only its replay is lost.
          instance.logger.warn('could not store an idempotent response', {
            request_id: requestMeta(request).requestId,
            reason: error instanceof Error ? error.message : String(error),
          });
        }
      } finally {
        pending.finish();
      }
    })
    .onAfterResponse({ as: 'global' }, ({ request }) => {
      pendingByRequest.get(request)?.finish();
    });
}

function statusOf(status: number | string | undefined): number {
  return typeof status === 'number' ? status : 200;
}

function replay(response: StoredResponse): Response {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    [REPLAYED_HEADER]: 'true',
  };
  if (response.location !== null) headers['location'] = response.location;
  return new Response(response.body, { status: response.status, headers });
}
