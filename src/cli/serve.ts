import { defineCommand } from 'citty';
import { buildFeatures } from '../features.ts';
import { claimServeMarker } from '../backup/serve-marker.ts';
import { isDatabaseBusy } from '../db/write-lock.ts';
import type { LoadedConfig } from '../config/load.ts';
import { openInstance, type Instance } from '../instance.ts';
import type { Logger } from '../log/logger.ts';
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
    running = startServer(instance, { features, recordOutcome, afterDrain: stop });
  } catch (error) {
    // Nothing runs yet but the database.
    await instance.close();
    throw listenFailure(error, instance.config.server) ?? error;
  }
  try {
    await start();
  } catch (error) {
    await running.stop();
    throw error;
  }
  logger.info('secryn listening', {
    url: running.url.href.replace(/\/$/, ''),
    version: VERSION,
    config: source.kind === 'file' ? source.path : 'built-in defaults',
    database: instance.config.storage.path,
  });
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      logger.info('shutting down', { signal });
      resolve();
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
  await running.stop();
  logger.info('stopped');
}

/** Why binding fails, in the words an operator acts on, by the listen error's code. */
const LISTEN_FAILURES: Record<string, string> = {
  EADDRINUSE: 'the port is in use by another process',
  EADDRNOTAVAIL: "the address is not one of this machine's",
  EINVAL: 'the host is not an address or a name that resolves',
  EACCES: 'permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)',
};

/**
 * The one line for a listener that could not start (Bun's own messages name neither the host
 * nor, for a bad host, the cause), or undefined for any other error.
 */
function listenFailure(
  error: unknown,
  server: { host: string; port: number },
): CliFailure | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const reason = code === undefined ? undefined : LISTEN_FAILURES[code];
  if (reason === undefined) return undefined;
  return new CliFailure(
    `cannot listen on ${server.host}:${server.port} (server.host, server.port): ${reason}`,
  );
}
