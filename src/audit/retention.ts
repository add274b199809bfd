/**
 * Audit retention (`audit.retention_days`): prunes old entries behind a verified checkpoint,
 * never past what every configured `[audit.ship]` sink has taken.
 */
import type { Database } from 'bun:sqlite';
import type { Instance } from '../instance.ts';
import type { AuditActor, AuditTarget } from '../http/request-meta.ts';
import type { AuditEntryInput } from '../ledger/audit-record.ts';
import { CHECKPOINT_TARGET_TYPE, checkpointTargetId } from './verify.ts';
import { DAY_MS } from '../clock.ts';
import { commitSystemChange } from '../changes/index.ts';
import { shipSinkNames } from './ship/shipper.ts';
import { lowestCursor } from './ship/store.ts';
import {
  deleteThrough,
  entryHash,
  firstSeq,
  firstSeqAtOrAfter,
  lastSeq,
  moveCheckpoint,
  readPruneCheckpoint,
} from './store.ts';

/** Entries deleted per transaction, so that pruning a large backlog never holds the write lock long. */
const PRUNE_BATCH = 5_000;

/** How often the server's maintenance loop prunes. */
export const RETENTION_INTERVAL_MS = 60 * 60 * 1000;

/** Who prunes when the server does it on its own. */
export const RETENTION_ACTOR: AuditActor = {
  type: 'system',
  id: 'audit-retention',
  name: 'audit retention',
};

export type PruneResult = {
  /** Entries deleted by this run. */
  pruned: number;
  /** The checkpoint the chain now starts from, if any entries were ever pruned. */
  checkpoint: { throughSeq: number; throughHash: string } | null;
  /**
   * Entries old enough to prune but kept because a configured `[audit.ship]` sink has not
   * taken them yet (0 when shipping is off or caught up).
   */
  heldBack: number;
};

export type PruneOptions = {
  /** Entries older than this many days are deleted; 0 deletes nothing. */
  retentionDays: number;
  actor: AuditActor;
  /** Record an `audit.prune` entry even when nothing was old enough (the CLI does: it was run). */
  recordNoop?: boolean;
};

/**
 * Deletes entries older than the retention period from the start of the chain, in batches, each
 * in its own group-committed transaction that also (1) moves the checkpoint to the last deleted
 * entry's seq and hash, so that `verify` starts from there, and (2) appends an `audit.prune`
 * entry whose target id is that checkpoint, so that the checkpoint itself is covered by the
 * chain (a forged checkpoint hiding more deletions fails verification).
 *
 * Only a prefix of the chain is deleted: the entries before the first one younger than the
 * cut-off.
 */
export async function pruneAuditLog(
  instance: Instance,
  options: PruneOptions,
): Promise<PruneResult> {
  const { sqlite, db, clock } = instance;
  let pruned = 0;
  let heldBack = 0;
  let checkpoint = readCheckpoint(instance);
  if (options.retentionDays > 0) {
    const cutoff = clock.now() - options.retentionDays * DAY_MS;
    const byAge = lastPrunable(instance, cutoff);
    const shipped = shippedThrough(instance);
    // An entry the SIEM has not received yet is kept whatever its age: pruning it would lose
    // it for good (shipping reads the local chain).
    const last = byAge !== null && shipped !== null && shipped < byAge ? shipped : byAge;
    if (byAge !== null && last !== null && last < byAge) {
      heldBack = byAge - Math.max(last, (firstSeq(sqlite) ?? 1) - 1);
    }
    if (last !== null && last > 0) {
      for (;;) {
        const batch = await commitSystemChange(instance, (tx) => {
          const first = firstSeq(sqlite);
          if (first === null || first > last) return null;
          const through = Math.min(last, first + PRUNE_BATCH - 1);
          const hash = entryHash(sqlite, through);
          if (hash === null) throw new Error(`audit entry #${through} vanished during pruning`);
          const deleted = deleteThrough(sqlite, through);
          moveCheckpoint(sqlite, { through, hash, prunedAt: clock.now(), deleted });
          tx.audit(
            pruneEntry(options.actor, {
              type: CHECKPOINT_TARGET_TYPE,
              id: checkpointTargetId(through, hash),
            }),
          );
          return { deleted, through, hash };
        });
        if (!batch) break;
        pruned += batch.deleted;
        checkpoint = { throughSeq: batch.through, throughHash: batch.hash };
        if (batch.through >= last) break;
      }
    }
  }
  if (pruned === 0 && options.recordNoop) {
    await commitSystemChange(instance, (tx) => tx.audit(pruneEntry(options.actor, null)));
  }
  heldBackBy.set(sqlite, heldBack);
  return { pruned, checkpoint, heldBack };
}

