import type { AnyElysia } from 'elysia';
import { createAccessLayer } from './access/plugin.ts';
import { auditRecorder } from './audit/recorder.ts';
import { startAuditRetention } from './audit/retention.ts';
import { auditRoutes } from './audit/routes.ts';
import { idempotencyPlugin } from './idempotency/plugin.ts';
import type { Instance } from './instance.ts';
import { apiKeyRoutes } from './keys/routes.ts';
import { projectRoutes } from './projects/routes.ts';
import { startPurgeLoop, type PurgeLoop } from './resources/purge.ts';
import { resourceRoutes } from './resources/routes.ts';
import { vaultRoutes } from './vaults/routes.ts';
import { eventRoutes } from './events/routes.ts';
import { webhookRoutes } from './webhooks/routes.ts';
import { DeliveryWorker } from './webhooks/worker.ts';

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
  // Authentication, rate limits and the permission table. It must come first: routes mounted
  // before it would bypass authorization (the server refuses to start if any does).
  const access = createAccessLayer(instance);
  // Webhook deliveries, expiry notices and event retention (src/webhooks/worker.ts).
  const deliveryWorker = new DeliveryWorker(instance);
  return {
    features: [
      access.plugin,
      // Idempotency-Key on every POST: after authentication, before every route with a POST.
      idempotencyPlugin(instance),
      apiKeyRoutes(instance, access.lastUsed),
      auditRoutes(instance),
      projectRoutes(instance),
      vaultRoutes(instance),
      resourceRoutes(instance),
      webhookRoutes(instance),
      eventRoutes(instance),
    ],
    recordOutcome: auditRecorder(instance),
    async start() {
      access.start();
      auditRetention = startAuditRetention(instance);
      // Soft-deleted resources past storage.deleted_retention_days; expired idempotency keys.
      purgeLoop = startPurgeLoop(instance);
      deliveryWorker.start();
    },
    async stop() {
      // First: stop claiming, let attempts in flight finish (bounded) or hand them back.
      await deliveryWorker.stop();
      await purgeLoop?.stop();
      await auditRetention?.stop();
      await access.stop();
    },
  };
}
