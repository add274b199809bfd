/**
 * The write engine's instrumentation hook: the queues that commit to a connection report each
 * batch here, and register how deep they are, without knowing who listens (the metrics do).
 * Keyed by connection, like src/db/disk-full.ts, so the engine needs no new constructor argument.
 */
import type { Database } from 'bun:sqlite';

/** Which queue committed: the group commit of changes, or that of read-only audit entries. */
export type CommitQueue = 'writes' | 'audit';

/** One batch: how many jobs, and how long from its oldest job's queueing until it was durable. */
export type CommitReport = { queue: CommitQueue; jobs: number; seconds: number; ok: boolean };

export type CommitObserver = (report: CommitReport) => void;

type Hooks = { observers: Set<CommitObserver>; depths: Map<CommitQueue, () => number> };

const hooks = new WeakMap<Database, Hooks>();

function hooksOf(sqlite: Database): Hooks {
  let found = hooks.get(sqlite);
  if (!found) {
    found = { observers: new Set(), depths: new Map() };
    hooks.set(sqlite, found);
  }
  return found;
}

/** Listens to every batch committed on `sqlite`; returns the function that stops listening. */
export function observeCommits(sqlite: Database, observer: CommitObserver): () => void {
  const { observers } = hooksOf(sqlite);
  observers.add(observer);
  return () => observers.delete(observer);
}

/**
 * Called by a queue after a batch settled; `queuedAt` is the oldest job's performance.now().
 * Cheap when nobody listens (one WeakMap lookup).
 */
export function reportCommit(
  sqlite: Database,
  queue: CommitQueue,
  jobs: number,
  queuedAt: number,
  ok: boolean,
): void {
  const found = hooks.get(sqlite);
  if (!found || found.observers.size === 0) return;
  const report = { queue, jobs, seconds: (performance.now() - queuedAt) / 1000, ok };
  for (const observer of found.observers) observer(report);
}

/** A queue says how to read its depth (jobs waiting, not yet committed). */
export function registerQueueDepth(sqlite: Database, queue: CommitQueue, depth: () => number) {
  hooksOf(sqlite).depths.set(queue, depth);
}

/** The depth of every registered queue of `sqlite`. */
export function queueDepths(sqlite: Database): { queue: CommitQueue; depth: number }[] {
  const found = hooks.get(sqlite);
  if (!found) return [];
  return [...found.depths].map(([queue, depth]) => ({ queue, depth: depth() }));
}
