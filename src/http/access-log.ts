/** The access log: one line per request, never headers or bodies. */
import { LogLevels } from 'consola/core';
import type { Logger } from '../log/logger.ts';
import type { RequestMeta } from './request-meta.ts';

/**
 * Writes the one access-log line of a request: method, path without the query (query values
 * can carry names a caller considers sensitive), status, duration and request id. Never
 * headers or bodies.
 */
export function logAccess(
  logger: Logger,
  request: Request,
  status: number,
  meta: RequestMeta,
): void {
  // Checked here: consola would build and then drop the line, on every request.
  if (logger.level < LogLevels.info) return;
  const url = request.url;
  const start = url.indexOf('/', url.indexOf('//') + 2);
  const end = url.indexOf('?', start);
  const path = start === -1 ? '/' : url.slice(start, end === -1 ? undefined : end);
  logger.info('request', {
    method: request.method,
    path,
    status,
    duration_ms: Math.round((performance.now() - meta.startedAt) * 100) / 100,
    request_id: meta.requestId,
  });
}
