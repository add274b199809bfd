/**
 * The idempotent request in flight: what the plugin (src/idempotency/plugin.ts) learned about a
 * `POST` with an `Idempotency-Key`, and how a change stores its replayable response in its own
 * transaction (the change pipeline, src/changes/, calls {@link saveIdempotentResponseInJob}).
 * In the ledger, below the pipeline, which the plugin also uses.
 */
import { requestMeta } from '../http/request-meta.ts';
import type { Instance } from '../instance.ts';
import { saveIdempotencyRecord } from './idempotency-store.ts';

export type Pending = {
  id: string;
  apiKeyId: string;
  requestHash: string;
  ttlMs: number;
  stored: boolean;
  finished: boolean;
  finish(): void;
};

/**
 * The idempotent request in flight, per request. A WeakMap keyed by the Request, not Elysia's typed
 * context: the plugin sets it in `onBeforeHandle` (a `resolve` could), but it is read inside the
 * change's write job by the change pipeline, which holds only the Request, and by the plugin's
 * after-response hook. Not for speed: ~30 ns a request either way against ~2.5–4 µs a request; the
 * measurement and the full reason are at `metas` in src/http/request-meta.ts.
 */
export const pendingByRequest = new WeakMap<Request, Pending>();

/**
 * Inside the write job of the handler's change: stores `body` as the replayable response of
 * this request when it carries an `Idempotency-Key` (else does nothing), so that it commits with
 * the change. `body` must be exactly what the handler returns.
 */
export function saveIdempotentResponseInJob(
  instance: Pick<Instance, 'sqlite' | 'keyring' | 'clock'>,
  request: Request,
  status: number,
  body: unknown,
  location: string | null,
): void {
  const pending = pendingByRequest.get(request);
  if (!pending || pending.stored) return;
  saveIdempotencyRecord(
    instance.sqlite,
    instance.keyring,
    {
      id: pending.id,
      apiKeyId: pending.apiKeyId,
      requestHash: pending.requestHash,
      response: {
        status,
        body: JSON.stringify(body),
        location,
        target: requestMeta(request).target ?? null,
      },
    },
    instance.clock.now(),
    pending.ttlMs,
  );
  // A later rollback of the job rejects the handler's write, so the response is never sent as
  // a success while its record is missing.
  pending.stored = true;
}
