/**
 * The HTTP side of the `secryn` client: one `SecrynClient` per command, holding the server URL,
 * the token and the trust settings. Requests time out, 429/503 are retried a bounded number of
 * times (honouring `Retry-After`, else exponential backoff with jitter; POSTs carry an
 * Idempotency-Key so a retry can never apply twice), and every failure becomes one `ClientError`
 * whose exit code says what went wrong (README: exit codes). TLS uses the system trust store,
 * plus an extra CA when given; there is deliberately no way to turn verification off.
 */
import { hkdfSync, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CliFailure, ExitCode } from '../cli/exit.ts';
import { VERSION } from '../version.ts';

/** A failed client request: the line to print, the exit code, and the API's error code if any. */
export class ClientError extends CliFailure {
  constructor(
    message: string,
    exitCode: number,
    code?: string,
    /** The HTTP status, when the server answered. */
    readonly status?: number,
    /** A 429/503's `Retry-After`, in ms, where the caller retries itself (the event stream). */
    public retryAfterMs?: number,
  ) {
    super(message, exitCode, code);
    this.name = 'ClientError';
  }
}

/** How a client connects. */
export type ClientOptions = {
  url: string;
  token: string;
  /** PEM of an additional CA to trust (an internal CA), besides the system store. */
  ca?: string;
  /** Per-attempt timeout; default 30 s. */
  timeoutMs?: number;
  /** Retries of a 429/503 answer; default 4. */
  maxRetries?: number;
  /** Longest wait before a retry, whatever `Retry-After` says; default 10 s. */
  maxRetryDelayMs?: number;
  /** For tests: how to wait. */
  sleep?: (ms: number) => Promise<void>;
};

const STATUS_EXIT: Record<number, number> = {
  400: ExitCode.REJECTED,
  401: ExitCode.UNAUTHORIZED,
  403: ExitCode.FORBIDDEN,
  404: ExitCode.NOT_FOUND,
  409: ExitCode.CONFLICT,
  410: ExitCode.NOT_FOUND,
  413: ExitCode.REJECTED,
  415: ExitCode.REJECTED,
  429: ExitCode.SERVER_UNAVAILABLE,
};

/** Bun's error codes for a certificate the client does not trust (or a name it does not cover). */
const TLS_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ALTNAME|TLS|SSL/i;

/** Reads a CA bundle named by --ca-file / SECRYN_CACERT. */
export function readCaFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new ClientError(
      `cannot read the CA file ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      ExitCode.TLS_UNTRUSTED,
    );
  }
}

export class SecrynClient {
  readonly baseUrl: string;
  private readonly options: ClientOptions;

  constructor(options: ClientOptions) {
    this.options = options;
    this.baseUrl = normalizeUrl(options.url);
  }

  /**
   * A 32-byte key derived from the token (HKDF-SHA256): for what the client seals on disk (the
   * `run --fallback` copy), so that only a holder of the token can open it.
   */
  deriveKey(salt: Uint8Array, info: string): Buffer {
    return Buffer.from(hkdfSync('sha256', this.options.token, salt, info, 32));
  }

  /** Sends one request and returns the parsed JSON body (undefined for an empty one). */
  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.send(method, path, body);
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** GET that follows `page` until every item of a `{data, pagination}` list is read. */
  async listAll<T>(path: string): Promise<T[]> {
    const items: T[] = [];
    const separator = path.includes('?') ? '&' : '?';
    for (let page = 1; ; page++) {
      const answer = await this.request<{ data: T[]; pagination: { total: number } }>(
        'GET',
        `${path}${separator}limit=100&page=${page}`,
      );
      items.push(...answer.data);
      if (answer.data.length === 0 || items.length >= answer.pagination.total) return items;
    }
  }

  /**
   * Opens a long-lived GET (the event stream): the per-attempt timeout covers only the wait for
   * the answer's headers, never the body; `signal` ends it. A non-2xx answer is a ClientError.
   */
  async openStream(
    path: string,
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<Response> {
    const timeoutMs = this.options.timeoutMs ?? 30_000;
    const abort = new AbortController();
    const onAbort = () => abort.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(
      () => abort.abort(new DOMException('timeout', 'TimeoutError')),
      timeoutMs,
    );
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        headers: {
          authorization: `Bearer ${this.options.token}`,
          accept: 'text/event-stream',
          'user-agent': `secryn-cli/${VERSION}`,
          ...headers,
        },
        redirect: 'error',
        signal: abort.signal,
        ...(this.options.ca ? { tls: { ca: this.options.ca } } : {}),
      });
    } catch (error) {
      signal.removeEventListener('abort', onAbort);
      throw networkError(error, this.baseUrl, timeoutMs);
    } finally {
      clearTimeout(timer);
    }
    if (!response.ok) {
      signal.removeEventListener('abort', onAbort);
      const error = await errorOf(response);
      if (response.status === 429 || response.status === 503) {
        error.retryAfterMs = retryAfterMs(response);
      }
      throw error;
    }
    return response;
  }

  private async send(method: string, path: string, body?: unknown): Promise<Response> {
    const { maxRetries = 4, maxRetryDelayMs = 10_000 } = this.options;
    const sleep = this.options.sleep ?? Bun.sleep;
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.options.token}`,
      accept: 'application/json',
      'user-agent': `secryn-cli/${VERSION}`,
    };
    if (body !== undefined) headers['content-type'] = 'application/json';
    // The same key on every retry: the server answers a repeat with the first response.
    if (method === 'POST') headers['idempotency-key'] = randomUUID();
    const payload = body === undefined ? undefined : JSON.stringify(body);
    for (let attempt = 0; ; attempt++) {
      const response = await this.fetchOnce(method, path, headers, payload);
      if ((response.status === 429 || response.status === 503) && attempt < maxRetries) {
        await response.body?.cancel();
        const backoff = Math.min(maxRetryDelayMs, 250 * 2 ** attempt) * (0.5 + Math.random() / 2);
        await sleep(Math.min(maxRetryDelayMs, retryAfterMs(response) ?? backoff));
        continue;
      }
      if (!response.ok) throw await errorOf(response);
      return response;
    }
  }

  private async fetchOnce(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: string | undefined,
  ): Promise<Response> {
    const timeoutMs = this.options.timeoutMs ?? 30_000;
    try {
      return await fetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        body,
        redirect: 'error', // never resend the bearer token to wherever a redirect points
        signal: AbortSignal.timeout(timeoutMs),
        ...(this.options.ca ? { tls: { ca: this.options.ca } } : {}),
      });
    } catch (error) {
      throw networkError(error, this.baseUrl, timeoutMs);
    }
  }
}

