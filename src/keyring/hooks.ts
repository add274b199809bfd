/**
 * The `master_key.rotated` hook. The audit log and webhooks register a listener here; it runs
 * inside the transaction that re-wraps the keyring and records the rotation, so an audit entry
 * or outgoing event written by the listener commits atomically with the rotation (and a
 * listener that throws aborts the rotation, leaving the old key in place).
 * Listeners must be registered in a module the `master-key` command loads
 * (`secryn master-key`, src/cli/master-key.ts, imports the audit and events listeners).
 */
import type { Database } from 'bun:sqlite';
import type { RotationRecord } from './store.ts';

/** What a listener learns: the rotation as recorded, and the connection inside its transaction. */
export type MasterKeyRotatedEvent = { rotation: RotationRecord; sqlite: Database };

/** A listener; it may write in the same transaction and throw to abort the rotation. */
export type MasterKeyRotatedListener = (event: MasterKeyRotatedEvent) => void;

const listeners = new Set<MasterKeyRotatedListener>();

/** Subscribes to every master-key rotation; returns the unsubscribe function. */
export function onMasterKeyRotated(listener: MasterKeyRotatedListener): () => void {
  listeners.add(listener);
  return () => void listeners.delete(listener);
}

/** Calls every listener in registration order (inside the rotation's transaction). */
export function emitMasterKeyRotated(event: MasterKeyRotatedEvent): void {
  for (const listener of listeners) listener(event);
}
