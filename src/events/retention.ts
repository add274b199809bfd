/**
 * Event retention (`events.retention_days`): events older than the window are deleted in
 * batches, with their webhook deliveries and attempts (foreign keys cascade). Run by the
 * delivery worker's housekeeping on the injected clock. A delivery still pending when its event
 * ages out is dropped with it: by then it has been retrying (or its webhook has been disabled)
 * for longer than anyone waits for a notification.
 */
import type { Database } from 'bun:sqlite';
import { DAY_MS } from '../clock.ts';

/**
 * Deletes up to `batch` events created before `now - retentionDays`, oldest first, and returns
 * how many it deleted (call again while it returns `batch`). Synchronous: run inside a write
 * job. Also forgets expiry notices of resources that no longer exist.
 */
export function pruneEvents(
  sqlite: Database,
  now: number,
  retentionDays: number,
  batch = 1000,
): number {
  const cutoff = now - retentionDays * DAY_MS;
  const deleted = sqlite
    .query(
      `DELETE FROM events WHERE seq IN
         (SELECT seq FROM events WHERE created_at < ? ORDER BY seq LIMIT ?)`,
    )
    .run(cutoff, batch).changes;
  sqlite.run(`DELETE FROM expiry_notices WHERE resource_id NOT IN (SELECT id FROM resources)`);
  return deleted;
}
