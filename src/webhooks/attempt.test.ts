import { afterEach, describe, expect, test } from 'bun:test';
import { Webhook } from 'standardwebhooks';
import { attemptDelivery, DEFAULT_MAX_RESPONSE_BYTES } from './attempt.ts';
import { generateWebhookSecret, signPayload } from './signing.ts';
import { makeTestPki } from '../../test/pki.ts';

// Test-only PKI for the https pinning tests, made at run time: a CA and a leaf for "hooks.test".
const pki = makeTestPki(['hooks.test']);
const TEST_CA_CERT = pki.caCert;
const HOOKS_TEST_CERT = pki.leafCert;
const HOOKS_TEST_KEY = pki.leafKey;

const LOOPBACK = { address: '127.0.0.1', family: 4 } as const;
const body = JSON.stringify({
  id: 'evt_01h455vb4pex5vsknk084sn02q',
  type: 'resource.updated',
  created_at: '2024-01-15T10:30:00Z',
  data: { object: { id: 'res_01h455vb4pex5vsknk084sn02r', name: 'clé-de-base ✓' } },
});

type Received = { method: string; url: string; headers: Headers; body: string };

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length > 0) cleanups.pop()!();
});

/** A real receiver on 127.0.0.1 that records what it got. */
function receiver(
  handler: (req: Request, received: Received[]) => Response | Promise<Response> = () =>
    new Response('thanks'),
  tls?: { cert: string; key: string },
) {
  const received: Received[] = [];
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    ...(tls ? { tls } : {}),
    async fetch(req) {
      const record = {
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: await req.text(),
      };
      received.push(record);
      return handler(req, received);
    },
  });
  cleanups.push(() => server.stop(true));
  return { port: server.port, received };
}

function signedHeaders(secrets = [generateWebhookSecret()]) {
  return signPayload({
    secrets,
    msgId: 'evt_01h455vb4pex5vsknk084sn02q',
    timestampSeconds: Math.floor(Date.now() / 1000),
    body,
  });
}

/** fetch that also trusts the test CA (what NODE_EXTRA_CA_CERTS does for an operator). */
const fetchTrustingTestCa: typeof fetch = Object.assign(
  (input: string | URL | Request, init?: BunFetchRequestInit) =>
    fetch(input, { ...init, tls: { ...init?.tls, ca: TEST_CA_CERT } }),
  { preconnect: fetch.preconnect },
);

