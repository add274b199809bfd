/**
 * Expiry notices: `resource.expiring` when a resource's `expires_at` comes within one of the
 * `notifications.expiring_days` thresholds, and `resource.expired` once it has passed — each
 * once per resource and expiry date (`expiry_notices` remembers what was sent, so a restart or a
 * second scan sends nothing twice, and a renewed resource with a new `expires_at` gets a fresh
 * set). Run by the delivery worker's housekeeping, on the injected clock.
 *
 * When a scan finds several thresholds crossed at once (a resource created 2 days before it
 * expires, or a server that was down for a week), only the tightest one is announced and the
 * wider ones are recorded as passed: one notice saying "expires in 1 day" beats three at once.
 */
import type { Database, Statement } from 'bun:sqlite';
import { DAY_MS, type Clock } from '../clock.ts';
import type { Db } from '../db/client.ts';
import { toRfc3339 } from '../db/columns.ts';
import { emitEvent } from '../ledger/emit.ts';
import { perConnection } from '../db/per-connection.ts';

/** The notice key of the expired notice; expiring ones are `<days>d`. */
const EXPIRED = 'expired';

type Candidate = {
  id: string;
  type: string;
  vaultId: string;
  projectId: string;
  name: string;
  description: string | null;
  tags: string;
  enabled: number;
  expiresAt: number;
};

type Statements = {
  candidates: Statement<Candidate, [{ horizon: number; limit: number }]>;
  sent: Statement<{ threshold: string }, [{ id: string; expiresAt: number }]>;
  record: Statement<
    unknown,
    [{ id: string; expiresAt: number; threshold: string; eventId: string; now: number }]
  >;
};

const statementsFor = perConnection(
  (sqlite): Statements => ({
    // Live resources expiring within the widest threshold that have not had their final
    // (expired) notice yet.
    candidates: sqlite.query(
      `SELECT r.id, r.type, r.vault_id AS vaultId, r.project_id AS projectId, r.name,
         r.description, r.tags, r.enabled, r.expires_at AS expiresAt
       FROM resources r
       WHERE r.deleted_at IS NULL AND r.expires_at IS NOT NULL AND r.expires_at <= $horizon
         AND NOT EXISTS (SELECT 1 FROM expiry_notices n WHERE n.resource_id = r.id
           AND n.expires_at = r.expires_at AND n.threshold = 'expired')
       ORDER BY r.expires_at LIMIT $limit`,
    ),
    sent: sqlite.query(
      `SELECT threshold FROM expiry_notices WHERE resource_id = $id AND expires_at = $expiresAt`,
    ),
    record: sqlite.query(
      `INSERT OR IGNORE INTO expiry_notices (resource_id, expires_at, threshold, event_id, emitted_at)
       VALUES ($id, $expiresAt, $threshold, $eventId, $now)`,
    ),
  }),
);

/**
 * Emits the expiry notices due at `clock.now()` for up to `limit` resources and returns how many
 * events it emitted. Synchronous: run inside a write job, so notices and their events commit
 * together. `expiringDays` are the thresholds in days (order and duplicates do not matter).
 */
export function emitExpiryNotices(
  db: Db,
  sqlite: Database,
  clock: Clock,
  expiringDays: readonly number[],
  limit = 500,
): number {
  const s = statementsFor(sqlite);
  const now = Math.trunc(clock.now());
  const days = [...new Set(expiringDays)].sort((a, b) => a - b); // tightest first
  const widest = days.length > 0 ? days[days.length - 1]! : 0;
  let emitted = 0;
  for (const resource of s.candidates.all({ horizon: now + widest * DAY_MS, limit })) {
    const sent = new Set(
      s.sent.all({ id: resource.id, expiresAt: resource.expiresAt }).map((r) => r.threshold),
    );
    const remaining = resource.expiresAt - now;
    // Every threshold reached by now, tightest first; the expired notice outranks them all.
    const reached =
      remaining <= 0
        ? [EXPIRED, ...days.map(key)]
        : days.filter((d) => remaining <= d * DAY_MS).map(key);
    if (reached.length === 0 || sent.has(reached[0]!)) {
      // Nothing new (or the tightest was announced already): mark the wider ones as passed.
      for (const threshold of reached) recordPassed(s, resource, threshold, now);
      continue;
    }
    const announced = reached[0]!;
    const eventId = emitEvent(db, clock, {
      type: announced === EXPIRED ? 'resource.expired' : 'resource.expiring',
      projectId: resource.projectId,
      object: {
        ...resourceMetadata(resource),
        ...(announced === EXPIRED ? {} : { days_before_expiry: Number(announced.slice(0, -1)) }),
      },
    });
    emitted++;
    s.record.run({
      id: resource.id,
      expiresAt: resource.expiresAt,
      threshold: announced,
      eventId,
      now,
    });
    for (const threshold of reached.slice(1)) recordPassed(s, resource, threshold, now);
  }
  return emitted;
}

function key(days: number): string {
  return `${days}d`;
}

function recordPassed(s: Statements, resource: Candidate, threshold: string, now: number): void {
  s.record.run({ id: resource.id, expiresAt: resource.expiresAt, threshold, eventId: '', now });
}

function resourceMetadata(resource: Candidate): Record<string, unknown> {
  let tags: unknown = [];
  try {
    tags = JSON.parse(resource.tags);
  } catch {
    // Leave tags empty rather than fail the whole scan over one odd row.
  }
  return {
    id: resource.id,
    type: resource.type,
    vault_id: resource.vaultId,
    project_id: resource.projectId,
    name: resource.name,
    description: resource.description,
    tags,
    enabled: resource.enabled === 1,
    expires_at: toRfc3339(resource.expiresAt),
  };
}
