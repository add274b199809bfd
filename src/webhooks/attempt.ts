/**
 * One webhook delivery attempt over HTTP(S), pinned to an address that
 * `resolveDeliveryTarget` (./outbound-guard.ts) has already checked.
 *
 * Pinning: the request URL carries the checked IP literal, so Bun never resolves the webhook's
 * host name again (no DNS-rebinding window). The name still reaches the receiver: in the `Host`
 * header and, for https, as `tls.serverName`, which Bun's fetch uses both for SNI and as the name
 * the certificate is verified against (verified with Bun 1.4.5: a certificate for another name is
 * refused with ERR_TLS_CERT_ALTNAME_INVALID, and the IP is not what is checked). Redirects are
 * never followed, so a receiver cannot bounce us to an unchecked address. Proxy environment
 * variables are ignored (`proxy: false`): a proxy would make the connection somewhere other than
 * the checked address.
 */
import net from 'node:net';

/** Outcome of one attempt; `error` is a short, safe string (no stack, no URL, no secrets). */
export type DeliveryAttemptResult = {
  /** True only for a 2xx answer. */
  ok: boolean;
  /** HTTP status, when the receiver answered. */
  status?: number;
  /** Wall time from just before connecting to the end of reading the response excerpt. */
  durationMs: number;
  error?: string;
  /** Up to `maxResponseBytes` of the response body, decoded as UTF-8, when non-empty. */
  responseExcerpt?: string;
};

/** Default cap on how much of a receiver's response body is read. */
export const DEFAULT_MAX_RESPONSE_BYTES = 65_536;

/** Sent on every delivery so receivers can recognise (and allow-list) us. */
export const WEBHOOK_USER_AGENT = 'Secryn-Webhooks/1';

/**
 * POSTs `body` to `url`, connecting to `target.address` (an IP literal from
 * `resolveDeliveryTarget`) rather than resolving `url`'s host. Sends `headers` (e.g. from
 * `signPayload`) plus `content-type: application/json`, `user-agent: Secryn-Webhooks/1`,
 * `accept-encoding: identity` and `Host` from `url`; those four cannot be overridden.
 *
 * Success is a 2xx status. A 3xx is a failure ("redirect not followed") and is not followed.
 * The whole attempt, response excerpt included, is bounded by `timeoutMs` via an AbortSignal;
 * when it fires before the status arrives the error is "timeout after N ms", and when it fires
 * while reading the excerpt the status still decides `ok` and the excerpt is what arrived.
 * At most `maxResponseBytes` (default 64 KiB) of the body are read; the rest is cancelled, never
 * buffered. Responses are not decompressed (a compressed bomb cannot expand in memory).
 * Never throws for network or receiver behaviour; throws only for invalid arguments.
 */
export async function attemptDelivery(opts: {
  url: URL;
  target: { address: string; family: 4 | 6 };
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
  maxResponseBytes?: number;
  fetchImpl?: typeof fetch;
}): Promise<DeliveryAttemptResult> {
  const { url, target, body, timeoutMs } = opts;
  const maxResponseBytes = opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const fetchImpl = opts.fetchImpl ?? fetch;
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
    throw new RangeError('timeoutMs must be a positive number');
  }
  if (!(Number.isSafeInteger(maxResponseBytes) && maxResponseBytes >= 0)) {
    throw new RangeError('maxResponseBytes must be a non-negative integer');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new RangeError('only http and https URLs can be delivered to');
  }
  // Without this check a host name slipped in as the target would be resolved again by fetch,
  // silently undoing the pinning.
  if (net.isIP(target.address) !== target.family) {
    throw new RangeError('target.address must be an IP literal of the given family');
  }

  const headers = new Headers(opts.headers);
  headers.set('content-type', 'application/json');
  headers.set('user-agent', WEBHOOK_USER_AGENT);
  headers.set('accept-encoding', 'identity');
  headers.set('host', url.host);

  const hostname = stripBrackets(url.hostname);
  // SNI must be a DNS name (RFC 6066), and certificates name hosts without the root dot.
  const serverName =
    url.protocol === 'https:' && net.isIP(hostname) === 0 ? hostname.replace(/\.$/, '') : undefined;

  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);

  try {
    let response: Response;
    try {
      response = await fetchImpl(pinnedRequestUrl(url, target), {
        method: 'POST',
        headers,
        body,
        redirect: 'manual',
        signal: controller.signal,
        proxy: false,
        keepalive: false,
        decompress: false,
        ...(serverName === undefined ? {} : { tls: { serverName } }),
      });
    } catch (error) {
      return {
        ok: false,
        durationMs: elapsed(),
        error: timedOut ? `timeout after ${timeoutMs} ms` : describeFetchError(error),
      };
    }

    const excerpt = await readExcerpt(response.body, maxResponseBytes);
    const status = response.status;
    const result: DeliveryAttemptResult = {
      ok: status >= 200 && status <= 299,
      status,
      durationMs: elapsed(),
    };
    if (excerpt !== '') result.responseExcerpt = excerpt;
    if (status >= 300 && status <= 399) result.error = `redirect not followed (HTTP ${status})`;
    else if (!result.ok) result.error = `receiver answered HTTP ${status}`;
    return result;
  } finally {
    clearTimeout(timer);
  }
}

/** The request URL with the checked IP literal in place of the host; path and query kept. */
function pinnedRequestUrl(url: URL, target: { address: string; family: 4 | 6 }): URL {
  const pinned = new URL(url.href);
  pinned.username = '';
  pinned.password = '';
  pinned.hash = '';
  pinned.hostname = target.family === 6 ? `[${target.address}]` : target.address;
  return pinned;
}

/**
 * Reads at most `limit` bytes and cancels the rest, so a receiver streaming an endless body costs
 * us one read buffer, not memory proportional to what it sends. An abort mid-read (timeout)
 * keeps what arrived.
 */
async function readExcerpt(
  stream: ReadableStream<Uint8Array> | null,
  limit: number,
): Promise<string> {
  if (stream === null) return '';
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  try {
    while (length < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      const kept = value.subarray(0, limit - length);
      chunks.push(kept);
      length += kept.length;
    }
  } catch {
    // Aborted or reset mid-body: the status already decided the outcome.
  } finally {
    reader.cancel().catch(() => {});
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return new TextDecoder().decode(bytes);
}

function describeFetchError(error: unknown): string {
  const code =
    typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
      ? error.code
      : '';
  if (code === 'ECONNREFUSED' || code === 'ConnectionRefused') return 'connection refused';
  if (code === 'ECONNRESET' || code === 'ConnectionClosed') return 'connection closed by receiver';
  if (/^[A-Za-z0-9_]{1,64}$/.test(code)) {
    return /TLS|SSL|CERT|VERIFY/i.test(code)
      ? `TLS handshake failed (${code})`
      : `request failed (${code})`;
  }
  return 'request failed';
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