describe('attemptDelivery over http', () => {
  test('2xx is success; the request is a signed JSON POST with the exact body', async () => {
    const { port, received } = receiver();
    const headers = signedHeaders();
    const result = await attemptDelivery({
      url: new URL(`http://127.0.0.1:${port}/hooks/secryn?tenant=7#ignored`),
      target: LOOPBACK,
      headers,
      body,
      timeoutMs: 2_000,
    });
    expect(result).toMatchObject({ ok: true, status: 200, responseExcerpt: 'thanks' });
    expect(result.error).toBeUndefined();
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
    expect(received).toHaveLength(1);
    const request = received[0]!;
    expect(request.method).toBe('POST');
    expect(new URL(request.url).pathname + new URL(request.url).search).toBe(
      '/hooks/secryn?tenant=7',
    );
    expect(request.body).toBe(body);
    expect(request.headers.get('content-type')).toBe('application/json');
    expect(request.headers.get('user-agent')).toBe('Secryn-Webhooks/1');
    for (const [name, value] of Object.entries(headers))
      expect(request.headers.get(name)).toBe(value);
  });

  test("connects to the pinned address, not to the URL's host, and sends the name as Host", async () => {
    const { port, received } = receiver();
    // "hooks.test" does not resolve anywhere: only the pinned target can make this succeed.
    const result = await attemptDelivery({
      url: new URL(`http://hooks.test:${port}/in`),
      target: LOOPBACK,
      headers: {},
      body,
      timeoutMs: 2_000,
    });
    expect(result).toMatchObject({ ok: true, status: 200 });
    expect(received[0]!.headers.get('host')).toBe(`hooks.test:${port}`);
  });

  test('caller headers cannot override content-type, user-agent or Host', async () => {
    const { port, received } = receiver();
    await attemptDelivery({
      url: new URL(`http://hooks.test:${port}/`),
      target: LOOPBACK,
      headers: {
        'Content-Type': 'text/plain',
        'User-Agent': 'curl',
        Host: 'evil.test',
        'X-Extra': '1',
      },
      body,
      timeoutMs: 2_000,
    });
    const headers = received[0]!.headers;
    expect(headers.get('content-type')).toBe('application/json');
    expect(headers.get('user-agent')).toBe('Secryn-Webhooks/1');
    expect(headers.get('host')).toBe(`hooks.test:${port}`);
    expect(headers.get('x-extra')).toBe('1');
  });

  test('a Standard Webhooks receiver verifies the delivery, with either secret during rotation', async () => {
    const current = generateWebhookSecret();
    const previous = generateWebhookSecret();
    for (const receiverSecret of [current, previous]) {
      const { port } = receiver((req, received) => {
        const { body: text, headers } = received.at(-1)!;
        try {
          new Webhook(receiverSecret).verify(text, Object.fromEntries(headers));
          return new Response(null, { status: 204 });
        } catch {
          return new Response('bad signature', { status: 400 });
        }
      });
      const result = await attemptDelivery({
        url: new URL(`http://127.0.0.1:${port}/`),
        target: LOOPBACK,
        headers: signedHeaders([current, previous]),
        body,
        timeoutMs: 2_000,
      });
      expect(result).toMatchObject({ ok: true, status: 204 });
      expect(result.responseExcerpt).toBeUndefined();
    }
    // And one it does not hold is rejected, so the check above can fail.
    const { port } = receiver((req, received) => {
      try {
        new Webhook(generateWebhookSecret()).verify(
          received[0]!.body,
          Object.fromEntries(received[0]!.headers),
        );
        return new Response(null, { status: 204 });
      } catch {
        return new Response('bad signature', { status: 400 });
      }
    });
    const rejected = await attemptDelivery({
      url: new URL(`http://127.0.0.1:${port}/`),
      target: LOOPBACK,
      headers: signedHeaders([current]),
      body,
      timeoutMs: 2_000,
    });
    expect(rejected).toMatchObject({ ok: false, status: 400, responseExcerpt: 'bad signature' });
  });

  test.each([400, 404, 410, 429, 500, 503])(
    'HTTP %d is a failure with its status',
    async (status) => {
      const { port } = receiver(() => new Response('nope', { status }));
      const result = await attemptDelivery({
        url: new URL(`http://127.0.0.1:${port}/`),
        target: LOOPBACK,
        headers: {},
        body,
        timeoutMs: 2_000,
      });
      expect(result).toMatchObject({
        ok: false,
        status,
        error: `receiver answered HTTP ${status}`,
        responseExcerpt: 'nope',
      });
    },
  );

  test.each([301, 302, 303, 307, 308])(
    'a %d redirect fails and its target is never called',
    async (status) => {
      const elsewhere = receiver();
      const { port } = receiver(
        () =>
          new Response(null, {
            status,
            headers: { location: `http://127.0.0.1:${elsewhere.port}/stolen` },
          }),
      );
      const result = await attemptDelivery({
        url: new URL(`http://127.0.0.1:${port}/`),
        target: LOOPBACK,
        headers: {},
        body,
        timeoutMs: 2_000,
      });
      expect(result).toMatchObject({
        ok: false,
        status,
        error: `redirect not followed (HTTP ${status})`,
      });
      await Bun.sleep(50);
      expect(elsewhere.received).toHaveLength(0);
    },
  );

  test('a receiver that does not answer in time fails with a timeout, on time', async () => {
    const { promise: release, resolve } = Promise.withResolvers<void>();
    cleanups.push(resolve);
    const { port } = receiver(async () => {
      await release;
      return new Response('too late');
    });
    const started = performance.now();
    const result = await attemptDelivery({
      url: new URL(`http://127.0.0.1:${port}/`),
      target: LOOPBACK,
      headers: {},
      body,
      timeoutMs: 300,
    });
    const wall = performance.now() - started;
    expect(result).toMatchObject({ ok: false, error: 'timeout after 300 ms' });
    expect(result.status).toBeUndefined();
    expect(result.durationMs).toBeGreaterThanOrEqual(290);
    expect(wall).toBeLessThan(300 + 500);
  });

  test('a body that trickles past the deadline is cut off; the status still decides', async () => {
    const { port } = receiver(() => {
      let timer: ReturnType<typeof setInterval> | undefined;
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('partial '));
          timer = setInterval(() => controller.enqueue(new TextEncoder().encode('.')), 50);
        },
        cancel() {
          clearInterval(timer);
        },
      });
      cleanups.push(() => clearInterval(timer));
      return new Response(stream);
    });
    const started = performance.now();
    const result = await attemptDelivery({
      url: new URL(`http://127.0.0.1:${port}/`),
      target: LOOPBACK,
      headers: {},
      body,
      timeoutMs: 400,
    });
    expect(performance.now() - started).toBeLessThan(400 + 500);
    expect(result).toMatchObject({ ok: true, status: 200 });
    expect(result.responseExcerpt).toStartWith('partial ');
  });

  test('reads at most 64 KiB of a 10 MB response and finishes quickly', async () => {
    const TEN_MB = 10 * 1024 * 1024;
    let sent = 0;
    const { port } = receiver(() => {
      sent = 0;
      const chunk = new Uint8Array(64 * 1024).fill(0x61);
      return new Response(
        new ReadableStream<Uint8Array>({
          pull(controller) {
            if (sent >= TEN_MB) return controller.close();
            sent += chunk.length;
            controller.enqueue(chunk);
          },
        }),
      );
    });
    const started = performance.now();
    const result = await attemptDelivery({
      url: new URL(`http://127.0.0.1:${port}/`),
      target: LOOPBACK,
      headers: {},
      body,
      timeoutMs: 5_000,
    });
    const wall = performance.now() - started;
    expect(result.ok).toBe(true);
    expect(result.responseExcerpt).toBe('a'.repeat(DEFAULT_MAX_RESPONSE_BYTES));
    expect(wall).toBeLessThan(1_000);
    await Bun.sleep(100);
    // The rest was cancelled: the receiver could not push the whole 10 MB at us.
    expect(sent).toBeLessThan(TEN_MB);
  });

  test('maxResponseBytes bounds the excerpt, in bytes', async () => {
    const { port } = receiver(() => new Response('é'.repeat(100)));
    const result = await attemptDelivery({
      url: new URL(`http://127.0.0.1:${port}/`),
      target: LOOPBACK,
      headers: {},
      body,
      timeoutMs: 2_000,
      maxResponseBytes: 10,
    });
    expect(result.responseExcerpt).toBe('é'.repeat(5));
    const none = await attemptDelivery({
      url: new URL(`http://127.0.0.1:${port}/`),
      target: LOOPBACK,
      headers: {},
      body,
      timeoutMs: 2_000,
      maxResponseBytes: 0,
    });
    expect(none).toMatchObject({ ok: true, status: 200 });
    expect(none.responseExcerpt).toBeUndefined();
  });

  test('a refused connection is a short, safe error', async () => {
    const probe = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response() });
    const closedPort = probe.port;
    probe.stop(true);
    const result = await attemptDelivery({
      url: new URL(`http://hooks.test:${closedPort}/secret-path?token=abc`),
      target: LOOPBACK,
      headers: {},
      body,
      timeoutMs: 2_000,
    });
    expect(result).toMatchObject({ ok: false, error: 'connection refused' });
    expect(result.status).toBeUndefined();
  });
});

