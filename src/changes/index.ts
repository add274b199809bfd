/**
 * The change pipeline: the one way anything changes state — API handlers, CLI commands and
 * background loops alike. A change runs in one transaction together with everything that must
 * commit or roll back with it: its events (outbox, metadata only), the replayable response of a
 * `POST` with an `Idempotency-Key`, and its audit entry. Modelled on PocketBase's
 * `RunInTransaction` (core/db_tx.go): a call made while a transaction is already open on the
 * connection joins it instead of opening another, so a service can make a change from inside
 * another one (or a keyring rotation's transaction) and everything still commits as one.
 *
 * Entry points, by who makes the change (each builds the audit entry its way):
 * - {@link commitChange} — an API request; the response is sent once the change is durable.
 * - {@link commitLocalChange} — a CLI command, as the local OS user, in its own IMMEDIATE
 *   transaction (it waits up to `busy_timeout` for a running server's lock).
 * - {@link commitSystemChange} — a background loop (purge, retention, webhook worker, expiry
 *   notices, usage bookkeeping); the change appends its own entries, if any, through the
 *   {@link ChangeTx}. {@link commitSystemChangeNow} is its synchronous form, for the moments
 *   when no event-loop turn is left (a close hook).
 *
 * How the transaction is made durable is the write engine's business (src/db/write-engine.ts):
 * the server's changes are group-committed, N concurrent requests sharing one fsync. The rule
 * for new code: a route or service never calls `instance.writes.run`, `appendAuditEntry` or
 * `emitEvent` to start a write of its own; it calls one of these, and writes its rows through
 * its store's functions inside the change.
 */
import type { Database } from 'bun:sqlite';
import {
  ANONYMOUS_ACTOR,
  appendAuditEntry,
  AuditUnavailableError,
  localAuditEntry,
  requestEntry,
  type AuditEntryInput,
  type AuditTarget,
} from '../ledger/audit-record.ts';
import type { Clock } from '../clock.ts';
import type { Db } from '../db/client.ts';
import { isDatabaseBusy } from '../db/write-lock.ts';
import { emitEvent, type EmitOptions, type EventInput } from '../ledger/emit.ts';
import { requestMeta } from '../http/request-meta.ts';
import { saveIdempotentResponseInJob } from '../ledger/idempotency-pending.ts';
import type { Instance } from '../instance.ts';

/** What an API change returns: the response body, and optionally its event and Location. */
export type ChangeResult<T> = {
  body: T;
  /** Emitted in the same transaction; `object` must be metadata only. */
  event?: EventInput;
  /** The `Location` header of a creation (stored with an idempotent response). */
  location?: string;
};

/**
 * What a change may add to its transaction besides its own rows: events and audit entries.
 * Valid only while the change runs (synchronously, inside its transaction).
 */
export type ChangeTx = {
  /** Emits an event (and its pending deliveries); returns its `evt_` id. */
  emit(event: EventInput, options?: EmitOptions): string;
  /** Appends an audit entry to the chain. */
  audit(entry: AuditEntryInput): void;
};

/** What the pipeline needs of an instance: narrow, so loops can pass their own dependencies. */
export type ChangeDeps = Pick<Instance, 'sqlite' | 'db' | 'clock' | 'writes'>;

function txOf(deps: { db: Db; clock: Clock }): ChangeTx {
  return {
    emit: (event, options) => emitEvent(deps.db, deps.clock, event, options),
    audit: (entry) => void appendAuditEntry(deps.db, deps.clock, entry),
  };
}

/**
 * Runs `fn` in the transaction of the change: joined when one is already open on `sqlite` (a
 * nested change: it runs at once, and a throw propagates at once, so it rolls the outer change
 * back with it), else in a group-committed write job. Resolves once the transaction is durable
 * (joined: once the outer one is, which its own caller awaits).
 */
function inTransaction<T>(deps: ChangeDeps, fn: () => T): Promise<T> {
  if (joins(deps.sqlite)) return Promise.resolve(fn());
  return deps.writes.run(fn);
}

