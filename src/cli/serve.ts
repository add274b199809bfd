/** `secryn serve`: the API and background workers until SIGTERM/SIGINT. */
import { defineCommand } from 'citty';
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { buildFeatures } from '../features.ts';
import { claimServeMarker } from '../backup/serve-marker.ts';
import { isDatabaseBusy } from '../db/write-lock.ts';
import type { LoadedConfig } from '../config/load.ts';
import { openInstance, type Instance } from '../instance.ts';
import { createLogger, type Logger } from '../log/logger.ts';
import { onConfigReload, reloadConfig } from '../config/reload.ts';
import type { Config } from '../config/schema.ts';
import { metricsFor } from '../metrics/metrics.ts';
import { MetricsListener } from '../metrics/routes.ts';
import { startServer, type RunningServer } from '../server.ts';
import { VERSION } from '../version.ts';
import { cliLogger, commonArgs, loadCliConfig } from './common.ts';
import { CliFailure, ExitCode } from './exit.ts';

/**
 * `secryn serve`: runs the API (and the background workers) until SIGTERM or SIGINT, then
 * stops accepting connections, lets in-flight requests finish, flushes writes, closes the
 * database and exits 0. The serve marker (src/backup/serve-marker.ts) is held from before the
 * listener starts until the database is closed, and is released however serving ends, a
 * failed start (port in use, unreadable TLS key) included.
 */
export const serveCommand = defineCommand({
  meta: { name: 'serve', description: 'Run the HTTP API and background workers' },
  args: { ...commonArgs },
  async run({ args }) {
    const { config, source } = loadCliConfig(args);
    const logger = cliLogger(config);
    const instance = openInstance(config, logger);
    let releaseMarker: () => void;
    try {
      releaseMarker = claimServeMarker(config.storage.path, instance.sqlite);
    } catch (error) {
      await instance.close();
      throw new CliFailure(
        error instanceof Error ? error.message : String(error),
        isDatabaseBusy(error) ? ExitCode.DATABASE_BUSY : ExitCode.FAILURE,
      );
    }
    try {
      await serveUntilSignal(instance, source, logger);
    } finally {
      releaseMarker();
    }
  },
});

/**
 * Starts the listener and the workers, waits for SIGTERM/SIGINT, then stops both. Whether it
 * returns or throws, the database is closed by then.
 */
async function serveUntilSignal(
  instance: Instance,
  source: LoadedConfig['source'],
  logger: Logger,
): Promise<void> {
  const { features, start, stop, recordOutcome } = buildFeatures(instance);
  let running: RunningServer;
  try {
    const address = await listenAddress(instance.config.server);
    // The web console at / (src/console/plugin.ts), loaded only here: it embeds its bundle.
    const plugins = instance.config.console.enabled
      ? [(await import('../console/plugin.ts')).consolePlugin()]
      : [];
    running = startServer(instance, {
      features,
      plugins,
      recordOutcome,
      afterDrain: stop,
      address,
    });
  } catch (error) {
    // Nothing runs yet but the database.
    await instance.close();
    throw listenFailure(error, instance.config.server) ?? error;
  }
  // SIGTERM/SIGINT are handled from the moment the listener is up: a supervisor that has seen
  // a healthy answer may stop the server while the workers are still starting (start() awaits
  // module loads), and must get the graceful stop, not the default action's exit 143.
  let signalled!: (signal: string) => void;
  const shutdownSignal = new Promise<string>((resolve) => (signalled = resolve));
  const onSigterm = () => signalled('SIGTERM');
  const onSigint = () => signalled('SIGINT');
  process.once('SIGTERM', onSigterm);
  process.once('SIGINT', onSigint);
  const metrics = metricsFor(instance);
  const metricsListener = new MetricsListener(metrics, logger);
  // SIGHUP re-reads the file and applies what can change live (src/config/reload.ts). Handled
  // from here too: a reload sent once the server answers must not meet the default action (the
  // process ends) while start() is still loading the workers.
  onConfigReload(instance.config, (next) => {
    applyLogSettings(logger, next.log);
    metrics.enabled = next.metrics.enabled;
    metricsListener.apply(next.metrics);
  });
  let reloading = Promise.resolve();
  const reload = () => {
    if (source.kind !== 'file') {
      logger.warn('SIGHUP ignored: running on the built-in defaults, no file to reload');
      return;
    }
    logger.info('SIGHUP: reloading the configuration', { config: source.path });
    reloading = reloading.then(async () => {
      await reloadConfig(instance.config, source.path, logger);
    });
  };
  process.on('SIGHUP', reload);
  try {
    metricsListener.apply(instance.config.metrics);
    await start();
  } catch (error) {
    process.off('SIGTERM', onSigterm);
    process.off('SIGINT', onSigint);
    process.off('SIGHUP', reload);
    await reloading;
    metricsListener.stop();
    await running.stop();
    throw error instanceof Error && error.message.includes('(metrics.listen)')
      ? new CliFailure(error.message)
      : error;
  }
  logger.info('secryn listening', {
    url: running.url.href.replace(/\/$/, ''),
    version: VERSION,
    config: source.kind === 'file' ? source.path : 'built-in defaults',
    database: instance.config.storage.path,
  });
  logger.info('shutting down', { signal: await shutdownSignal });
  process.off('SIGHUP', reload);
  await reloading;
  metricsListener.stop();
  await running.stop();
  logger.info('stopped');
}

