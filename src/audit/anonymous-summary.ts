/**
 * Rejected anonymous requests (401 without a usable key, 429 before authentication) are
 * accounted for in summaries instead of one audit entry each, so that a flood without a key
 * costs bounded disk: one `request.rejected_summary` entry per client address (IPv6 by /64)
 * per window of `audit.anonymous_summary_seconds`, written through the chain like any entry.
 */
import { clientBucketKey } from '../access/rate-limit.ts';
import { toRfc3339 } from '../db/columns.ts';
import { diskSpaceFor } from '../db/disk-full.ts';
import type { Instance } from '../instance.ts';
import {
  appendAuditEntries,
  MAX_REQUEST_ID,
  MAX_USER_AGENT,
  type AuditEntryInput,
} from '../ledger/audit-record.ts';
import { commitSystemChange, commitSystemChangeNow } from '../changes/index.ts';

/** The action of a summary entry. */
export const REJECTED_SUMMARY_ACTION = 'request.rejected_summary';

/** Distinct user agents kept per summary; further ones are only counted. */
export const MAX_SUMMARY_USER_AGENTS = 8;

/** One rejected anonymous request, as much of it as a summary keeps. */
export type Rejection = {
  ip: string | null;
  userAgent: string | null;
  requestId: string;
  status: number;
  /** Epoch ms. */
  at: number;
};

/** What one address (or the overflow) did during a window. */
type Bucket = {
  /** The client address or /64, as the rate limiter groups them; null for the overflow. */
  address: string | null;
  count: number;
  byStatus: Record<string, number>;
  firstAt: number;
  lastAt: number;
  firstRequestId: string;
  lastRequestId: string;
  userAgents: string[];
  /** Requests whose user agent was not among `userAgents` because the list was full. */
  otherUserAgents: number;
};

export type RejectionSummarySettings = {
  /** Length of a window (ms): pending summaries are written at its end. */
  windowMs: number;
  /** Addresses tracked separately per window; the rest go into one overflow bucket. */
  maxAddresses: number;
};

/**
 * The pending summaries of one instance. {@link add} is O(1), synchronous and never fails, so
 * a rejected request never waits for the disk (and keeps being answered 401/429 while the disk
 * is full); memory is bounded by `maxAddresses` buckets of bounded size.
 */
export class RejectionSummaries {
  private buckets = new Map<string, Bucket>();
  private overflow: Bucket | null = null;

  constructor(private readonly maxAddresses: number) {}

  /** Counts one rejection. */
  add(rejection: Rejection): void {
    const address = rejection.ip === null ? 'unknown' : clientBucketKey(rejection.ip);
    let bucket = this.buckets.get(address);
    if (!bucket) {
      if (this.buckets.size >= this.maxAddresses) {
        this.overflow = merge(this.overflow, fromRejection(null, rejection));
        return;
      }
      this.buckets.set(address, fromRejection(address, rejection));
      return;
    }
    record(bucket, rejection);
  }

  /** True when nothing is pending. */
  get isEmpty(): boolean {
    return this.buckets.size === 0 && this.overflow === null;
  }

  /** Rejections counted and not yet taken. */
  get pendingCount(): number {
    let total = this.overflow?.count ?? 0;
    for (const bucket of this.buckets.values()) total += bucket.count;
    return total;
  }

  /** Takes every pending bucket, leaving none. */
  take(): Bucket[] {
    const taken = [...this.buckets.values()];
    if (this.overflow) taken.push(this.overflow);
    this.buckets = new Map();
    this.overflow = null;
    return taken;
  }

  /** Puts back buckets whose entries could not be written, merged with what came since. */
  restore(taken: Bucket[]): void {
    for (const old of taken) {
      if (old.address === null) {
        this.overflow = merge(old, this.overflow);
        continue;
      }
      const current = this.buckets.get(old.address);
      if (current) this.buckets.set(old.address, merge(old, current)!);
      else if (this.buckets.size < this.maxAddresses) this.buckets.set(old.address, old);
      else this.overflow = merge(this.overflow, { ...old, address: null });
    }
  }
}

function fromRejection(address: string | null, rejection: Rejection): Bucket {
  const userAgent = clip(rejection.userAgent, MAX_USER_AGENT);
  return {
    address,
    count: 1,
    byStatus: { [String(rejection.status)]: 1 },
    firstAt: rejection.at,
    lastAt: rejection.at,
    firstRequestId: rejection.requestId.slice(0, MAX_REQUEST_ID),
    lastRequestId: rejection.requestId.slice(0, MAX_REQUEST_ID),
    userAgents: userAgent === null ? [] : [userAgent],
    otherUserAgents: 0,
  };
}

function record(bucket: Bucket, rejection: Rejection): void {
  bucket.count++;
  const status = String(rejection.status);
  bucket.byStatus[status] = (bucket.byStatus[status] ?? 0) + 1;
  bucket.lastAt = rejection.at;
  bucket.lastRequestId = rejection.requestId.slice(0, MAX_REQUEST_ID);
  addUserAgent(bucket, clip(rejection.userAgent, MAX_USER_AGENT), 1);
}

function addUserAgent(bucket: Bucket, userAgent: string | null, count: number): void {
  if (userAgent === null || bucket.userAgents.includes(userAgent)) return;
  if (bucket.userAgents.length < MAX_SUMMARY_USER_AGENTS) bucket.userAgents.push(userAgent);
  else bucket.otherUserAgents += count;
}

