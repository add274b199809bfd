/**
 * The SQL of the event streams: events in commit order after a position (`seq`, the rowid of
 * `events`), the position of an event id or a time, and the state of the streaming key. Prepared
 * once per connection: the hub reads after every commit that wrote an event. Also the vault
 * lookup the visibility rules need for keys without `events:read`.
 */
import type { Database, Statement } from 'bun:sqlite';
import type { VaultRef } from '../access/visibility.ts';
import { perConnection } from '../db/per-connection.ts';

/** One stored event, as the streams need it. */
export type StoredEvent = { seq: number; type: string; projectId: string | null; payload: string };

/** What decides whether a streaming key is still the key that opened the stream. */
export type StreamKeyState = {
  revokedAt: number | null;
  expiresAt: number | null;
  /** Role, limits and scopes as stored: a change ends the stream (the client reconnects). */
  grant: string;
};

type Statements = {
  after: Statement<StoredEvent, [number, number]>;
  seqOf: Statement<{ seq: number }, [string]>;
  firstSince: Statement<{ seq: number | null }, [number]>;
  last: Statement<{ seq: number | null }, []>;
  key: Statement<StreamKeyState, [string]>;
  vault: Statement<{ id: string; projectId: string; restricted: number }, [string]>;
};

const statementsFor = perConnection(
  (sqlite): Statements => ({
    after: sqlite.prepare(
      `SELECT seq, type, project_id AS projectId, payload FROM events
       WHERE seq > ?1 ORDER BY seq LIMIT ?2`,
    ),
    seqOf: sqlite.prepare('SELECT seq FROM events WHERE id = ?'),
    // Over the index range of the recent events only (`events_created_idx`).
    firstSince: sqlite.prepare('SELECT min(seq) AS seq FROM events WHERE created_at >= ?'),
    last: sqlite.prepare('SELECT max(seq) AS seq FROM events'),
    key: sqlite.prepare(
      `SELECT revoked_at AS revokedAt, expires_at AS expiresAt,
         json_array(role, project_ids, vault_ids, scopes) AS grant
       FROM api_keys WHERE id = ?`,
    ),
    vault: sqlite.prepare(
      'SELECT id, project_id AS projectId, restricted FROM vaults WHERE id = ?',
    ),
  }),
);

/** Up to `limit` events committed after position `seq`, oldest first. */
export function eventsAfter(sqlite: Database, seq: number, limit: number): StoredEvent[] {
  return statementsFor(sqlite).after.all(seq, limit);
}

/** The position of event `id`, or undefined when it is not (or no longer) stored. */
export function positionOfEvent(sqlite: Database, id: string): number | undefined {
  return statementsFor(sqlite).seqOf.get(id)?.seq;
}

/** The position just before the first event created at or after `ms` (now, when none is). */
export function positionBefore(sqlite: Database, ms: number): number {
  const first = statementsFor(sqlite).firstSince.get(ms)?.seq;
  return first === null || first === undefined ? lastPosition(sqlite) : first - 1;
}

/** The position of the newest event (0 when there is none). */
export function lastPosition(sqlite: Database): number {
  return statementsFor(sqlite).last.get()?.seq ?? 0;
}

/** The stored state of API key `keyId`, or undefined when it is gone. */
export function streamKeyState(sqlite: Database, keyId: string): StreamKeyState | undefined {
  return statementsFor(sqlite).key.get(keyId) ?? undefined;
}

/**
 * The current state of vault `id` for the visibility rules (undefined once it is gone): the
 * resource-only streams check every event against it.
 */
export function streamVaultRef(sqlite: Database, id: string): VaultRef | undefined {
  const row = statementsFor(sqlite).vault.get(id);
  return row
    ? { id: row.id, projectId: row.projectId, restricted: row.restricted === 1 }
    : undefined;
}
