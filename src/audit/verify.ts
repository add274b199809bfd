/** Verifies the audit hash chain and names where and how it breaks (`secryn audit verify`). */
import type { Database } from 'bun:sqlite';
import { integrityOf } from '../keyring/integrity.ts';
import { chainHash, GENESIS_HASH, type ChainKey } from '../ledger/audit-chain.ts';
import { AUDIT_ROW_COLUMNS, type AuditRow } from './rows.ts';

/** What kind of tampering a break in the chain looks like. */
export type ChainProblemKind =
  | 'changed'
  | 'removed'
  | 'inserted'
  | 'reordered'
  /** The retention checkpoint is not the one the chain itself recorded. */
  | 'checkpoint'
  /** The expected head (`anchor`) is not in the chain: entries were cut from its end. */
  | 'truncated';

/** The first place where the chain is not what Secryn wrote. */
export type ChainProblem = {
  kind: ChainProblemKind;
  /** Chain position of the entry named (for `removed`: the first missing position). */
  seq: number;
  /** The entry named, when it still exists (a removed entry's id is gone with it). */
  id: string | null;
  message: string;
};

export type ChainHead = { seq: number; id: string | null; hash: string };

export type VerifyResult = {
  intact: boolean;
  /** Entries checked and found linked before the first problem (all of them when intact). */
  verified: number;
  /** Where the chain starts: genesis, or the retention checkpoint. */
  start: { seq: number; hash: string; checkpoint: boolean };
  /** The first position hashed with the audit key (earlier ones predate keyed chains). */
  keyedFrom: number;
  /** The last verified entry (or the start when the log is empty). */
  head: ChainHead;
  problem?: ChainProblem;
};

export type VerifyOptions = {
  /**
   * A hash recorded earlier outside the database (e.g. the head printed by a previous verify).
   * The chain must still contain it, which catches entries cut from the end — the one change a
   * chain cannot reveal by itself.
   */
  anchor?: string;
  /**
   * The audit key and where keyed entries start; default: those of the keyring opened on
   * `sqlite` (verifying needs the master key: without it the chain proves nothing).
   */
  key?: ChainKey;
};

/** `target_type` of the entry a prune writes; its `target_id` is `<through_seq>:<through_hash>`. */
export const CHECKPOINT_TARGET_TYPE = 'audit_checkpoint';

/** The target id by which a prune's own entry records the checkpoint it wrote. */
export function checkpointTargetId(throughSeq: number, throughHash: string): string {
  return `${throughSeq}:${throughHash}`;
}

/**
 * Walks the whole chain in `seq` order inside one read transaction (a consistent snapshot, even
 * while the server appends), holding only the previous entry in memory, and reports the first
 * entry that was changed, removed, inserted or reordered.
 *
 * Each entry must (1) sit at the next position, (2) hash to its stored hash, and (3) name the
 * previous entry's hash as `prev_hash`. When one of these fails, a few targeted queries (only
 * then) tell the kinds apart: a gap is a removal; a `prev_hash` that belongs to a later entry is
 * a reordering; an entry the next one links past is an insertion; an entry that still links but
 * no longer hashes right was changed.
 */
export function verifyChain(sqlite: Database, options: VerifyOptions = {}): VerifyResult {
  sqlite.run('BEGIN');
  try {
    return walk(sqlite, options);
  } finally {
    sqlite.run('COMMIT');
  }
}

