/**
 * The Prometheus metrics of one instance (prom-client): what requests, the write engine, the
 * webhook worker, the keyring, the database files and backups are doing, rendered by `GET
 * /metrics` (./routes.ts). Events are counted as they happen (cheap increments on the hot
 * path); state is read when Prometheus scrapes (`collect`), with the expensive parts cached.
 *
 * Labels are bounded by construction: routes are templates (`/v1/resources/:id`) or
 * `unmatched`, methods a fixed set, statuses three digits, queues and outcomes fixed words.
 * No label ever carries a raw path, an id, a name, a token or a value.
 */
import { statSync } from 'node:fs';
// The classes from their own files: prom-client's index also loads the Pushgateway (node:http,
// node:https, zlib) and the cluster aggregator, ~6 ms and ~5 MiB of every start-up for nothing.
import Counter from 'prom-client/lib/counter.js';
import Gauge from 'prom-client/lib/gauge.js';
import Histogram from 'prom-client/lib/histogram.js';
import Registry from 'prom-client/lib/registry.js';
import cpuTotal from 'prom-client/lib/metrics/processCpuTotal.js';
import heapSizeAndUsed from 'prom-client/lib/metrics/heapSizeAndUsed.js';
import maxFileDescriptors from 'prom-client/lib/metrics/processMaxFileDescriptors.js';
import memory from 'prom-client/lib/metrics/osMemoryHeap.js';
import openFileDescriptors from 'prom-client/lib/metrics/processOpenFileDescriptors.js';
import startTime from 'prom-client/lib/metrics/processStartTime.js';
import { observeCommits, queueDepths, type CommitReport } from '../db/commit-observer.ts';
import { retentionHeldBack } from '../audit/retention.ts';
import { requestMeta } from '../http/request-meta.ts';
import type { Instance } from '../instance.ts';
import { encryptedColumns } from '../db/schema/encrypted-columns.ts';
import { readWrappedDataKeys } from '../keyring/store.ts';
import { countValuesByDataKey } from '../keyring/value-census.ts';
import { VERSION } from '../version.ts';
import { countExpired, countExpiring, webhookBacklog } from './store.ts';
import { DAY_MS } from '../clock.ts';

/** What the metrics read of an instance. */
export type MetricsInstance = Pick<Instance, 'config' | 'sqlite' | 'keyring' | 'clock'>;

/** Label of requests that matched no route (404s on unknown paths, scanners). */
export const UNMATCHED_ROUTE = 'unmatched';

/** How long the data-key census (a scan of every encrypted column) is reused between scrapes. */
const CENSUS_TTL_MS = 60_000;

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** Request latency buckets: a cached read answers in well under a millisecond. */
const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10,
];
/** Commit latency buckets: an fsync'd group commit takes ~0.1–10 ms on healthy disks. */
const COMMIT_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

/** Outcomes of one webhook attempt (src/webhooks/deliveries.ts `AttemptOutcome`). */
export type WebhookAttemptOutcome = 'succeeded' | 'retry' | 'failed' | 'lease_lost';

/** Epoch ms of the last backup that completed and verified, or null when none is known. */
export type LastBackupSource = () => number | null;

/** The metrics of one instance; see the module comment. */
export class Metrics {
  readonly registry = new Registry();
  /**
   * Off (`metrics.enabled = false`): GET /metrics answers 404 and requests are not counted;
   * the write engine's commits are counted regardless. SIGHUP sets it (src/cli/serve.ts).
   */
  enabled: boolean;
  #lastBackup: LastBackupSource = () => null;
  #census: { at: number; byVersion: Map<number, number> } | undefined;
  readonly #requests: Counter<'method' | 'route' | 'status'>;
  readonly #latency: Histogram<'method' | 'route'>;
  readonly #refusals: Counter<'limiter'>;
  readonly #commitSeconds: Histogram<'queue'>;
  readonly #commitJobs: Histogram<'queue'>;
  readonly #commitFailures: Counter<'queue'>;
  readonly #attempts: Counter<'outcome'>;
  readonly #stopObserving: () => void;

