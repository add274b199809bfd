/** Assembles the feature modules (routes, plugins, background loops) that `serve` mounts. */
import type { AnyElysia } from 'elysia';
import { createAccessLayer } from './access/plugin.ts';
import { auditRecorder } from './audit/recorder.ts';
import { startAuditRetention } from './audit/retention.ts';
import { auditRoutes } from './audit/routes.ts';
import type { BackupScheduler } from './backup/schedule.ts';
import { startAuditShipping } from './audit/ship/shipper.ts';
import { idempotencyPlugin } from './idempotency/plugin.ts';
import type { Instance } from './instance.ts';
import { apiKeyRoutes } from './keys/routes.ts';
import { meRoutes } from './me/routes.ts';
import { sessionRoutes } from './sessions/routes.ts';
import { projectRoutes } from './projects/routes.ts';
import { startPurgeLoop, type PurgeLoop } from './resources/purge.ts';
import { resourceRoutes } from './resources/routes.ts';
import { vaultRoutes } from './vaults/routes.ts';
import { vaultReadRoutes } from './vault-read/routes.ts';
import { eventRoutes } from './events/routes.ts';
import { EventStreamHub } from './events/stream.ts';
import { eventStreamRoutes } from './events/stream-routes.ts';
import { secretImportRoutes } from './secrets-import/routes.ts';
import { webhookRoutes } from './webhooks/routes.ts';
import { DeliveryWorker } from './webhooks/worker.ts';
import { onConfigReload } from './config/reload.ts';
import { metricsFor } from './metrics/metrics.ts';
import { metricsRoutes } from './metrics/routes.ts';

/** What `serve` mounts and runs for an instance. */
export type Features = {
  /** Feature route modules, each declaring its own `/v1/...` paths. */
  features: AnyElysia[];
  /** Starts background workers (webhook delivery, purges); called once the server listens. */
  start(): Promise<void>;
  /** Stops them, letting in-flight work finish or be released. */
  stop(): Promise<void>;
  /** The audit log's hook: every response waits for its durable entry (see AppOptions). */
  recordOutcome: (request: Request, status: number) => Promise<void>;
};

/**
 * Assembles every feature of Secryn for an instance. This is the one place that knows the full
 * list, so that `serve` and the end-to-end tests mount exactly the same thing.
 */
export function buildFeatures(instance: Instance): Features {
  let auditRetention: { stop(): Promise<void> } | undefined;
  let purgeLoop: PurgeLoop | undefined;
  let backups: BackupScheduler | undefined;
  let auditShipping: { stop(): Promise<void> } | undefined;
  // Authentication, rate limits and the permission table. It must come first: routes mounted
  // before it would bypass authorization (the server refuses to start if any does).
  const access = createAccessLayer(instance);
  // Rate limits change live on SIGHUP (src/config/reload.ts).
  onConfigReload(instance.config, (next) => access.limiter.reconfigure(next.rate_limit));
  const metrics = metricsFor(instance);
  // [backup] changes live on SIGHUP too; a bad section throws and the running schedule stays.
  onConfigReload(instance.config, (next) => backups?.reschedule(next.backup));
  // Webhook deliveries, expiry notices and event retention (src/webhooks/worker.ts).
  const deliveryWorker = new DeliveryWorker(instance, {
    onOutcome: (outcome) => metrics.webhookAttempt(outcome),
  });
  // GET /v1/events/stream: open streams, their limits and heartbeats (src/events/stream.ts).
  const eventStreams = new EventStreamHub(instance, {
    heartbeatMs: instance.config.events.stream_heartbeat_seconds * 1000,
    maxPerKey: instance.config.events.max_streams_per_key,
    maxTotal: instance.config.events.max_streams,
  });
  return {
    features: [
      access.plugin,
      // Console sign-in: before the idempotency plugin, so every sign-in is a new session.
      sessionRoutes(instance, access.sessions),
      // Idempotency-Key on every POST: after authentication, before every route with a POST.
      idempotencyPlugin(instance),
      apiKeyRoutes(instance, access.lastUsed),
      auditRoutes(instance),
      projectRoutes(instance),
      vaultRoutes(instance),
      vaultReadRoutes(instance),
      resourceRoutes(instance),
      secretImportRoutes(instance),
      webhookRoutes(instance),
      eventStreamRoutes(instance, eventStreams),
      eventRoutes(instance),
      metricsRoutes(metrics),
      meRoutes(),
    ],
    recordOutcome: auditRecorder(instance),
    async start() {
      access.start();
      auditRetention = startAuditRetention(instance);
      // Soft-deleted resources past storage.deleted_retention_days; expired idempotency keys.
      purgeLoop = startPurgeLoop(instance);
      deliveryWorker.start();
      eventStreams.start();
      // [backup] schedule: one timer (src/backup/schedule.ts; backupSchedulerFor(instance)).
      // Loaded here, after the listener is up: it brings in age-encryption (post-quantum curves
      // computed at load), which nothing before the first answer needs.
      const { startBackupScheduler } = await import('./backup/schedule.ts');
      backups = startBackupScheduler(instance);
      metrics.setLastBackupSource(() => backups?.status().lastSuccessAt ?? null);
      // [audit.ship]: entries to syslog/file in the background (auditShipperFor(instance)).
      auditShipping = startAuditShipping(instance);
    },
    async stop() {
      eventStreams.stop();
      // First: stop claiming, let attempts in flight finish (bounded) or hand them back.
      await deliveryWorker.stop();
      // A backup in progress finishes: it holds no lock, and a half-made one is removed anyway.
      await backups?.stop();
      await auditShipping?.stop();
      await purgeLoop?.stop();
      await auditRetention?.stop();
      await access.stop();
    },
  };
}
