/**
 * An in-process nudge from the outbox to the delivery worker: `emitEvent` signals when it queued
 * deliveries, so a worker in the same process claims them without waiting for its next poll.
 * Only a latency optimisation: the worker also polls the database, which is what picks up events
 * written by other processes (e.g. `secryn master-key rotate`) and is the source of truth.
 */
const listeners = new Set<() => void>();

/** Subscribes to outbox writes; returns the unsubscribe function. Listeners must not throw. */
export function onOutboxWrite(listener: () => void): () => void {
  listeners.add(listener);
  return () => void listeners.delete(listener);
}

/**
 * Tells listeners that deliveries were queued. Called inside the writing transaction: listeners
 * must only schedule work (which then runs after the commit), never touch the database here.
 */
export function signalOutboxWrite(): void {
  for (const listener of listeners) listener();
}
