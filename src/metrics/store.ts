/**
 * The SQL behind the gauges of /metrics: counts read when Prometheus scrapes, each one index
 * range or a scan of one small state (pending deliveries), never a value column.
 */
import type { Database, Statement } from 'bun:sqlite';
import { perConnection } from '../db/per-connection.ts';

type Statements = {
  backlog: Statement<{ status: string; n: number; oldest: number | null }, [number]>;
  expiring: Statement<{ n: number }, [number, number]>;
  expired: Statement<{ n: number }, [number]>;
};

const statementsFor = perConnection(
  (sqlite): Statements => ({
    // Deliveries not finished yet; `oldest` is how long the longest-waiting due one has waited.
    backlog: sqlite.query(
      `SELECT status, count(*) AS n,
         min(CASE WHEN next_attempt_at <= ?1 THEN next_attempt_at END) AS oldest
       FROM webhook_deliveries WHERE status IN ('pending', 'in_flight') GROUP BY status`,
    ),
    // resources_expiry_idx (deleted_at, expires_at) answers both as index ranges.
    expiring: sqlite.query(
      `SELECT count(*) AS n FROM resources
       WHERE deleted_at IS NULL AND expires_at > ?1 AND expires_at <= ?2`,
    ),
    expired: sqlite.query(
      `SELECT count(*) AS n FROM resources
       WHERE deleted_at IS NULL AND expires_at IS NOT NULL AND expires_at <= ?1`,
    ),
  }),
);

/** Webhook deliveries waiting (`pending`) or being attempted (`in_flight`), and the oldest due. */
export function webhookBacklog(
  sqlite: Database,
  now: number,
): { pending: number; inFlight: number; oldestDueAt: number | null } {
  const result = { pending: 0, inFlight: 0, oldestDueAt: null as number | null };
  for (const row of statementsFor(sqlite).backlog.all(now)) {
    if (row.status === 'pending') result.pending = row.n;
    else result.inFlight = row.n;
    if (row.oldest !== null) {
      result.oldestDueAt = Math.min(result.oldestDueAt ?? row.oldest, row.oldest);
    }
  }
  return result;
}

/** Live resources that expire after `now` and no later than `until` (epoch ms). */
export function countExpiring(sqlite: Database, now: number, until: number): number {
  return statementsFor(sqlite).expiring.get(now, until)!.n;
}

/** Live resources already past their expiry. */
export function countExpired(sqlite: Database, now: number): number {
  return statementsFor(sqlite).expired.get(now)!.n;
}
