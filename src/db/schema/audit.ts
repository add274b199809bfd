/** Table definitions of the audit log and its retention checkpoint. */
import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { epochMs } from '../columns.ts';

/**
 * The audit log: one row per audited request or CLI action, append-only, forming a hash chain
 * in `seq` order (see `src/ledger/audit-chain.ts`). `seq` is assigned inside the writing transaction as the
 * previous head's `seq + 1`, so it has no gaps except those left by retention pruning (which
 * the checkpoint accounts for); a gap anywhere else is a removed entry.
 */
export const auditLog = sqliteTable(
  'audit_log',
  {
    /** Chain position, 1-based; the rowid, so reading the head is one B-tree descent. */
    seq: integer('seq').primaryKey(),
    id: text('id').notNull(),
    at: epochMs('at').notNull(),
    actorType: text('actor_type').notNull(),
    actorId: text('actor_id'),
    actorName: text('actor_name'),
    action: text('action').notNull(),
    targetType: text('target_type'),
    targetId: text('target_id'),
    outcome: text('outcome', { enum: ['success', 'denied', 'error'] }).notNull(),
    status: integer('status'),
    ip: text('ip'),
    userAgent: text('user_agent'),
    requestId: text('request_id'),
    /** JSON object of extra facts, e.g. the count of a `request.rejected_summary`; else null. */
    details: text('details'),
    prevHash: text('prev_hash').notNull(),
    hash: text('hash').notNull(),
  },
  // One secondary index, on `at`, whose keys grow with `seq`: each group commit dirties only its
  // last page. `id` needs none, since an id encodes its `seq` (src/ledger/audit-entry-id.ts); dropping that index
  // gave +8 % audited reads/s. An index on actor or target would put every entry on a random
  // page, which measured ~16 µs per audited read (bench/audit.ts); filters on those scan
  // newest-first instead (docs/audit.md).
  (table) => [index('audit_log_at_idx').on(table.at)],
);

/**
 * Where the chain starts after retention pruning: entries up to `through_seq` were deleted and
 * the last of them had hash `through_hash`, which the first remaining entry must link to.
 * One row (id = 1), replaced by each prune.
 */
export const auditCheckpoint = sqliteTable('audit_checkpoint', {
  id: integer('id').primaryKey(),
  throughSeq: integer('through_seq').notNull(),
  throughHash: text('through_hash').notNull(),
  prunedAt: epochMs('pruned_at').notNull(),
  /** Entries deleted by pruning since the instance was created. */
  prunedTotal: integer('pruned_total').notNull(),
});