function walk(sqlite: Database, options: VerifyOptions): VerifyResult {
  const key = options.key ?? integrityOf(sqlite);
  const checkpoint = sqlite
    .query<
      { seq: number; hash: string },
      []
    >('SELECT through_seq AS seq, through_hash AS hash FROM audit_checkpoint WHERE id = 1')
    .get();
  const start = checkpoint
    ? { seq: checkpoint.seq, hash: checkpoint.hash, checkpoint: true }
    : { seq: 0, hash: GENESIS_HASH, checkpoint: false };
  const expectedCheckpointId = checkpoint
    ? checkpointTargetId(checkpoint.seq, checkpoint.hash)
    : null;
  let checkpointConfirmed = !checkpoint;
  let anchorSeen = options.anchor === undefined || options.anchor === start.hash;

  let previous: AuditRow | null = null;
  let head: ChainHead = { seq: start.seq, id: null, hash: start.hash };
  let verified = 0;
  let problem: ChainProblem | undefined;

  const rows = sqlite
    .query<
      AuditRow,
      [number]
    >(`SELECT ${AUDIT_ROW_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq`)
    .iterate(start.seq);
  for (const row of rows) {
    const selfConsistent = chainHash(row, key) === row.hash;
    const linked = row.prevHash === head.hash;
    if (row.seq !== head.seq + 1 || !selfConsistent || !linked) {
      problem = diagnose(sqlite, row, previous, head, selfConsistent, linked);
      break;
    }
    if (
      row.action === 'audit.prune' &&
      row.targetType === CHECKPOINT_TARGET_TYPE &&
      row.targetId === expectedCheckpointId
    ) {
      checkpointConfirmed = true;
    }
    if (row.hash === options.anchor) anchorSeen = true;
    previous = row;
    head = { seq: row.seq, id: row.id, hash: row.hash };
    verified++;
  }

  if (!problem && !checkpointConfirmed) {
    problem = {
      kind: 'checkpoint',
      seq: start.seq,
      id: null,
      message: `the retention checkpoint (through #${start.seq}) is not recorded by any audit.prune entry: entries before #${start.seq + 1} may have been removed`,
    };
  }
  if (!problem && !anchorSeen) {
    problem = {
      kind: 'truncated',
      seq: head.seq,
      id: head.id,
      message: `no entry has the expected hash ${options.anchor}: entries after #${head.seq} were removed (or it was pruned)`,
    };
  }
  return { intact: !problem, verified, start, keyedFrom: key.auditKeyedFrom, head, problem };
}

function diagnose(
  sqlite: Database,
  row: AuditRow,
  previous: AuditRow | null,
  head: ChainHead,
  selfConsistent: boolean,
  linked: boolean,
): ChainProblem {
  const name = (entry: { id: string; seq: number }) => `entry ${entry.id} (#${entry.seq})`;
  const found = (kind: ChainProblemKind, entry: AuditRow, message: string): ChainProblem => ({
    kind,
    seq: entry.seq,
    id: entry.id,
    message,
  });
  const expectedSeq = head.seq + 1;

  // A gap in the positions: what sat there is gone.
  if (row.seq > expectedSeq) {
    const missing =
      row.seq - 1 === expectedSeq ? `#${expectedSeq}` : `#${expectedSeq}–#${row.seq - 1}`;
    return {
      kind: 'removed',
      seq: expectedSeq,
      id: null,
      message: `entry ${missing} was removed (the chain resumes at ${name(row)})`,
    };
  }
  // It links to an entry that now comes after it.
  if (!linked) {
    const predecessor = sqlite
      .query<
        { seq: number; id: string },
        [string, number]
      >('SELECT seq, id FROM audit_log WHERE hash = ? AND seq > ? LIMIT 1')
      .get(row.prevHash, row.seq);
    if (predecessor) {
      return found(
        'reordered',
        row,
        `${name(row)} is out of order: it follows ${name(predecessor)}, which now comes after it`,
      );
    }
  }
  // A bad entry that the next one links past: it was slipped in.
  if (!selfConsistent) {
    const next = sqlite
      .query<
        { prevHash: string },
        [number]
      >('SELECT prev_hash AS prevHash FROM audit_log WHERE seq > ? ORDER BY seq LIMIT 1')
      .get(row.seq);
    if (next && next.prevHash === head.hash) {
      return found(
        'inserted',
        row,
        `${name(row)} was inserted: the next entry links past it to the entry before`,
      );
    }
  }
  // It links to the same entry as the one before it did: that one was slipped in (well forged).
  if (!linked && previous && row.prevHash === previous.prevHash) {
    return found(
      'inserted',
      previous,
      `${name(previous)} was inserted: ${name(row)} links past it to the entry before`,
    );
  }
  if (!selfConsistent) {
    if (linked) {
      return found(
        'changed',
        row,
        `${name(row)} was changed: its content no longer matches its hash`,
      );
    }
    return found(
      'removed',
      row,
      `the entry before ${name(row)} is missing (later entries were renumbered) or ${name(row)} was changed`,
    );
  }
  // Intact itself but not linked: what sits before it was rewritten together with its hash.
  if (previous) {
    return found(
      'changed',
      previous,
      `${name(previous)} was changed and re-hashed: ${name(row)} no longer links to it`,
    );
  }
  return found(
    'changed',
    row,
    `${name(row)} does not link to the start of the chain (${head.seq === 0 ? 'genesis' : `checkpoint #${head.seq}`})`,
  );
}
