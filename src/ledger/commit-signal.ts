/**
 * An in-process "events were committed" signal for the event streams (`GET /v1/events/stream`).
 * `emitEvent` notes each write inside the change's transaction; listeners are called on the next
 * `setImmediate`, which runs after that transaction has ended: every write job and its COMMIT
 * run synchronously in one turn (src/db/write-engine.ts, bun:sqlite transactions), so a listener
 * never runs before the change is durable. A rolled-back event was noted too: listeners read the
 * database, which is the source of truth, and simply find nothing new.
 */
const listeners = new Set<() => void>();
let scheduled = false;

/** Subscribes to committed event writes; returns the unsubscribe function. Must not throw. */
export function onEventsCommitted(listener: () => void): () => void {
  listeners.add(listener);
  return () => void listeners.delete(listener);
}

/** Called by `emitEvent` inside the writing transaction: schedules one notification. */
export function noteEventWritten(): void {
  if (scheduled || listeners.size === 0) return;
  scheduled = true;
  setImmediate(() => {
    scheduled = false;
    for (const listener of listeners) listener();
  });
}
