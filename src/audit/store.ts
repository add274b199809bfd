/**
 * The audit log's SQL for retention: reading the ends of the chain and its checkpoint, deleting
 * a prefix and moving the checkpoint past it. Synchronous; the writes run inside the pruning
 * change's transaction (retention.ts).
 */
import type { Database } from 'bun:sqlite';

/** The first entry's seq, or null when the log is empty. */
export function firstSeq(sqlite: Database): number | null {
  return (
    sqlite.query<{ first: number | null }, []>('SELECT min(seq) AS first FROM audit_log').get()
      ?.first ?? null
  );
}

/** The newest entry's seq, or null when the log is empty. */
export function lastSeq(sqlite: Database): number | null {
  return (
    sqlite.query<{ seq: number | null }, []>('SELECT max(seq) AS seq FROM audit_log').get()?.seq ??
    null
  );
}

/**
 * The seq of the first entry (in chain order) written at or after `at`, or null. Walks the chain
 * from its start (no index on `at`), so it costs what lies before that entry.
 */
export function firstSeqAtOrAfter(sqlite: Database, at: number): number | null {
  return (
    sqlite
      .query<
        { seq: number },
        [number]
      >('SELECT seq FROM audit_log NOT INDEXED WHERE at >= ? ORDER BY seq LIMIT 1')
      .get(at)?.seq ?? null
  );
}

/** The hash of entry `seq`, or null when it does not exist. */
export function entryHash(sqlite: Database, seq: number): string | null {
  return (
    sqlite.query<{ hash: string }, [number]>('SELECT hash FROM audit_log WHERE seq = ?').get(seq)
      ?.hash ?? null
  );
}

/** Deletes every entry up to and including `seq`; returns how many. */
export function deleteThrough(sqlite: Database, seq: number): number {
  return sqlite.run('DELETE FROM audit_log WHERE seq <= ?', [seq]).changes;
}

/** Moves the retention checkpoint to entry `through` (whose hash is `hash`). */
export function moveCheckpoint(
  sqlite: Database,
  move: { through: number; hash: string; prunedAt: number; deleted: number },
): void {
  sqlite.run(
    `INSERT INTO audit_checkpoint (id, through_seq, through_hash, pruned_at, pruned_total)
     VALUES (1, ?1, ?2, ?3, ?4)
     ON CONFLICT (id) DO UPDATE SET through_seq = ?1, through_hash = ?2, pruned_at = ?3,
       pruned_total = pruned_total + ?4`,
    [move.through, move.hash, move.prunedAt, move.deleted],
  );
}

/** The retention checkpoint the chain starts from, or null if nothing was ever pruned. */
export function readPruneCheckpoint(
  sqlite: Database,
): { throughSeq: number; throughHash: string } | null {
  return (
    sqlite
      .query<
        { throughSeq: number; throughHash: string },
        []
      >('SELECT through_seq AS throughSeq, through_hash AS throughHash FROM audit_checkpoint WHERE id = 1')
      .get() ?? null
  );
}