describe('attemptDelivery over https', () => {
  test("verifies the certificate against the URL's host name while connecting to the pinned IP", async () => {
    const { port, received } = receiver(undefined, { cert: HOOKS_TEST_CERT, key: HOOKS_TEST_KEY });
    const result = await attemptDelivery({
      url: new URL(`https://hooks.test:${port}/in`),
      target: LOOPBACK,
      headers: {},
      body,
      timeoutMs: 2_000,
      fetchImpl: fetchTrustingTestCa,
    });
    expect(result).toMatchObject({ ok: true, status: 200 });
    expect(received[0]!.headers.get('host')).toBe(`hooks.test:${port}`);
    expect(received[0]!.body).toBe(body);
  });

  test('a certificate for another name is refused', async () => {
    const { port, received } = receiver(undefined, { cert: HOOKS_TEST_CERT, key: HOOKS_TEST_KEY });
    const result = await attemptDelivery({
      url: new URL(`https://other.test:${port}/in`),
      target: LOOPBACK,
      headers: {},
      body,
      timeoutMs: 2_000,
      fetchImpl: fetchTrustingTestCa,
    });
    expect(result).toMatchObject({
      ok: false,
      error: 'TLS handshake failed (ERR_TLS_CERT_ALTNAME_INVALID)',
    });
    expect(received).toHaveLength(0);
  });

  test('an untrusted certificate is refused by default', async () => {
    const { port, received } = receiver(undefined, { cert: HOOKS_TEST_CERT, key: HOOKS_TEST_KEY });
    const result = await attemptDelivery({
      url: new URL(`https://hooks.test:${port}/in`),
      target: LOOPBACK,
      headers: {},
      body,
      timeoutMs: 2_000,
    });
    expect(result.ok).toBe(false);
    expect(result.error).toStartWith('TLS handshake failed (');
    expect(received).toHaveLength(0);
  });
});

