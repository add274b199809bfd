/**
 * Emits `master_key.rotated` for every master-key rotation, inside the rotation's own
 * transaction (see src/keyring/hooks.ts), so the rotation and its event commit together. A
 * side-effect module: `secryn master-key` (src/cli/master-key.ts) imports it. The running server delivers the event: its worker polls the outbox.
 */
import { createDb } from '../db/client.ts';
import { toRfc3339 } from '../db/columns.ts';
import { onMasterKeyRotated, type MasterKeyRotatedEvent } from '../keyring/hooks.ts';
import { emitEvent } from '../ledger/emit.ts';

/** Emits the event of one rotation: fingerprints only, never key material or file paths. */
export function emitMasterKeyRotated({ rotation, sqlite }: MasterKeyRotatedEvent): string {
  return emitEvent(
    createDb(sqlite),
    { now: () => rotation.rotatedAt },
    {
      type: 'master_key.rotated',
      projectId: null,
      object: {
        rotated_at: toRfc3339(rotation.rotatedAt),
        old_fingerprint: rotation.oldFingerprint,
        new_fingerprint: rotation.newFingerprint,
        key_source: rotation.keySource,
      },
    },
  );
}

onMasterKeyRotated(emitMasterKeyRotated);
