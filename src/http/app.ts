import { Elysia, type AnyElysia } from 'elysia';
import type { Config } from '../config/schema.ts';
import { AppError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { logAccess } from './access-log.ts';
import { checkDeclaredLength, readJsonBody } from './body.ts';
import { errorBody, toPublicError } from './error-funnel.ts';
import { healthRoutes } from './health.ts';
import { chooseRequestId, requestMeta, setRequestMeta } from './request-meta.ts';
import { RouteTable } from './route-table.ts';

export type AppOptions = {
  config: Config;
  logger: Logger;
  version: string;
  isHealthy: () => Promise<boolean>;
  /** Resolves the client address of a request (socket address, or X-Forwarded-For when trusted). */
  clientIp?: (request: Request, socketIp: string | undefined) => string;
  /** Plugins mounted at the root (e.g. the docs). */
  plugins?: AnyElysia[];
  /** Feature modules; each declares its own `/v1/...` paths. */
  features?: AnyElysia[];
};

/**
 * Builds the HTTP application: request ids, body limits, the one error funnel, the access log,
 * health, and the feature modules. Every error leaves through {@link toPublicError}.
 */
export function createApp(options: AppOptions) {
  const { config, logger } = options;
  const maxBody = config.server.max_body_bytes;
  const routes = new RouteTable(() => app.routes);

  const app = new Elysia({ name: 'secryn' })
    .onRequest(({ request, set, server }) => {
      const socketIp = server?.requestIP(request)?.address;
      const meta = setRequestMeta(request, {
        requestId: chooseRequestId(request.headers.get('x-request-id')),
        startedAt: performance.now(),
        clientIp: options.clientIp ? options.clientIp(request, socketIp) : (socketIp ?? 'unknown'),
      });
      set.headers['x-request-id'] = meta.requestId;
      set.headers['cache-control'] = 'no-store';
      set.headers['x-content-type-options'] = 'nosniff';
      checkDeclaredLength(request, maxBody);
    })
    .onParse(({ request }) => readJsonBody(request, maxBody))
    .onError(({ code, error, set, request }) => {
      const meta = requestMeta(request);
      set.headers['x-request-id'] = meta.requestId;
      set.headers['cache-control'] = 'no-store';
      if (code === 'NOT_FOUND' && !(error instanceof AppError)) {
        const allowed = routes.allowedMethods(new URL(request.url).pathname);
        if (allowed.length > 0 && !allowed.includes(request.method.toUpperCase())) {
          set.status = 405;
          set.headers['allow'] = allowed.join(', ');
          return errorBody('METHOD_NOT_ALLOWED', 'Method not allowed', {
            reason: `Allowed: ${allowed.join(', ')}`,
          });
        }
      }
      const result = toPublicError(code, error);
      if (result.fault !== undefined) {
        logger.error(
          'unhandled error',
          { request_id: meta.requestId, method: request.method },
          result.fault,
        );
      }
      set.status = result.status;
      Object.assign(set.headers, result.headers ?? {});
      return result.body;
    })
    .onAfterResponse(({ request, set }) => {
      logAccess(
        logger,
        request,
        typeof set.status === 'number' ? set.status : 200,
        requestMeta(request),
      );
    })
    .use(healthRoutes({ version: options.version, isHealthy: options.isHealthy }));

  for (const plugin of options.plugins ?? []) app.use(plugin);
  for (const feature of options.features ?? []) app.use(feature);
  return app;
}

/** The application type, for tests and plugins. */
export type App = ReturnType<typeof createApp>;
