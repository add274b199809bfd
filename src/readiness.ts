/**
 * Readiness (`GET /v1/health/ready`): whether a load balancer should send this instance traffic.
 * Everything liveness checks (database writable, disk not full, keyring opens every stored
 * value: src/server.ts `writabilityProbe`), plus `audit` — an audit entry cannot be committed,
 * so every request would be refused — and `draining` — the server is shutting down.
 */
import { appendAuditEntry } from './ledger/audit-record.ts';
import { commitSystemChange } from './changes/index.ts';
import { cachedProbe } from './http/health.ts';
import type { Instance } from './instance.ts';

/** Whether the server is draining; set by `RunningServer.stop` before the listener closes. */
export type DrainState = { draining: boolean };

/** How long an audit verdict is reused (the probe is one rolled-back append). */
const AUDIT_PROBE_TTL_MS = 1000;

/**
 * The readiness checks failing now: `liveness`'s, then `audit` and `draining`. The audit probe
 * appends an entry to the chain inside the write engine's transaction and rolls it back, so it
 * exercises exactly what a request's entry needs (the table, its constraints, the keyed chain
 * hash, the write lock) and leaves nothing behind; cached for a second.
 */
export function readinessProbe(
  instance: Pick<Instance, 'writes' | 'db' | 'sqlite' | 'clock' | 'config' | 'logger' | 'onClose'>,
  liveness: () => Promise<string[]>,
  drain: DrainState,
): () => Promise<string[]> {
  const auditOk = cachedProbe(async (): Promise<boolean> => {
    if (instance.writes.isBroken) return false;
    try {
      // A change that undoes itself: the entry is appended and rolled back in its savepoint.
      await commitSystemChange(instance, () => {
        instance.sqlite.run('SAVEPOINT readiness_probe');
        try {
          appendAuditEntry(instance.db, instance.clock, {
            actor: { type: 'system', id: null, name: 'readiness' },
            action: 'health.probe',
            target: null,
            outcome: 'success',
            status: null,
            ip: null,
            userAgent: null,
            requestId: null,
          });
        } finally {
          instance.sqlite.run('ROLLBACK TO readiness_probe');
          instance.sqlite.run('RELEASE readiness_probe');
        }
      });
      return true;
    } catch {
      return false;
    }
  }, AUDIT_PROBE_TTL_MS);
  return async () => {
    const [failing, audit] = await Promise.all([liveness(), auditOk()]);
    return [...failing, ...(audit ? [] : ['audit']), ...(drain.draining ? ['draining'] : [])];
  };
}
