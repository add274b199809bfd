/** The one place that turns any error into the public error body and status. */
import { stripVTControlCharacters } from 'node:util';
import { AppError, type ErrorCode, type ErrorDetails } from '../errors.ts';

/** The public error body of docs/api.md §1. */
export type ErrorBody = { error: { code: ErrorCode; message: string; details?: ErrorDetails } };

const STATUS_BY_CODE: Record<ErrorCode, number> = {
  INVALID_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  GONE: 410,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  INTERNAL_ERROR: 500,
  SERVICE_UNAVAILABLE: 503,
};

/** A translated error: what to send, and whether the original must be logged as a fault. */
export type PublicError = {
  status: number;
  body: ErrorBody;
  headers?: Record<string, string>;
  fault?: unknown;
};

/** Every public error code, in status order (the OpenAPI document's `Error.code` enum). */
export const ERROR_CODES = Object.keys(STATUS_BY_CODE) as ErrorCode[];

/** Status code of an error code. */
export function statusOf(code: ErrorCode): number {
  return STATUS_BY_CODE[code];
}

/**
 * Error body for a code. `details.field` is the one place a name chosen by the client (an
 * unknown body field, a query parameter, a header) is echoed, so it is made safe here for every
 * path: see {@link echoedName}.
 */
export function errorBody(code: ErrorCode, message: string, details?: ErrorDetails): ErrorBody {
  if (!details) return { error: { code, message } };
  const safe =
    typeof details.field === 'string' ? { ...details, field: echoedName(details.field) } : details;
  return { error: { code, message, details: safe } };
}

/** How many characters of a client-chosen name an error echoes. */
export const ECHOED_NAME_MAX = 64;

// C0, DEL and C1 (U+009B is a terminal's escape-sequence introducer), and unpaired surrogates.
const UNSAFE_CHARS =
  /[\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * A client-chosen name as an error may echo it: terminal escape sequences and control
 * characters removed, at most {@link ECHOED_NAME_MAX} characters (then `…`). Error bodies end up
 * in terminals and logs, and an unbounded echo lets a client make the server copy whatever it
 * sent (a 200,000-character field name came back whole).
 */
export function echoedName(name: string): string {
  // Cut first so that the cleaning below never walks a huge input; the margin keeps the
  // visible characters that an escape sequence near the start would otherwise push out.
  const cut = name.length > ECHOED_NAME_MAX * 4;
  const clean = stripVTControlCharacters(name.slice(0, ECHOED_NAME_MAX * 4)).replace(
    UNSAFE_CHARS,
    '',
  );
  const chars = Array.from(clean);
  if (!cut && chars.length <= ECHOED_NAME_MAX) return clean;
  return `${chars.slice(0, ECHOED_NAME_MAX - 1).join('')}…`;
}

type ValidationIssue = { path?: string; message?: string; value?: unknown; schema?: unknown };
type ElysiaValidationLike = { type?: string; all?: ValidationIssue[] };

/**
 * The one place where anything thrown while serving a request becomes the public error shape.
 * Known errors keep their safe message; Elysia's validation errors are rewritten to name only
 * the field and the rule (Elysia's own body echoes the submitted value); anything else becomes
 * a generic 500 and is returned as `fault` for the caller to log with the request id.
 */
export function toPublicError(elysiaCode: string | number, error: unknown): PublicError {
  // Elysia wraps whatever a body parser throws in its ParseError; ours throws AppErrors.
  if (elysiaCode === 'PARSE' && error instanceof Error && error.cause instanceof AppError) {
    error = error.cause;
  }
  if (error instanceof AppError) {
    return {
      status: statusOf(error.code),
      body: errorBody(error.code, error.message, error.details),
    };
  }
  switch (elysiaCode) {
    case 'VALIDATION':
      return validationError(error as ElysiaValidationLike);
    case 'PARSE':
      return {
        status: 400,
        body: errorBody('INVALID_REQUEST', 'Malformed request body', {
          reason: 'The body is not valid JSON',
        }),
      };
    case 'NOT_FOUND':
      return { status: 404, body: errorBody('NOT_FOUND', 'Route not found') };
    case 'INVALID_COOKIE_SIGNATURE':
    case 'INVALID_FILE_TYPE':
      return { status: 400, body: errorBody('INVALID_REQUEST', 'Invalid request parameters') };
  }
  return {
    status: 500,
    body: errorBody('INTERNAL_ERROR', 'Internal server error'),
    fault: error,
  };
}

function validationError(error: ElysiaValidationLike): PublicError {
  const first = error.all?.[0];
  const path = (first?.path ?? '').replace(/^\//, '').split('/').filter(Boolean).join('.');
  const field = path || (error.type ?? 'body');
  return {
    status: 400,
    body: errorBody('INVALID_REQUEST', 'Invalid request parameters', {
      field,
      reason: describeIssue(first),
      ...(error.type && error.type !== 'body' ? { location: error.type } : {}),
    }),
  };
}

function describeIssue(issue: ValidationIssue | undefined): string {
  if (!issue) return 'Invalid value';
  const schema = (issue.schema ?? {}) as { error?: unknown };
  // A schema may carry its own safe explanation (`error: '...'`); it never contains the input.
  if (typeof schema.error === 'string') return schema.error;
  const message = issue.message ?? 'Invalid value';
  if (issue.value === undefined || /^Expected required property/.test(message))
    return 'Missing required field';
  if (/^Unexpected property/.test(message)) return 'Unknown field';
  return message;
}
