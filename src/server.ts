/** Starts the HTTP server (TLS, docs, readiness) for an instance and stops it cleanly. */
import type { Server } from 'bun';
import type { AnyElysia } from 'elysia';
import { eq } from 'drizzle-orm';
import { diskSpaceFor } from './db/disk-full.ts';
import { instance as instanceTable } from './db/schema/instance.ts';
import { clientIp } from './access/client-ip.ts';
import { docsPlugin } from './http/docs.ts';
import { loadListenerTls } from './http/tls.ts';
import { createApp, type App, type AppOptions } from './http/app.ts';
import type { Instance } from './instance.ts';
import { metricsFor } from './metrics/metrics.ts';
import { readinessProbe, type DrainState } from './readiness.ts';
import { VERSION } from './version.ts';
import { commitSystemChange } from './changes/index.ts';
import { cachedProbe } from './http/health.ts';

export type ServerOptions = {
  /** Feature modules mounted into the app. */
  features?: AnyElysia[];
  plugins?: AnyElysia[];
  /** Further readiness checks, by name (reported on a 503 from /v1/health). */
  readiness?: ReadinessCheck[];
  clientIp?: (request: Request, socketIp: string | undefined) => string;
  /**
   * Runs on stop after the listener has drained (no request in flight) and before the database
   * closes: background workers stop here, so in-flight requests never outlive them.
   */
  afterDrain?: () => Promise<void>;
  /** See {@link AppOptions.recordOutcome}: the audit log's hook. */
  recordOutcome?: AppOptions['recordOutcome'];
  /** Override the configured port (tests use 0 for an ephemeral port). */
  port?: number;
  /**
   * The address to bind, already resolved from `server.host` (`secryn serve` resolves it first
   * so that a failure is its own line); defaults to `server.host` itself.
   */
  address?: string;
};

export type RunningServer = {
  app: App;
  server: Server<undefined>;
  url: URL;
  /**
   * Stops accepting connections, lets in-flight requests finish, runs `afterDrain`, then flushes
   * writes and closes the database.
   */
  stop(): Promise<void>;
};

/** A named readiness condition; `ready` must be cheap (it runs on every health request). */
export type ReadinessCheck = { name: string; ready: () => boolean };

/** How often a running server checks the stored keyring for rotations by other processes. */
const KEYRING_REFRESH_MS = 1000;

/** How long a health verdict is reused, so that load-balancer polling costs at most one write a second. */
const HEALTH_PROBE_TTL_MS = 1000;

/**
 * A health probe that proves the database accepts writes by group-committing a one-row update,
 * cached for {@link HEALTH_PROBE_TTL_MS}, plus the `readiness` checks. Resolves to the names of
 * the failing checks (`database` for the write probe).
 */
export function writabilityProbe(
  instance: Instance,
  readiness: ReadinessCheck[] = [],
): () => Promise<string[]> {
  const diskSpace = diskSpaceFor(instance.sqlite, instance.logger);
  const writable = cachedProbe(async () => {
    try {
      await commitSystemChange(instance, () =>
        instance.db
          .update(instanceTable)
          .set({ healthProbeAt: instance.clock.now() })
          .where(eq(instanceTable.id, 1))
          .run(),
      );
      diskSpace.succeeded(); // space came back: the state clears without a restart
      return true;
    } catch (error) {
      diskSpace.failed(error);
      return false;
    }
  }, HEALTH_PROBE_TTL_MS);
  return async () => {
    const ok = await writable();
    return [
      ...(ok ? [] : ['database']),
      // A write that failed on a full disk since the cached verdict counts too.
      ...(diskSpace.isFull ? ['disk_full'] : []),
      ...readiness.filter((check) => !check.ready()).map((check) => check.name),
    ];
  };
}

/**
 * Builds the app for an instance (also used by in-process tests through `app.handle`).
 * `drain` is flipped by {@link startServer}'s stop: readiness then answers 503 `draining`.
 */
export function buildApp(
  instance: Instance,
  options: ServerOptions = {},
  drain: DrainState = { draining: false },
): App {
  // Unhealthy (503) whenever the keyring cannot open a stored value, whatever else the caller
  // checks (the keyring logs why).
  const liveness = writabilityProbe(instance, [
    { name: 'keyring', ready: () => instance.keyring.isReady() },
    ...(options.readiness ?? []),
  ]);
  return createApp({
    config: instance.config,
    logger: instance.logger,
    version: VERSION,
    failingChecks: liveness,
    notReady: readinessProbe(instance, liveness, drain),
    // Always offered, counted only while `metrics.enabled` is on: SIGHUP can turn it on.
    observeResponse: metricsFor(instance).observeRequest,
    // The client address for rate limits and the audit log: X-Forwarded-For only when the
    // operator said a proxy sits in front (server.trust_proxy).
    clientIp:
      options.clientIp ??
      ((request, socketIp) => clientIp(request, socketIp, instance.config.server.trust_proxy)),
    recordOutcome: options.recordOutcome,
    plugins: [docsPlugin({ version: VERSION }), ...(options.plugins ?? [])],
    features: options.features,
  });
}

/** Starts the HTTP(S) listener for an instance. */
export function startServer(instance: Instance, options: ServerOptions = {}): RunningServer {
  const { config } = instance;
  const drain: DrainState = { draining: false };
  const app = buildApp(instance, options, drain);
  const tls = loadListenerTls(config.server);
  // app.listen (rather than Bun.serve + app.fetch) gives handlers the server, which the
  // client-address lookup needs.
  app.listen({
    hostname: options.address ?? config.server.host,
    port: options.port ?? config.server.port,
    // A hard cap above the API's own limit: the app answers 413 in the error shape itself; this
    // only stops a client from streaming an unbounded body at the socket.
    maxRequestBodySize: config.server.max_body_bytes + 64 * 1024,
    // Bun's development mode answers an error that escapes every handler with a page showing
    // the stack and source paths; Secryn serves production only.
    development: false,
    ...(tls ? { tls } : {}),
  });
  const server = app.server!;
  // Follow rotations made by other processes even while no request seals or opens a value, so
  // a data key is loaded (under the master key held in memory) before any later rotation
  // re-wraps it; it also keeps readiness current.
  const keyringTimer = setInterval(() => {
    try {
      instance.keyring.refresh();
    } catch {
      // The database is closing or unavailable: the write probe reports it.
    }
  }, KEYRING_REFRESH_MS);
  keyringTimer.unref();
  const url = new URL(
    `${tls ? 'https' : 'http'}://${formatHost(config.server.host)}:${server.port}`,
  );
  let stopping: Promise<void> | undefined;
  return {
    app,
    server,
    url,
    stop() {
      stopping ??= (async () => {
        // Readiness answers 503 `draining` from now on; with server.drain_delay_ms the listener
        // keeps serving that long, so a load balancer sees it and stops sending traffic first.
        drain.draining = true;
        if (config.server.drain_delay_ms > 0) await Bun.sleep(config.server.drain_delay_ms);
        const timeout = config.server.shutdown_timeout_ms;
        const graceful = server.stop(false);
        const forced = new Promise<void>((resolve) =>
          setTimeout(() => {
            void server.stop(true);
            resolve();
          }, timeout).unref(),
        );
        await Promise.race([graceful, forced]);
        clearInterval(keyringTimer);
        await options.afterDrain?.();
        await instance.close();
      })();
      return stopping;
    },
  };
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
