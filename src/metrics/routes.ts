/**
 * Where Prometheus scrapes: `GET /metrics` on the API listener (guarded by the access layer:
 * admins and keys scoped to `metrics:read`, src/access/permissions.ts), and the optional
 * second listener of `[metrics] listen`, which serves `/metrics` alone without authentication.
 */
import type { Server } from 'bun';
import { Elysia } from 'elysia';
import { parseListenAddress } from '../config/load.ts';
import { NotFoundError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from './metrics.ts';

/** `GET /metrics` for the API app; 404 while `metrics.enabled` is false. */
export function metricsRoutes(metrics: Metrics) {
  return new Elysia({ name: 'metrics' }).get(
    '/metrics',
    async ({ set }) => {
      if (!metrics.enabled) throw new NotFoundError('Route');
      const text = await metrics.render();
      set.headers['content-type'] = metrics.contentType;
      return text;
    },
    {
      detail: {
        summary: 'Prometheus metrics',
        description:
          'The metrics in the Prometheus text format (admins, or keys scoped to `metrics:read`). ' +
          'Route labels are templates; no label carries an id, a name or a secret.',
        tags: ['system'],
        responses: {
          200: {
            description: 'The Prometheus text exposition format, version 0.0.4',
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
        },
      },
    },
  );
}

/**
 * The unauthenticated listener of `metrics.listen`, started, moved or stopped to match the
 * configuration (at start, and again on SIGHUP).
 */
export class MetricsListener {
  #server: Server<undefined> | undefined;
  /** The `metrics.listen` value it runs for ("" when stopped). */
  #configured = '';

  constructor(
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  /** The URL it serves on, when it runs. */
  get url(): string | undefined {
    if (!this.#server) return undefined;
    const host = this.#server.hostname ?? '127.0.0.1';
    return `http://${host.includes(':') ? `[${host}]` : host}:${this.#server.port}/metrics`;
  }

  /**
   * Runs the listener on `listen` (`host:port`; "" or `enabled: false` stops it). A listener
   * that cannot bind throws, leaving the previous one (if any) running.
   */
  apply(settings: { enabled: boolean; listen: string }): void {
    const wanted = settings.enabled ? settings.listen : '';
    if (wanted === this.#configured) return;
    if (wanted === '') {
      this.stop();
      return;
    }
    const parsed = parseListenAddress(wanted);
    if (!parsed) throw new Error(`metrics.listen: not host:port: ${wanted}`);
    let server: Server<undefined>;
    try {
      server = Bun.serve({
        hostname: parsed.host,
        port: parsed.port,
        development: false,
        fetch: (request) => this.#answer(request),
      });
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? 'error';
      throw new Error(`cannot listen on ${wanted} (metrics.listen): ${reason}`, { cause: error });
    }
    this.stop();
    this.#server = server;
    this.#configured = wanted;
    this.logger.info('metrics listening', { url: this.url });
  }

  stop(): void {
    void this.#server?.stop(true);
    this.#server = undefined;
    this.#configured = '';
  }

  async #answer(request: Request): Promise<Response> {
    const { pathname } = new URL(request.url);
    if (pathname !== '/metrics') return new Response('not found\n', { status: 404 });
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return new Response('method not allowed\n', { status: 405, headers: { allow: 'GET, HEAD' } });
    }
    const body = await this.metrics.render();
    return new Response(request.method === 'HEAD' ? null : body, {
      headers: { 'content-type': this.metrics.contentType, 'cache-control': 'no-store' },
    });
  }
}
