/**
 * Appending to the audit log's hash chain, and the entries of API requests and CLI actions. A
 * change appends its entry inside its own transaction (src/changes/); a request that changes
 * nothing appends through the write engine's record lane ({@link appendAuditEntryDurably}).
 */
import type { Database, Statement } from 'bun:sqlite';
import { hostname } from 'node:os';
import type { Clock } from '../clock.ts';
import { connectionOf, type Db } from '../db/client.ts';
import { ServiceUnavailableError } from '../errors.ts';
import { requestMeta, type AuditActor, type AuditTarget } from '../http/request-meta.ts';
import type { Instance } from '../instance.ts';
import { localActor } from '../os-user.ts';
import { chainHash, GENESIS_HASH, type ChainFields } from './audit-chain.ts';
import { integrityOf } from '../keyring/integrity.ts';
import { auditEntryId } from './audit-entry-id.ts';
import { perConnection } from '../db/per-connection.ts';

export type { AuditActor, AuditTarget };

/** How an audited request or action ended. */
export type AuditOutcome = 'success' | 'denied' | 'error';

/** What a caller supplies for one entry; id, time, sequence and hashes are added on append. */
export type AuditEntryInput = {
  actor: AuditActor;
  action: string;
  target: AuditTarget | null;
  outcome: AuditOutcome;
  status: number | null;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  /**
   * Extra facts stored as a JSON object in `details` (and hashed into the chain); only for
   * entries the fixed fields cannot describe, e.g. a `request.rejected_summary`. Built by
   * Secryn, never copied from a request.
   */
  details?: Record<string, unknown> | null;
};

/**
 * The audit entry could not be written: the request answers 503 and the change that came with
 * it is rolled back. `cause` keeps the database error for the server log.
 */
export class AuditUnavailableError extends ServiceUnavailableError {
  constructor(cause: unknown) {
    super('The audit log cannot be written right now');
    this.cause = cause;
  }
}

/** Longest user agent kept; the rest is cut so that a client cannot bloat the log. */
export const MAX_USER_AGENT = 256;
/** Longest request id kept: what `chooseRequestId` accepts from a client (request-meta.ts). */
export const MAX_REQUEST_ID = 128;
/** Longest identifier-like field kept (actor/target ids and names, action). */
const MAX_FIELD = 256;

type Head = { seq: number; hash: string };

type Statements = {
  sqlite: Database;
  head: Statement<Head, []>;
  checkpoint: Statement<Head, []>;
  insert: Statement<unknown, [ChainFields & { hash: string }]>;
};

/** Prepared once per connection: the append path runs for every request. */
const statementsFor = perConnection(
  (sqlite): Statements => ({
    sqlite,
    head: sqlite.query<Head, []>('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1'),
    checkpoint: sqlite.query<Head, []>(
      'SELECT through_seq AS seq, through_hash AS hash FROM audit_checkpoint WHERE id = 1',
    ),
    insert: sqlite.query(
      `INSERT INTO audit_log (seq, id, at, actor_type, actor_id, actor_name, action, target_type,
         target_id, outcome, status, ip, user_agent, request_id, details, prev_hash, hash)
       VALUES ($seq, $id, $at, $actorType, $actorId, $actorName, $action, $targetType,
         $targetId, $outcome, $status, $ip, $userAgent, $requestId, $details, $prevHash, $hash)`,
    ),
  }),
);

/**
 * The current end of the chain: the newest entry, else the retention checkpoint, else genesis.
 * Read from the database on every append rather than cached: inside `BEGIN IMMEDIATE` it is
 * what every process agrees on (the CLI appends from its own connection), and a cache would go
 * stale on a savepoint rollback. It is one descent of the rowid B-tree (~1 µs).
 */
function readHead(statements: Statements): Head {
  return statements.head.get() ?? statements.checkpoint.get() ?? { seq: 0, hash: GENESIS_HASH };
}

/**
 * Appends one entry to the hash chain. Synchronous: call inside a write job / transaction.
 * The chain head is read inside that transaction, whose write lock (BEGIN IMMEDIATE, or the
 * group commit's transaction) serialises appenders across connections and processes.
 * @throws Error when called outside a transaction (the head could change under it).
 */
export function appendAuditEntry(
  db: Db,
  clock: Clock,
  entry: AuditEntryInput,
): { id: string; hash: string } {
  const statements = chainStatements(db);
  return appendAfter(statements, readHead(statements), Math.trunc(clock.now()), entry);
}

/**
 * Appends entries in order, reading the chain head once (the group commit's path): the same
 * rules as {@link appendAuditEntry}.
 */
export function appendAuditEntries(db: Db, clock: Clock, entries: AuditEntryInput[]): void {
  const statements = chainStatements(db);
  const at = Math.trunc(clock.now());
  let head = readHead(statements);
  for (const entry of entries) head = appendAfter(statements, head, at, entry);
}

function chainStatements(db: Db): Statements {
  const sqlite = connectionOf(db);
  if (!sqlite.inTransaction) {
    throw new Error('appendAuditEntry must run inside a write transaction');
  }
  return statementsFor(sqlite);
}

