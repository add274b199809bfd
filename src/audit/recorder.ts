/**
 * The app's recordOutcome hook: the audit entry of every request that did not commit one with
 * its change (reads, denials, errors), durable before the response (the write engine's record
 * lane), and the per-address summaries of rejected anonymous requests.
 */
import { requestMeta } from '../http/request-meta.ts';
import type { Instance } from '../instance.ts';
import { rejectionSummariesFor } from './anonymous-summary.ts';
import { appendAuditEntryDurably, clientAddress, requestEntry } from '../ledger/audit-record.ts';

/**
 * The app's recordOutcome hook: an entry for every request that reached authentication (its
 * meta has an actor) and is not audited yet — except rejected anonymous requests (401, 429
 * without a usable key), which are counted into per-address summaries written once per
 * `audit.anonymous_summary_seconds` (anonymous-summary.ts). Entries of one event-loop turn are
 * group-committed together by the instance's write engine; the hook resolves once its entry is
 * durable and rejects if it cannot be written, which the app turns into a 503 (fail closed).
 */
export function auditRecorder(
  instance: Instance,
): (request: Request, status: number) => Promise<void> {
  const summaries = rejectionSummariesFor(instance);
  return async (request, status) => {
    const meta = requestMeta(request);
    if (meta.audited || !meta.actor) return;
    if (meta.actor.type === 'anonymous' && (status === 401 || status === 429)) {
      // Summarised per address and window (anonymous-summary.ts): a flood costs bounded disk,
      // and the rejection is answered without waiting for the disk.
      summaries.add({
        ip: clientAddress(meta.clientIp),
        userAgent: request.headers.get('user-agent'),
        requestId: meta.requestId,
        status,
        at: Math.trunc(instance.clock.now()),
      });
      meta.audited = true;
      return;
    }
    await appendAuditEntryDurably(instance, requestEntry(request, status, meta.actor), {
      waitForLock: !meta.lockWaitSpent,
    });
    meta.audited = true;
  };
}