/** Whether a change started now runs inside a transaction already open on the connection. */
function joins(sqlite: Database): boolean {
  return sqlite.inTransaction;
}

/**
 * API handlers: runs `change` (synchronous, inside the transaction) and resolves with its body
 * once the change, its event, its idempotent response and the request's audit entry (from its
 * RequestMeta, with `status` as the status the handler will answer) are committed together.
 * Marks the request audited, so the response hook adds no second entry. A throw inside
 * `change` rolls everything back and rejects with that error; an entry that cannot be written
 * rolls the change back and rejects with a 503. Call once per request.
 */
export function commitChange<T>(
  instance: Pick<Instance, 'sqlite' | 'db' | 'clock' | 'writes' | 'keyring'>,
  request: Request,
  status: number,
  change: (tx: ChangeTx) => ChangeResult<T>,
): Promise<T> {
  const meta = requestMeta(request);
  if (meta.audited) return Promise.reject(new Error('this request has already been audited'));
  const tx = txOf(instance);
  const committed = inTransaction(instance, () => {
    const result = change(tx);
    if (result.event) tx.emit(result.event);
    saveIdempotentResponseInJob(instance, request, status, result.body, result.location ?? null);
    // Built after the change, so that a target it set (e.g. the id it created) is recorded.
    const entry = requestEntry(request, status, meta.actor ?? ANONYMOUS_ACTOR);
    try {
      tx.audit(entry);
    } catch (error) {
      // Rolls the change back with it (the job's savepoint) and answers 503, not 500.
      throw new AuditUnavailableError(error);
    }
    return result.body;
  });
  return committed.then((body) => {
    meta.audited = true;
    return body;
  });
}

/**
 * CLI commands: runs `change` plus one entry with the local OS user as actor, in one IMMEDIATE
 * transaction (waiting up to the busy timeout for a running server's write lock) or in the one
 * already open, so the change and its entry commit or roll back together. When `change` throws,
 * the change is rolled back, an `error` entry is recorded on a best-effort basis (it cannot be
 * if the database itself is failing) and the original error is rethrown.
 */
export function commitLocalChange<T>(
  instance: Pick<Instance, 'sqlite' | 'db' | 'clock'>,
  action: string,
  target: AuditTarget | null,
  change: (tx: ChangeTx) => T,
): T {
  const { sqlite } = instance;
  const tx = txOf(instance);
  const run = () => {
    const result = change(tx);
    tx.audit(localAuditEntry(action, target));
    return result;
  };
  if (joins(sqlite)) return run();
  try {
    return sqlite.transaction(run).immediate();
  } catch (error) {
    // A lock that stayed busy for the whole timeout would make the error entry wait as long again.
    if (isDatabaseBusy(error)) throw error;
    try {
      sqlite.transaction(() => tx.audit(localAuditEntry(action, target, 'error'))).immediate();
    } catch {
      // The database refused the change and the entry alike; the caller reports the first error.
    }
    throw error;
  }
}

/**
 * Background loops (actor: the system): runs `change` in a group-committed transaction, or in
 * the one already open; the change appends its own audit entries and events through `tx`.
 * Resolves with its result once durable.
 */
export function commitSystemChange<T>(deps: ChangeDeps, change: (tx: ChangeTx) => T): Promise<T> {
  const tx = txOf(deps);
  return inTransaction(deps, () => change(tx));
}

/**
 * {@link commitSystemChange} at once, in its own IMMEDIATE transaction (or the one already
 * open): for the moments the write engine cannot be used, e.g. a close hook after it drained.
 */
export function commitSystemChangeNow<T>(
  deps: Pick<Instance, 'sqlite' | 'db' | 'clock'>,
  change: (tx: ChangeTx) => T,
): T {
  const tx = txOf(deps);
  if (joins(deps.sqlite)) return change(tx);
  return deps.sqlite.transaction(() => change(tx)).immediate();
}
