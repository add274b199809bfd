/**
 * Records `master-key rotate` in the audit log: registers a `master_key.rotated` listener that
 * appends an entry inside the rotation's own transaction, so the rotation and its entry commit
 * together (and a rotation whose entry cannot be written is aborted). A side-effect module:
 * `secryn master-key` (src/cli/master-key.ts) imports it.
 */
import { hostname } from 'node:os';
import { createDb } from '../db/client.ts';
import { onMasterKeyRotated, type MasterKeyRotatedEvent } from '../keyring/hooks.ts';
import { appendAuditEntry } from '../ledger/audit-record.ts';

/** Appends the entry of one rotation: actor the OS user who ran it, target the new key's fingerprint. */
export function recordMasterKeyRotation({ rotation, sqlite }: MasterKeyRotatedEvent): void {
  appendAuditEntry(
    createDb(sqlite),
    { now: () => rotation.rotatedAt },
    {
      actor: { type: 'local_user', id: rotation.actor, name: `${rotation.actor}@${hostname()}` },
      action: 'master_key.rotate',
      target: { type: 'master_key', id: rotation.newFingerprint },
      outcome: 'success',
      status: null,
      ip: null,
      userAgent: null,
      requestId: null,
    },
  );
}

onMasterKeyRotated(recordMasterKeyRotation);