/** Applies a reloaded `[log]` section to the running logger: its level and its line format. */
function applyLogSettings(logger: Logger, settings: Config['log']): void {
  const fresh = createLogger({ level: settings.level, format: settings.format });
  logger.level = fresh.level;
  logger.setReporters(fresh.options.reporters);
}

const UNRESOLVABLE = 'the host is not an address or a name that resolves';

/** Why binding fails, in the words an operator acts on, by the listen error's code. */
const LISTEN_FAILURES: Record<string, string> = {
  EADDRINUSE: 'the port is in use by another process',
  EADDRNOTAVAIL: "the address is not one of this machine's",
  EINVAL: UNRESOLVABLE,
  EACCES: 'permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)',
};

/** How long `server.host` may take to resolve before serve gives up on it. */
const RESOLVE_TIMEOUT_MS = 10_000;

/** Resolves a host name to one address (node:dns's `lookup`, replaceable in tests). */
export type HostLookup = (host: string) => Promise<{ address: string }>;

/**
 * The address to bind for `server.host`, resolved before listening: Bun's own resolution fails
 * with bare errno texts (`ENOENT … listen` on a host without a working resolver). An IP literal
 * is used as it is, and `localhost` is the IPv4 loopback without asking any resolver (RFC 6761
 * reserves it for loopback, and a host without /etc/hosts must still be able to serve on it).
 * Any resolution failure, a timeout included, is the documented "cannot listen" line (exit 1).
 */
export async function listenAddress(
  server: { host: string; port: number },
  lookup: HostLookup = dnsLookup,
): Promise<string> {
  const host = server.host.replace(/^\[(.*)\]$/, '$1');
  if (isIP(host) !== 0) return host;
  if (/^localhost\.?$/i.test(host)) return '127.0.0.1';
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const resolved = await Promise.race([
      lookup(host),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out')), RESOLVE_TIMEOUT_MS);
      }),
    ]);
    if (isIP(resolved.address) === 0) throw new Error('not an address');
    return resolved.address;
  } catch {
    throw cannotListen(server, UNRESOLVABLE);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The one line for a listener that could not start (Bun's own messages name neither the host
 * nor, for a bad host, the cause), or undefined for any other error.
 */
function listenFailure(
  error: unknown,
  server: { host: string; port: number },
): CliFailure | undefined {
  if (error instanceof CliFailure) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const reason = code === undefined ? undefined : LISTEN_FAILURES[code];
  if (reason === undefined) return undefined;
  return cannotListen(server, reason);
}

function cannotListen(server: { host: string; port: number }, reason: string): CliFailure {
  return new CliFailure(
    `cannot listen on ${server.host}:${server.port} (server.host, server.port): ${reason}`,
  );
}