describe('attemptDelivery request construction', () => {
  function capture() {
    const calls: Array<{ input: string; init: BunFetchRequestInit | undefined }> = [];
    const fetchImpl: typeof fetch = Object.assign(
      async (input: string | URL | Request, init?: BunFetchRequestInit) => {
        calls.push({ input: String(input), init });
        return new Response('ok');
      },
      { preconnect: fetch.preconnect },
    );
    return { calls, fetchImpl };
  }

  test('an IPv6 target is bracketed; credentials, fragment and proxies are dropped', async () => {
    const { calls, fetchImpl } = capture();
    await attemptDelivery({
      url: new URL('https://hooks.example.com:8443/p/q?x=1#frag'),
      target: { address: '2001:db8::7', family: 6 },
      headers: {},
      body,
      timeoutMs: 1_000,
      fetchImpl,
    });
    expect(calls).toHaveLength(1);
    const { input, init } = calls[0]!;
    expect(input).toBe('https://[2001:db8::7]:8443/p/q?x=1');
    expect(init?.tls?.serverName).toBe('hooks.example.com');
    expect(new Headers(init?.headers).get('host')).toBe('hooks.example.com:8443');
    expect(init?.redirect).toBe('manual');
    expect(init?.proxy).toBe(false);
    expect(init?.decompress).toBe(false);
  });

  test('no SNI for an IP-literal URL or plain http; a trailing root dot is not sent as SNI', async () => {
    const { calls, fetchImpl } = capture();
    const base = { headers: {}, body, timeoutMs: 1_000, fetchImpl };
    await attemptDelivery({
      ...base,
      url: new URL('https://10.0.0.5/'),
      target: { address: '10.0.0.5', family: 4 },
    });
    await attemptDelivery({ ...base, url: new URL('http://hooks.example.com/'), target: LOOPBACK });
    await attemptDelivery({
      ...base,
      url: new URL('https://hooks.example.com./'),
      target: LOOPBACK,
    });
    expect(calls.map((c) => c.init?.tls?.serverName)).toEqual([
      undefined,
      undefined,
      'hooks.example.com',
    ]);
  });

  test.each([
    [{ target: { address: 'hooks.example.com', family: 4 as const } }, 'IP literal'],
    [{ target: { address: '::1', family: 4 as const } }, 'IP literal'],
    [{ timeoutMs: 0 }, 'timeoutMs'],
    [{ timeoutMs: Number.NaN }, 'timeoutMs'],
    [{ maxResponseBytes: -1 }, 'maxResponseBytes'],
    [{ url: new URL('ftp://hooks.example.com/') }, 'http and https'],
  ])('rejects invalid arguments %#', async (override, message) => {
    const { calls, fetchImpl } = capture();
    const valid = {
      url: new URL('https://hooks.example.com/'),
      target: LOOPBACK,
      headers: {},
      body,
      timeoutMs: 1_000,
      fetchImpl,
    };
    await expect(attemptDelivery({ ...valid, ...override })).rejects.toThrow(message);
    expect(calls).toHaveLength(0);
  });

  test('unexpected fetch failures become a generic error without details', async () => {
    const fetchImpl: typeof fetch = Object.assign(
      async () => {
        throw new Error('boom at https://hooks.example.com/secret with token xyz');
      },
      { preconnect: fetch.preconnect },
    );
    const result = await attemptDelivery({
      url: new URL('https://hooks.example.com/'),
      target: LOOPBACK,
      headers: {},
      body,
      timeoutMs: 1_000,
      fetchImpl,
    });
    expect(result).toMatchObject({ ok: false, error: 'request failed' });
  });
});