/** `https://host:8443/` or `…/v1` → `https://host:8443` (paths are given with `/v1`). */
export function normalizeUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ClientError(`not a server URL: ${JSON.stringify(url.slice(0, 200))}`, ExitCode.USAGE);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new ClientError(
      `the server URL must be http(s)://…, not ${parsed.protocol}`,
      ExitCode.USAGE,
    );
  }
  if (parsed.username || parsed.password) {
    throw new ClientError('the server URL must not carry credentials', ExitCode.USAGE);
  }
  const path = parsed.pathname.replace(/\/+$/, '').replace(/\/v1$/, '');
  return `${parsed.origin}${path}`;
}

/** `Retry-After` in ms (delta-seconds or an HTTP date), or undefined. */
export function retryAfterMs(response: Response, now = Date.now()): number | undefined {
  const value = response.headers.get('retry-after');
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

async function errorOf(response: Response): Promise<ClientError> {
  let code: string | undefined;
  let message = `${response.status} ${response.statusText}`.trim();
  try {
    const body = (await response.json()) as {
      error?: { code?: string; message?: string; details?: { field?: string; reason?: string } };
    };
    if (body.error) {
      code = body.error.code;
      const { field, reason } = body.error.details ?? {};
      message = [body.error.message, field && `${field}`, reason].filter(Boolean).join(': ');
    }
  } catch {
    // not our error shape (a proxy's page): the status line says enough
  }
  const exitCode =
    STATUS_EXIT[response.status] ??
    (response.status >= 500 ? ExitCode.SERVER_UNAVAILABLE : ExitCode.FAILURE);
  return new ClientError(message.slice(0, 500), exitCode, code, response.status);
}

function networkError(error: unknown, baseUrl: string, timeoutMs: number): ClientError {
  const err = error as { name?: string; code?: string; message?: string };
  if (err.name === 'TimeoutError' || err.name === 'AbortError') {
    return new ClientError(
      `no answer from ${baseUrl} within ${timeoutMs / 1000} s`,
      ExitCode.UNREACHABLE,
      'UNREACHABLE',
    );
  }
  const detail = err.code ?? err.message ?? String(error);
  if (TLS_ERROR.test(detail)) {
    return new ClientError(
      `the TLS certificate of ${baseUrl} is not trusted (${detail}); give its CA with --ca-file or SECRYN_CACERT`,
      ExitCode.TLS_UNTRUSTED,
      'TLS_UNTRUSTED',
    );
  }
  return new ClientError(
    `cannot reach ${baseUrl} (${detail})`,
    ExitCode.UNREACHABLE,
    'UNREACHABLE',
  );
}