  constructor(private readonly instance: MetricsInstance) {
    this.enabled = instance.config.metrics.enabled;
    const registers = [this.registry];
    this.#requests = new Counter({
      name: 'secryn_http_requests_total',
      help: 'HTTP requests answered, by method, route template and status.',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.#latency = new Histogram({
      name: 'secryn_http_request_duration_seconds',
      help: 'Time from receiving a request to its response being sent, by route template.',
      labelNames: ['method', 'route'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#refusals = new Counter({
      name: 'secryn_rate_limit_refusals_total',
      help: 'Requests refused with 429: limiter "key" (per API key) or "client" (per address, no usable key).',
      labelNames: ['limiter'],
      registers,
    });
    this.#commitSeconds = new Histogram({
      name: 'secryn_db_commit_duration_seconds',
      help: 'Time from a write or audit entry being queued until its batch was durable, by queue (audit: read-only requests; writes: changes with their audit entries).',
      labelNames: ['queue'],
      buckets: COMMIT_BUCKETS,
      registers,
    });
    this.#commitJobs = new Histogram({
      name: 'secryn_db_commit_batch_size',
      help: 'Jobs (audit entries or changes) per group commit, by queue.',
      labelNames: ['queue'],
      buckets: BATCH_BUCKETS,
      registers,
    });
    this.#commitFailures = new Counter({
      name: 'secryn_db_commit_failures_total',
      help: 'Group commits that failed (their requests were answered 503), by queue.',
      labelNames: ['queue'],
      registers,
    });
    this.#attempts = new Counter({
      name: 'secryn_webhook_delivery_attempts_total',
      help: 'Webhook delivery attempts by outcome: succeeded, retry (will be tried again), failed (for good), lease_lost.',
      labelNames: ['outcome'],
      registers,
    });
    for (const queue of ['writes', 'audit']) {
      this.#commitFailures.labels(queue).inc(0);
    }
    for (const outcome of ['succeeded', 'retry', 'failed', 'lease_lost']) {
      this.#attempts.labels(outcome).inc(0);
    }
    for (const limiter of ['key', 'client']) this.#refusals.labels(limiter).inc(0);
    this.#stopObserving = observeCommits(instance.sqlite, (report) => this.#commit(report));
    this.#gauges();
    // prom-client's own process collectors (read /proc on collect; no timers).
    for (const register of [
      cpuTotal,
      startTime,
      memory,
      openFileDescriptors,
      maxFileDescriptors,
      heapSizeAndUsed,
    ]) {
      register(this.registry);
    }
  }

  /**
   * The app's response hook (src/http/app.ts `observeResponse`), installed whatever
   * `metrics.enabled` says so that turning metrics on by SIGHUP starts counting; while they
   * are off it returns at once (the hook itself costs ~1 µs a request, bench/ops.ts).
   */
  readonly observeRequest = (request: Request, route: string | undefined, status: number) => {
    if (!this.enabled) return;
    const meta = requestMeta(request);
    const seconds = (performance.now() - meta.startedAt) / 1000;
    this.observeResponse(request.method, route, status, seconds, meta.actor?.type !== 'api_key');
  };

  /** Counts one answered request; `route` is the matched template, undefined when none. */
  observeResponse(
    method: string,
    route: string | undefined,
    status: number,
    seconds: number,
    anonymous: boolean,
  ): void {
    const verb = METHODS.has(method) ? method : 'other';
    const template = route ?? UNMATCHED_ROUTE;
    this.#requests.labels(verb, template, String(status)).inc();
    this.#latency.labels(verb, template).observe(seconds);
    if (status === 429) this.#refusals.labels(anonymous ? 'client' : 'key').inc();
  }

  /** Counts one webhook delivery attempt's outcome. */
  webhookAttempt(outcome: WebhookAttemptOutcome): void {
    this.#attempts.labels(outcome).inc();
  }

  /**
   * Where `secryn_backup_age_seconds` reads the last good backup from: the backup scheduler
   * registers its record here. Until one does, the age is +Inf (no backup known).
   */
  setLastBackupSource(source: LastBackupSource): void {
    this.#lastBackup = source;
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Stops listening to the write engine (the instance is closing). */
  close(): void {
    this.#stopObserving();
  }

  #commit(report: CommitReport): void {
    if (!report.ok) {
      this.#commitFailures.labels(report.queue).inc();
      return;
    }
    this.#commitSeconds.labels(report.queue).observe(report.seconds);
    this.#commitJobs.labels(report.queue).observe(report.jobs);
  }

  /** The gauges read at scrape time. */
  #gauges(): void {
    const { sqlite, config, clock, keyring } = this.instance;
    const registers = [this.registry];
    const now = () => Math.trunc(clock.now());
    new Gauge({
      name: 'secryn_build_info',
      help: 'Always 1; the labels say which Secryn and which Bun runtime are running.',
      labelNames: ['version', 'runtime'],
      registers,
    })
      .labels(VERSION, `bun ${Bun.version}`)
      .set(1);
    new Gauge({
      name: 'secryn_db_write_queue_depth',
      help: 'Jobs waiting for the next group commit, by queue.',
      labelNames: ['queue'],
      registers,
      collect() {
        for (const { queue, depth } of queueDepths(sqlite)) this.labels(queue).set(depth);
      },
    });
    new Gauge({
      name: 'secryn_db_file_size_bytes',
      help: 'Size of the database file and of its write-ahead log.',
      labelNames: ['file'],
      registers,
      collect() {
        const path = config.storage.path;
        if (path === ':memory:') return;
        this.labels('database').set(sizeOf(path));
        this.labels('wal').set(sizeOf(`${path}-wal`));
      },
    });
    new Gauge({
      name: 'secryn_webhook_deliveries_backlog',
      help: 'Webhook deliveries not finished: state "pending" (waiting, due or not) or "in_flight".',
      labelNames: ['state'],
      registers,
      collect() {
        const backlog = webhookBacklog(sqlite, now());
        this.labels('pending').set(backlog.pending);
        this.labels('in_flight').set(backlog.inFlight);
      },
    });
    new Gauge({
      name: 'secryn_webhook_oldest_due_delivery_age_seconds',
      help: 'How long the longest-waiting due webhook delivery has been due (0 when none is).',
      registers,
      collect() {
        const { oldestDueAt } = webhookBacklog(sqlite, now());
        this.set(oldestDueAt === null ? 0 : Math.max(0, now() - oldestDueAt) / 1000);
      },
    });
    new Gauge({
      name: 'secryn_resources_expiring',
      help: 'Live resources that expire within each notice window (notifications.expiring_days) from now.',
      labelNames: ['within_days'],
      registers,
      collect() {
        this.reset();
        const at = now();
        for (const days of new Set(config.notifications.expiring_days)) {
          this.labels(String(days)).set(countExpiring(sqlite, at, at + days * DAY_MS));
        }
      },
    });
    new Gauge({
      name: 'secryn_resources_expired',
      help: 'Live (not deleted) resources already past their expiry.',
      registers,
      collect() {
        this.set(countExpired(sqlite, now()));
      },
    });
    new Gauge({
      name: 'secryn_keyring_current_data_key_version',
      help: 'The data-key version new values are sealed under.',
      registers,
      collect() {
        this.set(keyring.currentVersion);
      },
    });
    const census = () => this.#valueCensus();
    new Gauge({
      name: 'secryn_keyring_data_keys',
      help: 'Data-key versions held in the keyring.',
      registers,
      collect() {
        this.set(readWrappedDataKeys(sqlite).length);
      },
    });
    new Gauge({
      name: 'secryn_keyring_values',
      help: 'Stored encrypted values by the data-key version that seals them (refreshed at most once a minute).',
      labelNames: ['data_key_version'],
      registers,
      collect() {
        this.reset();
        for (const [version, n] of census()) this.labels(String(version)).set(n);
      },
    });
    new Gauge({
      name: 'secryn_keyring_values_under_old_keys',
      help: 'Stored values not sealed under the current data key (`master-key rotate --reencrypt` moves them).',
      registers,
      collect() {
        let old = 0;
        for (const [version, n] of census()) if (version !== keyring.currentVersion) old += n;
        this.set(old);
      },
    });
    const instance = this.instance;
    new Gauge({
      name: 'secryn_audit_retention_held_back_entries',
      help: 'Audit entries past audit.retention_days kept at the last pruning because an [audit.ship] sink has not taken them yet.',
      registers,
      collect() {
        this.set(retentionHeldBack(instance));
      },
    });
    const lastBackup = () => this.#lastBackup();
    new Gauge({
      name: 'secryn_backup_last_success_timestamp_seconds',
      help: 'When the last backup that completed and verified finished (0: none known).',
      registers,
      collect() {
        const at = lastBackup();
        this.set(at === null ? 0 : at / 1000);
      },
    });
    new Gauge({
      name: 'secryn_backup_age_seconds',
      help: 'Seconds since the last backup that completed and verified (+Inf: none known).',
      registers,
      collect() {
        const at = lastBackup();
        this.set(at === null ? Infinity : Math.max(0, now() - at) / 1000);
      },
    });
  }

  /** Values per data-key version, from a scan of every encrypted column, reused for a minute. */
  #valueCensus(): Map<number, number> {
    const at = performance.now();
    if (!this.#census || at - this.#census.at >= CENSUS_TTL_MS) {
      const byVersion = new Map<number, number>();
      for (const column of encryptedColumns()) {
        let counted: Map<number, number>;
        try {
          counted = countValuesByDataKey(this.instance.sqlite, [column]).byVersion;
        } catch {
          continue; // a column registered by code whose table this database lacks
        }
        for (const [version, n] of counted)
          byVersion.set(version, (byVersion.get(version) ?? 0) + n);
      }
      this.#census = { at, byVersion };
    }
    return this.#census.byVersion;
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0; // no WAL right now (checkpointed away), or the file is gone
  }
}

const metricsByInstance = new WeakMap<MetricsInstance, Metrics>();

/** The one {@link Metrics} of an instance (created on first use, dropped when it closes). */
export function metricsFor(instance: MetricsInstance & Pick<Instance, 'onClose'>): Metrics {
  let metrics = metricsByInstance.get(instance);
  if (!metrics) {
    const created = new Metrics(instance);
    metrics = created;
    metricsByInstance.set(instance, created);
    instance.onClose(() => created.close());
  }
  return metrics;
}
