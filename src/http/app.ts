/** Builds the HTTP application shell around the feature modules. */
import { LogLevels } from 'consola/core';
import { Elysia, type AnyElysia } from 'elysia';
import type { Config } from '../config/schema.ts';
import { AppError, DatabaseBusyError, ServiceUnavailableError } from '../errors.ts';
import { DiskFullError } from '../db/disk-full.ts';
import type { Logger } from '../log/logger.ts';
import { logAccess } from './access-log.ts';
import { checkDeclaredLength, readJsonBody } from './body.ts';
import { errorBody, toPublicError, type PublicError } from './error-funnel.ts';
import { healthRoutes } from './health.ts';
import { chooseRequestId, requestMeta, setRequestMeta } from './request-meta.ts';
import { RouteTable } from './route-table.ts';

export type AppOptions = {
  config: Config;
  logger: Logger;
  version: string;
  /** See {@link import('./health.ts').HealthOptions.failingChecks}. */
  failingChecks: () => Promise<string[]>;
  /** Resolves the client address of a request (socket address, or X-Forwarded-For when trusted). */
  clientIp?: (request: Request, socketIp: string | undefined) => string;
  /**
   * Called with the final status of every request before its response is sent (success or
   * error). The audit log hooks in here; if it throws, the response becomes a 503 instead, so
   * that no request is answered without its audit entry (fail closed).
   */
  recordOutcome?: (request: Request, status: number) => Promise<void>;
  /**
   * Told about every answered request, after its response was sent: the matched route template
   * (undefined when no route matched) and the status. The metrics count requests here.
   */
  observeResponse?: (request: Request, route: string | undefined, status: number) => void;
  /** See {@link import('./health.ts').HealthOptions.notReady}. */
  notReady?: () => Promise<string[]>;
  /** Plugins mounted at the root after the features (e.g. the docs, which list every route). */
  plugins?: (AnyElysia | ((app: AnyElysia) => AnyElysia))[];
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
  const routeTable = new RouteTable(() => app.routes);
  const methodNotAllowed = methodNotAllowedFor(routeTable);

  const app = new Elysia({
    name: 'secryn',
    // Bun calls this when a response fails after the app returned it, e.g. a file body that
    // cannot be opened (docs assets removed under a server run from source). Without it Bun
    // answers a bare 500 and nothing is logged; the access line, written earlier, says 200.
    serve: {
      error: (error: Error) => {
        logger.error('response failed after its handler returned', { status: 500 }, error);
        return Response.json(errorBody('INTERNAL_ERROR', 'Internal server error'), {
          status: 500,
          headers: { 'cache-control': 'no-store' },
        });
      },
    },
  })
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
    .onAfterHandle(async ({ request, set, response }) => {
      if (!options.recordOutcome) return;
      try {
        await options.recordOutcome(request, statusOfResponse(response, set.status));
      } catch (recordError) {
        logUnrecorded(logger, requestMeta(request).requestId, recordError);
        throw new OutcomeNotRecorded();
      }
    })
    .onError(async ({ code, error, set, request }) => {
      const meta = requestMeta(request);
      if (error instanceof DatabaseBusyError) meta.lockWaitSpent = true;
      set.headers['x-request-id'] = meta.requestId;
      set.headers['cache-control'] = 'no-store';
      let result = methodNotAllowed(code, error, request) ?? toPublicError(code, error);
      if (result.fault !== undefined) {
        logger.error(
          'unhandled error',
          { request_id: meta.requestId, method: request.method },
          result.fault,
        );
      }
      if (options.recordOutcome && !(error instanceof OutcomeNotRecorded)) {
        try {
          await options.recordOutcome(request, result.status);
        } catch (recordError) {
          logUnrecorded(logger, meta.requestId, recordError);
          result = toPublicError('UNKNOWN', new ServiceUnavailableError());
        }
      }
      set.status = result.status;
      Object.assign(set.headers, result.headers ?? {});
      return result.body;
    });
  // One after-response hook (Elysia runs each on its own setImmediate, per request): the access
  // line (logAccess checks the level, which SIGHUP can change) and the metrics. The status sent
  // is the returned Response's own when there is one (`new Response(body, { status })` leaves
  // set.status at 200), else set.status (the error funnel sets it).
  const observe = options.observeResponse;
  if (observe || logger.level >= LogLevels.info) {
    app.onAfterResponse(({ request, set, responseValue, route }) => {
      const status = statusOfResponse(responseValue, set.status);
      logAccess(logger, request, status, requestMeta(request));
      // Requests answered before routing (401, 429, 413) have no route yet: find its template.
      observe?.(request, route || routeTable.templateOf(request.url), status);
    });
  }
  app.use(
    healthRoutes({
      version: options.version,
      failingChecks: options.failingChecks,
      notReady: options.notReady,
    }),
  );

  for (const feature of options.features ?? []) app.use(feature);
  // After the features: the docs plugin documents the routes registered before it.
  for (const plugin of options.plugins ?? []) app.use(plugin);
  return app;
}

/**
 * Thrown from the success path when the outcome could not be recorded: the error funnel then
 * answers 503 without trying to record a second time.
 */
class OutcomeNotRecorded extends ServiceUnavailableError {}

/** A known path called with a method it does not accept: 405 with `Allow`, not 404. */
function methodNotAllowedFor(routes: RouteTable) {
  return (code: string | number, error: unknown, request: Request): PublicError | undefined => {
    if (code !== 'NOT_FOUND' || error instanceof AppError) return undefined;
    const allowed = routes.allowedMethods(new URL(request.url).pathname);
    if (allowed.length === 0 || allowed.includes(request.method.toUpperCase())) return undefined;
    return {
      status: 405,
      headers: { allow: allowed.join(', ') },
      body: errorBody('METHOD_NOT_ALLOWED', 'Method not allowed', {
        reason: `Allowed: ${allowed.join(', ')}`,
      }),
    };
  };
}

function statusOfResponse(response: unknown, status: number | string | undefined): number {
  if (response instanceof Response) return response.status;
  if (
    response &&
    typeof response === 'object' &&
    'code' in response &&
    typeof response.code === 'number'
  ) {
    return response.code; // Elysia's status(code, body)
  }
  return typeof status === 'number' ? status : 200;
}

/**
 * Logs a request answered 503 because its outcome could not be recorded; not when the disk is
 * full, which src/db/disk-full.ts logs once for all of them (a flood would repeat it per request).
 */
function logUnrecorded(logger: Logger, requestId: string, error: unknown): void {
  if (error instanceof DiskFullError) return;
  logger.error('could not record the request outcome', { request_id: requestId }, asError(error));
}

function asError(value: unknown): Error | undefined {
  return value instanceof Error ? value : undefined;
}

/** The application type, for tests and plugins. */
export type App = ReturnType<typeof createApp>;