function appendAfter(
  statements: Statements,
  head: Head,
  at: number,
  entry: AuditEntryInput,
): Head & { id: string } {
  const seq = head.seq + 1;
  const fields: ChainFields = {
    seq,
    id: auditEntryId(seq, at),
    at,
    actorType: entry.actor.type,
    actorId: clip(entry.actor.id, MAX_FIELD),
    actorName: clip(entry.actor.name, MAX_FIELD),
    action: clip(entry.action, MAX_FIELD) ?? 'unknown',
    targetType: clip(entry.target?.type ?? null, MAX_FIELD),
    targetId: clip(entry.target?.id ?? null, MAX_FIELD),
    outcome: entry.outcome,
    status: entry.status === null ? null : Math.trunc(entry.status),
    ip: clip(entry.ip, MAX_FIELD),
    userAgent: clip(entry.userAgent, MAX_USER_AGENT),
    requestId: clip(entry.requestId, MAX_REQUEST_ID),
    prevHash: head.hash,
    details: entry.details ? JSON.stringify(entry.details) : null,
  };
  const row = fields as ChainFields & { hash: string };
  row.hash = chainHash(fields, integrityOf(statements.sqlite));
  statements.insert.run(row);
  return { seq: row.seq, hash: row.hash, id: row.id };
}

/**
 * The outcome of a request from its final status: 2xx/3xx success; 401, 403 and 429 denied; a
 * 404 that the access layer used to hide something (`denied`) denied; anything else an error.
 */
export function outcomeOf(status: number, denied = false): AuditOutcome {
  if (status >= 200 && status < 400) return 'success';
  if (status === 401 || status === 403 || status === 429) return 'denied';
  if (status === 404 && denied) return 'denied';
  return 'error';
}

/**
 * The action recorded when no route named one: the request was rejected before routing (401,
 * 429) or matched no route. Deliberately generic: the path may carry names or ids that the
 * caller was not allowed to learn about, and it is never recorded.
 */
export function fallbackAction(status: number): string {
  if (status === 401) return 'request.unauthenticated';
  if (status === 429) return 'request.rate_limited';
  if (status === 404 || status === 405) return 'request.unmatched';
  return 'request.rejected';
}

/** The actor of a request that presented no usable key. */
export const ANONYMOUS_ACTOR: AuditActor = { type: 'anonymous', id: null, name: null };

/**
 * The entry of an API request from its {@link requestMeta}, or null when the request never
 * reached authentication (no actor: health, docs). Takes only what the access layer put in the
 * meta plus the client address, user agent and request id — never the path, query, headers
 * with credentials, or body.
 */
export function requestAuditEntry(request: Request, status: number): AuditEntryInput | null {
  const meta = requestMeta(request);
  if (!meta.actor) return null;
  return requestEntry(request, status, meta.actor);
}

/** The entry of an API request by `actor`, from its {@link requestMeta}. */
export function requestEntry(request: Request, status: number, actor: AuditActor): AuditEntryInput {
  const meta = requestMeta(request);
  return {
    actor,
    action: meta.action ?? fallbackAction(status),
    target: meta.target ?? null,
    outcome: outcomeOf(status, meta.denied === true),
    status,
    ip: clientAddress(meta.clientIp),
    userAgent: request.headers.get('user-agent'),
    requestId: meta.requestId,
    ...(meta.auditDetails ? { details: meta.auditDetails } : {}),
  };
}

/** The actor of CLI actions: the local OS user (and the host, since several may share a db). */
export function localUserActor(): AuditActor {
  const user = localActor();
  return { type: 'local_user', id: user, name: `${user}@${hostname()}` };
}

/** The entry of a CLI action by the local OS user (src/changes/ `commitLocalChange`). */
export function localAuditEntry(
  action: string,
  target: AuditTarget | null,
  outcome: AuditOutcome = 'success',
): AuditEntryInput {
  return {
    actor: localUserActor(),
    action,
    target,
    outcome,
    status: null,
    ip: null,
    userAgent: null,
    requestId: null,
  };
}

/**
 * Appends `entry` with the write engine's next record batch (src/db/write-engine.ts): for
 * requests that change nothing (reads, denials, errors). Resolves once the entry is durable;
 * rejects (503) if it cannot be written. With `waitForLock: false` (the request already waited
 * the whole busy timeout) it fails as soon as another process holds the write lock.
 */
export function appendAuditEntryDurably(
  instance: Pick<Instance, 'writes' | 'db' | 'clock'>,
  entry: AuditEntryInput,
  options: { waitForLock?: boolean } = {},
): Promise<void> {
  return instance.writes.append(
    () => void appendAuditEntry(instance.db, instance.clock, entry),
    options,
  );
}

/** The client address to record: none when the access layer could not tell it. */
export function clientAddress(ip: string | undefined): string | null {
  return ip && ip !== 'unknown' ? ip : null;
}

function clip(value: string | null | undefined, max: number): string | null {
  if (value === null || value === undefined) return null;
  return value.length > max ? value.slice(0, max) : value;
}
