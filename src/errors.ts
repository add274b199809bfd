/**
 * Typed domain errors. Services throw these; the HTTP error funnel (`src/http/error-funnel.ts`)
 * is the one place that turns them into the public error body and a status code, and the CLI
 * turns them into one line and an exit code. Messages must be safe to show: never a secret
 * value, a token, or the submitted input.
 */
export type ErrorCode =
  | 'INVALID_REQUEST'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'CONFLICT'
  | 'GONE'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'RATE_LIMITED'
  | 'INTERNAL_ERROR'
  | 'SERVICE_UNAVAILABLE';

export type ErrorDetails = { field?: string; reason?: string; [key: string]: unknown };

/** Base class of every error whose message may be shown to an API client. */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetails,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad input. `field` is the dotted path of the first offending field. */
export class InvalidRequestError extends AppError {
  constructor(field: string | undefined, reason: string, message = 'Invalid request parameters') {
    super('INVALID_REQUEST', message, field === undefined ? { reason } : { field, reason });
  }
}

/** No usable credentials. `reason` is deliberately the same for every kind of bad key. */
export class UnauthorizedError extends AppError {
  constructor(reason = 'A valid API key is required') {
    super('UNAUTHORIZED', 'Authentication required', { reason });
  }
}

/** Valid credentials without the permission. */
export class ForbiddenError extends AppError {
  constructor(reason = 'This API key lacks the permission for this action') {
    super('FORBIDDEN', 'Forbidden', { reason });
  }
}

/** Absent, or outside what the caller may see (existence is not revealed). */
export class NotFoundError extends AppError {
  constructor(what = 'Resource') {
    super('NOT_FOUND', `${what} not found`);
  }
}

/** Uniqueness, state or concurrency conflict. */
export class ConflictError extends AppError {
  constructor(reason: string, field?: string, message = 'Conflict') {
    super('CONFLICT', message, field === undefined ? { reason } : { field, reason });
  }
}

/** The resource exists but has expired. */
export class GoneError extends AppError {
  constructor(reason = 'The resource has expired') {
    super('GONE', 'Gone', { reason });
  }
}

/** A body or value larger than allowed. */
export class PayloadTooLargeError extends AppError {
  constructor(limitBytes: number, field?: string) {
    super('PAYLOAD_TOO_LARGE', 'Payload too large', {
      ...(field ? { field } : {}),
      reason: `Must be at most ${limitBytes} bytes`,
      limit_bytes: limitBytes,
    });
  }
}

/** The database (or the keyring) cannot serve writes right now; nothing was changed. */
export class ServiceUnavailableError extends AppError {
  constructor(reason = 'The service cannot complete this request right now') {
    super('SERVICE_UNAVAILABLE', 'Service unavailable', { reason });
  }
}

/**
 * A write waited for the database's write lock (held by another process) for the whole of
 * `storage.busy_timeout_ms`. The request's audit entry then does not wait a second budget.
 */
export class DatabaseBusyError extends ServiceUnavailableError {
  constructor() {
    super('The database cannot accept writes right now');
  }
}
