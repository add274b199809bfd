/** The console's one way to call the API: same-origin, cookie session, CSRF header on writes. */

/** The signed-in key as `GET /v1/me` (and the session routes) describe it. */
export type Me = {
  id: string;
  name: string;
  role: string;
  project_ids: string[];
  vault_ids: string[];
  scopes: string[] | null;
  expires_at: string | null;
  permissions: string[];
};

export type Session = { id: string; csrf_token: string; expires_at: string; key: Me };

/** An API answer that was not 2xx, with the server's error body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The request field the server named, if any. */
    readonly field?: string,
  ) {
    super(message);
  }
}

export type List<T> = { data: T[]; pagination: { total: number; page: number; limit: number } };

let csrfToken = '';
let onSignedOut: () => void = () => {};

/** Remembers the CSRF token of the session (in memory only) and whom to tell when it ends. */
export function bindSession(token: string, signedOut: () => void): void {
  csrfToken = token;
  onSignedOut = signedOut;
}

/** Calls the API; throws {@link ApiError}. A 401 means the session ended: the app signs out. */
export async function api<T>(
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
  if (method !== 'GET') headers['x-csrf-token'] = csrfToken;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    cache: 'no-store',
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  const body = text ? (JSON.parse(text) as unknown) : undefined;
  if (!response.ok) {
    const error = (
      body as {
        error?: { code?: string; message?: string; details?: { reason?: string; field?: string } };
      }
    )?.error;
    if (response.status === 401 && !headers.authorization) onSignedOut();
    throw new ApiError(
      response.status,
      error?.code ?? 'ERROR',
      error?.details?.reason ?? error?.message ?? `HTTP ${response.status}`,
      error?.details?.field,
    );
  }
  return body as T;
}

/** The message to show for a failed call. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
