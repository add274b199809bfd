/**
 * The webhook delivery worker that runs inside `secryn serve` (started and stopped by
 * src/features.ts). It claims due deliveries from the outbox under a lease (./deliveries.ts),
 * attempts each one — resolve and check the target now (./outbound-guard.ts), sign with a fresh
 * timestamp (./signing.ts), POST pinned to the checked address (./attempt.ts) — and records the
 * outcome, scheduling retries with backoff and jitter (./backoff.ts). Its housekeeping, in the
 * same loop, emits expiry notices (src/events/expiry.ts) and prunes old events
 * (src/events/retention.ts).
 *
 * Every "is it due" decision reads the injected clock; real timers only decide how soon the loop
 * looks again. Tests drive it with {@link DeliveryWorker.tick} / {@link DeliveryWorker.drain}
 * instead of starting it.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Instance } from '../instance.ts';
import { emitExpiryNotices } from '../events/expiry.ts';
import { onOutboxWrite } from '../ledger/outbox-signal.ts';
import { pruneEvents } from '../events/retention.ts';
import { attemptDelivery, type DeliveryAttemptResult } from './attempt.ts';
import { DEFAULT_BACKOFF, nextAttemptDelayMs, type BackoffOptions } from './backoff.ts';
import {
  claimDueDeliveries,
  reclaimExpiredLeases,
  recordAttempt,
  releaseLeases,
  type AttemptOutcome,
  type ClaimedDelivery,
  type RetryPolicy,
} from './deliveries.ts';
import { resolveDeliveryTarget, type LookupAll, type OutboundPolicy } from './outbound-guard.ts';
import { openWebhookUrl, signingSecrets } from './service.ts';
import { signPayload } from './signing.ts';
import { commitSystemChange } from '../changes/index.ts';

/** What the worker uses of an instance. */
export type WorkerInstance = Pick<
  Instance,
  'config' | 'logger' | 'clock' | 'sqlite' | 'db' | 'writes' | 'keyring'
>;

/** Overrides for tests and benchmarks; production uses none. */
export type DeliveryWorkerOptions = {
  /** DNS lookup used to resolve targets (inject to simulate DNS changing after save). */
  lookup?: LookupAll;
  fetchImpl?: typeof fetch;
  /** Jitter source for the backoff, in [0, 1]. */
  random?: () => number;
  backoff?: BackoffOptions;
  /** Real-time interval between polls; default `webhooks.poll_interval_ms`. */
  pollIntervalMs?: number;
  /** Lease on a claimed delivery; default 2 × `webhooks.timeout_ms` + 5 s. */
  leaseMs?: number;
  /** Clock interval between expiry scans; default 60 s. */
  expiryScanIntervalMs?: number;
  /** Clock interval between event-retention runs; default 1 h. */
  retentionIntervalMs?: number;
  /** Identifies this worker's leases; default host:pid:random. */
  owner?: string;
  /** Told the outcome of every recorded attempt (the metrics count them). */
  onOutcome?: (outcome: AttemptOutcome) => void;
};

/** What one attempt of the worker did, for tests and logs. */
export type AttemptReport = {
  deliveryId: string;
  outcome: AttemptOutcome | 'abandoned';
  /** True when the job recording it also claimed the next work for its slot. */
  claimedNext?: boolean;
};

/** How long a finished attempt waits for others to share its recording commit. */
const OUTCOME_BATCH_MS = 2;

type PendingOutcome = {
  outcome: { delivery: ClaimedDelivery; startedAt: number; result: DeliveryAttemptResult };
  resolve: (value: { outcome: AttemptOutcome; claimedNext: boolean }) => void;
  reject: (error: unknown) => void;
};