/** The last {@link PruneResult.heldBack} of each database, for metrics. */
const heldBackBy = new WeakMap<Database, number>();

/** Entries the last pruning kept only because a ship sink had not taken them (0 if none). */
export function retentionHeldBack(instance: Pick<Instance, 'sqlite'>): number {
  return heldBackBy.get(instance.sqlite) ?? 0;
}

/**
 * The seq through which every configured ship sink has taken the chain; null when
 * `[audit.ship]` configures none (retention is then bounded by age alone).
 */
function shippedThrough(instance: Pick<Instance, 'sqlite' | 'config'>): number | null {
  const sinks = shipSinkNames(instance.config.audit.ship);
  return sinks.length === 0 ? null : lowestCursor(instance.sqlite, sinks);
}

/**
 * The end of the prefix of the chain that is entirely older than `cutoff`: the entry before the
 * first one at or after it. Entries are never deleted before they are `retention_days` old, even
 * if a clock skew (two processes appending) put an older entry after a younger one. The scan
 * walks the chain from its start, so it costs what is about to be deleted, not the whole log.
 */
function lastPrunable(instance: Instance, cutoff: number): number | null {
  const firstKept = firstSeqAtOrAfter(instance.sqlite, cutoff);
  if (firstKept !== null) return firstKept > 1 ? firstKept - 1 : null;
  return lastSeq(instance.sqlite);
}

function pruneEntry(actor: AuditActor, target: AuditTarget | null): AuditEntryInput {
  return {
    actor,
    action: 'audit.prune',
    target,
    outcome: 'success',
    status: null,
    ip: null,
    userAgent: null,
    requestId: null,
  };
}

function readCheckpoint(instance: Instance): PruneResult['checkpoint'] {
  return readPruneCheckpoint(instance.sqlite);
}

/**
 * The server's maintenance loop: prunes once now and then every {@link RETENTION_INTERVAL_MS}
 * when `audit.retention_days` is above 0 (0 keeps everything). Failures are logged and retried
 * at the next tick; they never stop the server.
 */
export function startAuditRetention(
  instance: Instance,
  intervalMs = RETENTION_INTERVAL_MS,
): { stop(): Promise<void> } {
  const retentionDays = instance.config.audit.retention_days;
  if (retentionDays <= 0) return { stop: async () => {} };
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  let holding = false;
  const tick = () => {
    if (stopped) return;
    running = running.then(async () => {
      try {
        const result = await pruneAuditLog(instance, { retentionDays, actor: RETENTION_ACTOR });
        // Said once when it starts holding back, not every hour; again after it caught up.
        if (result.heldBack > 0 && !holding) {
          instance.logger.warn('audit retention is holding back entries not shipped yet', {
            held_back: result.heldBack,
            sinks: shipSinkNames(instance.config.audit.ship).join(','),
          });
        }
        holding = result.heldBack > 0;
        if (result.pruned > 0) {
          instance.logger.info('audit log pruned', {
            pruned: result.pruned,
            through_seq: result.checkpoint?.throughSeq,
          });
        }
      } catch (error) {
        instance.logger.error(
          'audit log pruning failed',
          {},
          error instanceof Error ? error : undefined,
        );
      }
    });
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
