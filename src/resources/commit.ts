/**
 * The one way projects, vaults and resources commit a change: in one group-committed write job
 * with the request's audit entry (`commitAudited`), the outgoing event (outbox, metadata only)
 * and, for a `POST` with an `Idempotency-Key`, the replayable response — so that all of them
 * commit or roll back together, and the response is sent only once they are durable.
 */
import { commitAudited } from '../audit/record.ts';
import { emitEvent, type EventInput } from '../events/emit.ts';
import { saveIdempotentResponseInJob } from '../idempotency/plugin.ts';
import type { Instance } from '../instance.ts';

/** What a change job returns: the response body, and optionally its event and Location. */
export type ChangeResult<T> = {
  body: T;
  /** Emitted in the same transaction; `object` must be metadata only. */
  event?: EventInput;
  /** The `Location` header of a creation (stored with an idempotent response). */
  location?: string;
};

/**
 * Runs `change` (synchronous, inside the write job) and resolves with its body once the change,
 * its audit entry, its event and its idempotent response are committed. A throw inside `change`
 * rolls everything back and rejects with that error.
 */
export async function commitChange<T>(
  instance: Instance,
  request: Request,
  status: number,
  change: () => ChangeResult<T>,
): Promise<T> {
  return commitAudited(instance, request, status, () => {
    const result = change();
    if (result.event) emitEvent(instance.db, instance.clock, result.event);
    saveIdempotentResponseInJob(instance, request, status, result.body, result.location ?? null);
    return result.body;
  });
}