/** The worker; see the module comment. */
export class DeliveryWorker {
  readonly owner: string;
  readonly #deps: WorkerInstance;
  readonly #options: DeliveryWorkerOptions;
  readonly #policy: OutboundPolicy;
  readonly #retry: RetryPolicy;
  readonly #leaseMs: number;
  readonly #pollMs: number;
  readonly #capacity: number;
  readonly #perEndpoint: number;
  /** Delivery id → its attempt (attempt + recording). */
  readonly #running = new Map<string, Promise<AttemptReport>>();
  readonly #perWebhook = new Map<string, number>();
  /** Deliveries whose lease was handed back at shutdown: their late outcome is not recorded. */
  readonly #abandoned = new Set<string>();
  #started = false;
  #stopping = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #cycle: Promise<ClaimedDelivery[]> | undefined;
  #reclaimed = false;
  #lastExpiryScan = -Infinity;
  #lastRetention = -Infinity;
  #unsubscribe: (() => void) | undefined;
  /** Claimed by a committed or committing job, not dispatched yet: delivery id → webhook id. */
  readonly #reserved = new Map<string, string>();
  readonly #outcomes: PendingOutcome[] = [];
  #outcomeTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(deps: WorkerInstance, options: DeliveryWorkerOptions = {}) {
    this.#deps = deps;
    this.#options = options;
    const { webhooks } = deps.config;
    this.owner = options.owner ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.#policy = { allowedHosts: webhooks.allowed_hosts, allowedCidrs: webhooks.allowed_cidrs };
    const random = options.random ?? Math.random;
    const backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.#retry = {
      maxAttempts: webhooks.max_attempts,
      delayMs: (failures) => nextAttemptDelayMs(failures, random, backoff),
      disableAfterMs: webhooks.disable_after_hours * 3_600_000,
    };
    this.#leaseMs = options.leaseMs ?? 2 * webhooks.timeout_ms + 5_000;
    this.#pollMs = options.pollIntervalMs ?? webhooks.poll_interval_ms;
    this.#capacity = webhooks.concurrency;
    this.#perEndpoint = Math.min(webhooks.per_endpoint_concurrency, webhooks.concurrency);
  }

  /** Deliveries being attempted right now. */
  get inFlight(): number {
    return this.#running.size;
  }

  /** Starts the loop: polls every poll interval, and at once when this process emits events. */
  start(): void {
    if (this.#started || this.#stopping) return;
    this.#started = true;
    this.#unsubscribe = onOutboxWrite(() => this.wake());
    this.#schedule(0);
  }

  /** Asks the loop to look for due work soon (e.g. after a manual retry). */
  wake(): void {
    if (this.#started && !this.#stopping) this.#schedule(0);
  }

  /**
   * Stops taking work, then waits up to `graceMs` for the attempts in flight to finish and be
   * recorded. Those still running after it are handed back (their leases released, so the next
   * start retries them at once) and their late outcome is ignored: a receiver may then get that
   * message twice, which at-least-once allows. Default grace: `webhooks.timeout_ms` + 1 s,
   * capped by `server.shutdown_timeout_ms`.
   */
  async stop(graceMs?: number): Promise<void> {
    this.#stopping = true;
    this.#unsubscribe?.();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const { config } = this.#deps;
    const grace =
      graceMs ?? Math.min(config.webhooks.timeout_ms + 1_000, config.server.shutdown_timeout_ms);
    await this.#cycle?.catch(() => []);
    if (this.#running.size === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finished = await Promise.race([
      Promise.allSettled([...this.#running.values()]).then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), grace))),
    ]);
    clearTimeout(timer);
    if (finished) return;
    const ids = [...this.#running.keys()];
    for (const id of ids) this.#abandoned.add(id);
    try {
      await commitSystemChange(this.#deps, () =>
        releaseLeases(this.#deps.sqlite, this.owner, Math.trunc(this.#deps.clock.now()), ids),
      );
      this.#deps.logger.info('webhook deliveries handed back at shutdown', { count: ids.length });
    } catch (error) {
      // The leases will expire on their own; the next start claims the deliveries then.
      this.#deps.logger.warn('could not release webhook delivery leases', {
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  /**
   * One pass: housekeeping if due, then claim due deliveries up to the free capacity and start
   * their attempts. Resolves with the number claimed; with `wait`, only once those attempts have
   * been recorded. Safe to call while the loop runs (passes do not overlap).
   */
  async tick(wait = true): Promise<number> {
    while (this.#cycle) await this.#cycle.catch(() => []);
    const cycle = this.#claimAfterHousekeeping();
    this.#cycle = cycle;
    let claimed: ClaimedDelivery[];
    try {
      claimed = await cycle;
    } finally {
      this.#cycle = undefined;
    }
    const attempts = claimed.map((delivery) => this.#dispatch(delivery));
    if (wait) await Promise.all(attempts);
    return claimed.length;
  }

  /** Ticks until nothing is due and nothing is in flight (by the injected clock); for tests. */
  async drain(maxPasses = 1_000): Promise<void> {
    for (let pass = 0; pass < maxPasses; pass++) {
      const claimed = await this.tick(true);
      if (claimed === 0 && this.#running.size === 0) return;
      if (claimed === 0) await Promise.allSettled([...this.#running.values()]);
    }
    throw new Error('webhook worker did not drain');
  }

  async #claimAfterHousekeeping(): Promise<ClaimedDelivery[]> {
    await this.#housekeeping();
    if (this.#stopping && this.#started) return [];
    if (this.#capacity - this.#running.size <= 0) return [];
    let made: ClaimedDelivery[] = [];
    try {
      return await commitSystemChange(this.#deps, () => (made = this.#claimNow()));
    } catch (error) {
      this.#unreserve(made); // rolled back with the job
      throw error;
    }
  }

  /** Forgets reservations of claims that will not be dispatched (rolled back or handed back). */
  #unreserve(claims: ClaimedDelivery[]): void {
    for (const claim of claims) this.#reserved.delete(claim.id);
  }

  /**
   * Claims what fits now; synchronous, inside a write job. `finishing` are deliveries whose
   * outcomes the same job is recording: their slots count as free.
   */
  #claimNow(finishing: ClaimedDelivery[] = []): ClaimedDelivery[] {
    // Claims made by an earlier job of the same group commit are not dispatched yet: count them.
    const running = new Set([...this.#running.keys(), ...this.#reserved.keys()]);
    const inFlight = new Map(this.#perWebhook);
    for (const webhookId of this.#reserved.values()) {
      inFlight.set(webhookId, (inFlight.get(webhookId) ?? 0) + 1);
    }
    for (const done of finishing) {
      running.delete(done.id);
      inFlight.set(done.webhookId, (inFlight.get(done.webhookId) ?? 1) - 1);
    }
    const capacity = this.#capacity - running.size;
    if (capacity <= 0) return [];
    const claimed = claimDueDeliveries(this.#deps.sqlite, Math.trunc(this.#deps.clock.now()), {
      owner: this.owner,
      leaseMs: this.#leaseMs,
      capacity,
      perEndpoint: this.#perEndpoint,
      inFlight,
      running,
    });
    for (const claim of claimed) this.#reserved.set(claim.id, claim.webhookId);
    return claimed;
  }

  async #housekeeping(): Promise<void> {
    const { sqlite, db, clock, config, logger } = this.#deps;
    const change = <T>(fn: () => T) => commitSystemChange(this.#deps, fn);
    const now = Math.trunc(clock.now());
    try {
      if (!this.#reclaimed) {
        await change(() => reclaimExpiredLeases(sqlite, now));
        this.#reclaimed = true;
      }
      if (now - this.#lastExpiryScan >= (this.#options.expiryScanIntervalMs ?? 60_000)) {
        this.#lastExpiryScan = now;
        const emitted = await change(() =>
          emitExpiryNotices(db, sqlite, clock, config.notifications.expiring_days),
        );
        if (emitted > 0) logger.info('expiry notices emitted', { count: emitted });
      }
      if (now - this.#lastRetention >= (this.#options.retentionIntervalMs ?? 3_600_000)) {
        this.#lastRetention = now;
        const pruned = await change(() => pruneEvents(sqlite, now, config.events.retention_days));
        if (pruned > 0) logger.info('old events pruned', { count: pruned });
      }
    } catch (error) {
      logger.error('webhook housekeeping failed', error instanceof Error ? error : undefined);
    }
  }

  #dispatch(delivery: ClaimedDelivery): Promise<AttemptReport> {
    this.#reserved.delete(delivery.id);
    this.#perWebhook.set(delivery.webhookId, (this.#perWebhook.get(delivery.webhookId) ?? 0) + 1);
    const attempt = this.#attempt(delivery).then((report) => {
      this.#running.delete(delivery.id);
      this.#abandoned.delete(delivery.id);
      const left = (this.#perWebhook.get(delivery.webhookId) ?? 1) - 1;
      if (left > 0) this.#perWebhook.set(delivery.webhookId, left);
      else this.#perWebhook.delete(delivery.webhookId);
      // The recording job already claimed the next work for this slot (see #attempt); without
      // it (tests driving tick(), or after an error) let the loop look.
      if (!report.claimedNext) this.wake();
      return report;
    });
    this.#running.set(delivery.id, attempt);
    return attempt;
  }

  async #attempt(delivery: ClaimedDelivery): Promise<AttemptReport> {
    const { clock, logger } = this.#deps;
    const startedAt = Math.trunc(clock.now());
    const result = await this.#send(delivery);
    if (this.#abandoned.has(delivery.id)) return { deliveryId: delivery.id, outcome: 'abandoned' };
    try {
      const { outcome, claimedNext } = await this.#record({ delivery, startedAt, result });
      this.#options.onOutcome?.(outcome);
      const context = {
        webhook_id: delivery.webhookId,
        delivery_id: delivery.id,
        event_id: delivery.eventId,
        status: result.status ?? null,
        error: result.error ?? null,
      };
      if (outcome === 'failed') logger.warn('webhook delivery failed for good', context);
      else if (outcome === 'retry') logger.debug('webhook delivery attempt failed', context);
      return { deliveryId: delivery.id, outcome, claimedNext };
    } catch (error) {
      // Not recorded: the lease expires and the delivery is attempted again.
      logger.error(
        'could not record a webhook attempt',
        error instanceof Error ? error : undefined,
      );
      this.#options.onOutcome?.('lease_lost');
      return { deliveryId: delivery.id, outcome: 'lease_lost' };
    }
  }

  /**
   * Queues an outcome for the next recording job. Outcomes that finish within
   * {@link OUTCOME_BATCH_MS} of each other share one job, and so one commit (an fsync under
   * `synchronous = full`, which otherwise dominates the cost of a delivery). While the loop runs,
   * that job also claims the next due work for the slots it frees, so a busy worker pays about
   * one commit per batch of deliveries instead of two per delivery.
   */
  #record(
    outcome: PendingOutcome['outcome'],
  ): Promise<{ outcome: AttemptOutcome; claimedNext: boolean }> {
    return new Promise((resolve, reject) => {
      this.#outcomes.push({ outcome, resolve, reject });
      if (!this.#outcomeTimer) {
        this.#outcomeTimer = setTimeout(() => void this.#flushOutcomes(), OUTCOME_BATCH_MS);
      }
    });
  }

  async #flushOutcomes(): Promise<void> {
    this.#outcomeTimer = undefined;
    const batch = this.#outcomes.splice(0);
    if (batch.length === 0) return;
    const { clock, db, sqlite } = this.#deps;
    const chain = this.#started && !this.#stopping;
    let recorded: { outcomes: AttemptOutcome[]; next: ClaimedDelivery[] };
    let made: ClaimedDelivery[] = [];
    try {
      recorded = await commitSystemChange(this.#deps, () => {
        const outcomes = batch.map(({ outcome }) =>
          recordAttempt(db, sqlite, clock, {
            ...outcome,
            owner: this.owner,
            policy: this.#retry,
            keyring: this.#deps.keyring,
          }),
        );
        made = chain ? this.#claimNow(batch.map(({ outcome }) => outcome.delivery)) : [];
        return { outcomes, next: made };
      });
    } catch (error) {
      this.#unreserve(made);
      for (const item of batch) item.reject(error);
      return;
    }
    if (recorded.next.length > 0 && this.#stopping) {
      // stop() began while the job ran: hand the new claims straight back.
      const ids = recorded.next.map((claimed) => claimed.id);
      this.#unreserve(recorded.next);
      await commitSystemChange(this.#deps, () =>
        releaseLeases(sqlite, this.owner, Math.trunc(clock.now()), ids),
      ).catch(() => {}); // else their leases expire
    } else {
      for (const claimed of recorded.next) void this.#dispatch(claimed);
    }
    batch.forEach((item, i) =>
      item.resolve({ outcome: recorded.outcomes[i]!, claimedNext: chain }),
    );
  }

  /** One attempt; never throws. Refusals by the outbound guard are failures like any other. */
  async #send(delivery: ClaimedDelivery): Promise<DeliveryAttemptResult> {
    const { clock, db, keyring, config, logger } = this.#deps;
    const timeoutMs = config.webhooks.timeout_ms;
    const began = performance.now();
    const failure = (error: string): DeliveryAttemptResult => ({
      ok: false,
      durationMs: Math.round(performance.now() - began),
      error,
    });
    try {
      const url = new URL(
        openWebhookUrl(keyring, {
          id: delivery.webhookId,
          projectId: delivery.projectId,
          url: delivery.sealedUrl,
        }),
      );
      const target = await withTimeout(
        resolveDeliveryTarget(url, this.#policy, this.#options.lookup),
        timeoutMs,
        { ok: false as const, reason: `host name lookup timed out after ${timeoutMs} ms` },
      );
      if (!target.ok) return failure(`target refused: ${target.reason}`);
      const headers = signPayload({
        secrets: signingSecrets(db, keyring, delivery.webhookId, Math.trunc(clock.now())),
        msgId: delivery.eventId,
        timestampSeconds: Math.floor(clock.now() / 1000),
        body: delivery.payload,
      });
      return await attemptDelivery({
        url,
        target: { address: target.address, family: target.family },
        headers,
        body: delivery.payload,
        timeoutMs,
        ...(this.#options.fetchImpl ? { fetchImpl: this.#options.fetchImpl } : {}),
      });
    } catch (error) {
      logger.error(
        'webhook attempt could not be prepared',
        error instanceof Error ? error : undefined,
      );
      return failure('internal error while preparing the delivery');
    }
  }

  #schedule(delayMs: number): void {
    const at = performance.now() + delayMs;
    if (this.#timer && this.#timerAt <= at) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      void this.#loop();
    }, delayMs);
    // The server keeps the process alive; a worker alone (tests, CLI) must not.
    this.#timer.unref?.();
  }

  async #loop(): Promise<void> {
    if (this.#stopping) return;
    let more = false;
    try {
      const capacityBefore = this.#capacity - this.#running.size;
      const claimed = await this.tick(false);
      // A full claim means more may be due: look again at once instead of after a poll.
      more = claimed > 0 && claimed >= capacityBefore;
    } catch (error) {
      this.#deps.logger.error(
        'webhook worker pass failed',
        error instanceof Error ? error : undefined,
      );
    }
    if (!this.#stopping) this.#schedule(more ? 0 : this.#pollMs);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<T>((resolve) => (timer = setTimeout(() => resolve(onTimeout), ms))),
  ]).finally(() => clearTimeout(timer));
}
