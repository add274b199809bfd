import { defineCommand } from 'citty';
import { buildFeatures } from '../features.ts';
import { claimServeMarker } from '../backup/serve-marker.ts';
import { openInstance } from '../instance.ts';
import { startServer } from '../server.ts';
import { VERSION } from '../version.ts';
import { cliLogger, commonArgs, loadCliConfig } from './common.ts';
import { CliFailure } from './exit.ts';

/**
 * `secryn serve`: runs the API (and the background workers) until SIGTERM or SIGINT, then
 * stops accepting connections, lets in-flight requests finish, flushes writes, closes the
 * database and exits 0.
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
      releaseMarker = claimServeMarker(config.storage.path);
    } catch (error) {
      await instance.close();
      throw new CliFailure(error instanceof Error ? error.message : String(error));
    }
    const { features, start, stop, recordOutcome } = buildFeatures(instance);
    const running = startServer(instance, { features, recordOutcome, afterDrain: stop });
    await start();
    logger.info('secryn listening', {
      url: running.url.href.replace(/\/$/, ''),
      version: VERSION,
      config: source.kind === 'file' ? source.path : 'built-in defaults',
      database: config.storage.path,
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
    releaseMarker();
    logger.info('stopped');
  },
});
