/**
 * SQL of audit shipping: the entries after a sink's cursor, in chain order, and the cursor.
 */
import type { Database, Statement } from 'bun:sqlite';
import { perConnection } from '../../db/per-connection.ts';

/** One audit row as shipped (the stored columns, snake_case as in the table). */
export type ShipRow = {
  seq: number;
  id: string;
  at: number;
  actor_type: string;
  actor_id: string | null;
  actor_name: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  outcome: string;
  status: number | null;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  details: string | null;
  prev_hash: string;
  hash: string;
};

export type Cursor = { seq: number; hash: string };

type Statements = {
  after: Statement<ShipRow, [number, number]>;
  cursor: Statement<{ seq: number; hash: string }, [string]>;
  save: Statement<unknown, [string, number, string, number]>;
  head: Statement<{ seq: number | null }, []>;
  oldestAfter: Statement<{ at: number }, [number]>;
};

const statementsFor = perConnection(
  (sqlite): Statements => ({
    after: sqlite.query(
      `SELECT seq, id, at, actor_type, actor_id, actor_name, action, target_type, target_id,
         outcome, status, ip, user_agent, request_id, details, prev_hash, hash
       FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?`,
    ),
    cursor: sqlite.query(
      'SELECT through_seq AS seq, through_hash AS hash FROM audit_ship_cursor WHERE sink = ?',
    ),
    save: sqlite.query(
      `INSERT INTO audit_ship_cursor (sink, through_seq, through_hash, updated_at)
       VALUES (?1, ?2, ?3, ?4)
       ON CONFLICT (sink) DO UPDATE SET through_seq = ?2, through_hash = ?3, updated_at = ?4`,
    ),
    head: sqlite.query('SELECT max(seq) AS seq FROM audit_log'),
    oldestAfter: sqlite.query('SELECT at FROM audit_log WHERE seq > ? ORDER BY seq LIMIT 1'),
  }),
);

/** Up to `limit` entries after `seq`, oldest first. */
export function entriesAfter(sqlite: Database, seq: number, limit: number): ShipRow[] {
  return statementsFor(sqlite).after.all(seq, limit);
}

/** The sink's cursor; a sink never shipped starts before the first entry. */
export function readCursor(sqlite: Database, sink: string): Cursor {
  return statementsFor(sqlite).cursor.get(sink) ?? { seq: 0, hash: '' };
}

/**
 * The lowest cursor of `sinks` (0 when one never shipped): every entry up to it has been
 * taken by all of them.
 */
export function lowestCursor(sqlite: Database, sinks: readonly string[]): number {
  return Math.min(...sinks.map((sink) => readCursor(sqlite, sink).seq));
}

/** Moves the sink's cursor; call inside a write job. */
export function saveCursor(sqlite: Database, sink: string, cursor: Cursor, now: number): void {
  statementsFor(sqlite).save.run(sink, cursor.seq, cursor.hash, now);
}

/** Entries not shipped yet after `seq`, and the time of the oldest of them (null if none). */
export function backlogAfter(
  sqlite: Database,
  seq: number,
): { entries: number; oldestAt: number | null } {
  const statements = statementsFor(sqlite);
  const head = statements.head.get()?.seq ?? 0;
  if (head <= seq) return { entries: 0, oldestAt: null };
  return { entries: head - seq, oldestAt: statements.oldestAfter.get(seq)?.at ?? null };
}