/** `earlier` and `later` as one bucket (either may be null); `later` is not modified. */
function merge(earlier: Bucket | null, later: Bucket | null): Bucket | null {
  if (!earlier) return later && { ...later, byStatus: { ...later.byStatus } };
  if (!later) return earlier;
  const merged: Bucket = {
    ...earlier,
    count: earlier.count + later.count,
    byStatus: { ...earlier.byStatus },
    lastAt: Math.max(earlier.lastAt, later.lastAt),
    lastRequestId: later.lastRequestId,
    userAgents: [...earlier.userAgents],
    otherUserAgents: earlier.otherUserAgents + later.otherUserAgents,
  };
  for (const [status, n] of Object.entries(later.byStatus)) {
    merged.byStatus[status] = (merged.byStatus[status] ?? 0) + n;
  }
  for (const userAgent of later.userAgents) addUserAgent(merged, userAgent, 1);
  return merged;
}

/**
 * The audit entry of a bucket. The fixed fields say what a client needs to filter on (actor
 * `anonymous`, outcome `denied`, the address in `ip`, the first request's id and user agent);
 * `details` holds the rest. `status` is 401 when any request of the window was a 401, else 429.
 */
export function summaryEntry(bucket: Bucket): AuditEntryInput {
  return {
    actor: { type: 'anonymous', id: null, name: null },
    action: REJECTED_SUMMARY_ACTION,
    target: null,
    outcome: 'denied',
    status: bucket.byStatus['401'] ? 401 : 429,
    ip: bucket.address === 'unknown' ? null : bucket.address,
    userAgent: bucket.userAgents[0] ?? null,
    requestId: bucket.firstRequestId,
    details: {
      count: bucket.count,
      by_status: bucket.byStatus,
      first_at: toRfc3339(bucket.firstAt),
      last_at: toRfc3339(bucket.lastAt),
      first_request_id: bucket.firstRequestId,
      last_request_id: bucket.lastRequestId,
      user_agents: bucket.userAgents,
      ...(bucket.otherUserAgents > 0 ? { other_user_agents: bucket.otherUserAgents } : {}),
      ...(bucket.address === null ? { overflow: true } : {}),
    },
  };
}

/**
 * The summaries of one instance and their writing: the first rejection of an empty window
 * arms a timer for its end, which appends one entry per bucket in one group-committed
 * transaction (FULL durability, like any write). When that fails (e.g. the disk is full) the
 * buckets are kept, merged with newer rejections, and tried again one window later; nothing is
 * dropped while memory stays bounded. On instance close the rest is written synchronously, so a
 * clean stop leaves nothing unaccounted for; a crash loses at most the current window.
 */
export class RejectionSummaryWriter {
  private readonly summaries: RejectionSummaries;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private flushing: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly instance: Instance,
    private readonly settings: RejectionSummarySettings,
  ) {
    this.summaries = new RejectionSummaries(settings.maxAddresses);
    instance.onClose(() => this.flushOnClose());
  }

  /** Counts a rejection; never waits and never throws. */
  add(rejection: Rejection): void {
    this.summaries.add(rejection);
    this.arm();
  }

  /** Rejections counted and not yet written. */
  get pendingCount(): number {
    return this.summaries.pendingCount;
  }

  /**
   * Writes every pending summary now (the window timer's job; tests call it). Resolves once
   * they are durable; on failure they stay pending for the next attempt, and it rejects.
   */
  flush(): Promise<void> {
    this.flushing ??= this.write().finally(() => {
      this.flushing = undefined;
      this.arm();
    });
    return this.flushing;
  }

  private async write(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.summaries.isEmpty || this.closed) return;
    const taken = this.summaries.take();
    const { db, clock } = this.instance;
    const diskSpace = diskSpaceFor(this.instance.sqlite, this.instance.logger);
    try {
      await commitSystemChange(this.instance, () =>
        appendAuditEntries(db, clock, taken.map(summaryEntry)),
      );
    } catch (error) {
      this.summaries.restore(taken);
      // A full disk is logged once by DiskSpace; anything else here, once per window.
      if (!diskSpace.failed(error)) {
        this.instance.logger.warn(
          'rejected-request summaries could not be written; kept for the next window',
          { pending: this.summaries.pendingCount },
        );
      }
      throw error;
    }
    diskSpace.succeeded();
  }

  private arm(): void {
    if (this.timer || this.flushing || this.closed || this.summaries.isEmpty) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // Logged in write(); the summaries stay pending for the next window.
      this.flush().catch(() => {});
    }, this.settings.windowMs);
    // The window never keeps a process alive; a clean stop writes what is pending on close.
    this.timer.unref?.();
  }

  /** Instance close hook: the write queue has drained; the database is still open. */
  private flushOnClose(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.summaries.isEmpty) return;
    const entries = this.summaries.take().map(summaryEntry);
    const { db, clock, logger } = this.instance;
    try {
      commitSystemChangeNow(this.instance, () => appendAuditEntries(db, clock, entries));
    } catch (error) {
      const lost = entries.reduce((n, entry) => n + Number(entry.details?.count ?? 0), 0);
      logger.error(
        'rejected anonymous requests could not be summarised in the audit log on close',
        { summaries: entries.length, requests: lost },
        error instanceof Error ? error : undefined,
      );
    }
  }
}

const writers = new WeakMap<Instance, RejectionSummaryWriter>();

/** The one {@link RejectionSummaryWriter} of an instance, configured from `[audit]`. */
export function rejectionSummariesFor(instance: Instance): RejectionSummaryWriter {
  let writer = writers.get(instance);
  if (!writer) {
    const { audit } = instance.config;
    writer = new RejectionSummaryWriter(instance, {
      windowMs: audit.anonymous_summary_seconds * 1000,
      maxAddresses: audit.anonymous_summary_max_addresses,
    });
    writers.set(instance, writer);
  }
  return writer;
}

function clip(value: string | null, max: number): string | null {
  return value !== null && value.length > max ? value.slice(0, max) : value;
}
