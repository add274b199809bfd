/**
 * The purge loop (run by `serve` through `features.ts`): permanently deletes resources whose
 * soft delete is older than `storage.deleted_retention_days`, with every version and value, and
 * drops expired `Idempotency-Key` records. Each batch is one group-committed transaction that
 * also appends one audit entry per purged resource (actor: system), so the audit log shows when
 * a value stopped existing. Time comes from the instance clock, so tests can move it.
 */
import type { AuditActor } from '../ledger/audit-record.ts';
import { commitSystemChange } from '../changes/index.ts';
import { deleteExpiredIdempotencyRecords } from '../ledger/idempotency-store.ts';
import type { Instance } from '../instance.ts';
import { purgeDeletedResources } from './store.ts';
import { DAY_MS } from '../clock.ts';

/** Resources per transaction, so that a large backlog never holds the write lock long. */
const PURGE_BATCH = 200;

/** How often the server purges. */
export const PURGE_INTERVAL_MS = 60 * 60 * 1000;

/** Who purges. */
export const PURGE_ACTOR: AuditActor = {
  type: 'system',
  id: 'resource-purge',
  name: 'resource purge',
};

/** What one purge pass removed. */
export type PurgeResult = { resources: number; idempotencyKeys: number };

/** One purge pass at the instance clock's `now`. */
export async function purgeExpired(instance: Instance): Promise<PurgeResult> {
  const { db, clock, sqlite } = instance;
  const retentionMs = instance.config.storage.deleted_retention_days * DAY_MS;
  const result: PurgeResult = { resources: 0, idempotencyKeys: 0 };
  for (;;) {
    const purged = await commitSystemChange(instance, (tx) => {
      const ids = purgeDeletedResources(db, clock.now() - retentionMs, PURGE_BATCH);
      for (const id of ids) {
        tx.audit({
          actor: PURGE_ACTOR,
          action: 'resource.purge',
          target: { type: 'resource', id },
          outcome: 'success',
          status: null,
          ip: null,
          userAgent: null,
          requestId: null,
        });
      }
      return ids.length;
    });
    result.resources += purged;
    if (purged < PURGE_BATCH) break;
  }
  for (;;) {
    const deleted = await commitSystemChange(instance, () =>
      deleteExpiredIdempotencyRecords(sqlite, clock.now(), 1000),
    );
    result.idempotencyKeys += deleted;
    if (deleted < 1000) break;
  }
  return result;
}

/** A running purge loop. */
export type PurgeLoop = { stop(): Promise<void> };

/**
 * Runs {@link purgeExpired} now and then every `intervalMs` (default hourly) until stopped.
 * A failed pass is logged and retried at the next tick. `stop()` waits for a pass in progress.
 */
export function startPurgeLoop(
  instance: Instance,
  options: { intervalMs?: number } = {},
): PurgeLoop {
  const intervalMs = options.intervalMs ?? PURGE_INTERVAL_MS;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = () => {
    running = (async () => {
      try {
        const result = await purgeExpired(instance);
        if (result.resources > 0) {
          instance.logger.info('purged deleted resources', { count: result.resources });
        }
      } catch (error) {
        instance.logger.error(
          'resource purge failed; retrying at the next interval',
          error instanceof Error ? error : undefined,
        );
      }
      if (!stopped) {
        timer = setTimeout(tick, intervalMs);
        timer.unref?.();
      }
    })();
  };
  tick();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
