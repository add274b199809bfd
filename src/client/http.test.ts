import { afterAll, describe, expect, test } from 'bun:test';
import { ExitCode } from '../cli/exit.ts';
import { ClientError, normalizeUrl, retryAfterMs, SecrynClient } from './http.ts';

/** The error a request fails with (the test fails if it succeeds). */
const failureOf = (request: Promise<unknown>): Promise<ClientError> =>
  request.then(
    () => {
      throw new Error('expected the request to fail');
    },
    (error: unknown) => error as ClientError,
  );

/** A stub server answering each request with the next scripted response. */
function stub(script: (() => Response)[]) {
  const seen: { method: string; idempotencyKey: string | null; body: string }[] = [];
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(request) {
      seen.push({
        method: request.method,
        idempotencyKey: request.headers.get('idempotency-key'),
        body: await request.text(),
      });
      return (script.shift() ?? (() => Response.json({ ok: true })))();
    },
  });
  return { server, seen, url: `http://127.0.0.1:${server.port}` };
}

describe('SecrynClient', () => {
  const servers: { stop(force: boolean): void }[] = [];
  afterAll(() => servers.forEach((s) => s.stop(true)));

  test('429 and 503 are retried, honouring Retry-After (capped), with one Idempotency-Key', async () => {
    const { server, seen, url } = stub([
      () => new Response('', { status: 429, headers: { 'retry-after': '2' } }),
      () => new Response('', { status: 503, headers: { 'retry-after': '3600' } }),
      () => Response.json({ id: 'prj_1' }, { status: 201 }),
    ]);
    servers.push(server);
    const waits: number[] = [];
    const client = new SecrynClient({
      url,
      token: 'scr_x',
      maxRetryDelayMs: 5_000,
      sleep: async (ms) => void waits.push(ms),
    });
    expect(await client.request('POST', '/v1/projects', { name: 'p' })).toEqual({ id: 'prj_1' });
    expect(waits).toEqual([2_000, 5_000]);
    expect(seen).toHaveLength(3);
    expect(new Set(seen.map((s) => s.idempotencyKey)).size).toBe(1);
    expect(seen[0]!.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);
  });

  test('retries are bounded: then the error is SERVER_UNAVAILABLE', async () => {
    const busy = () => new Response('', { status: 503 });
    const { server, seen, url } = stub([busy, busy, busy, busy]);
    servers.push(server);
    const client = new SecrynClient({ url, token: 'scr_x', maxRetries: 2, sleep: async () => {} });
    const error = await failureOf(client.request('GET', '/v1/me'));
    expect(error).toBeInstanceOf(ClientError);
    expect(error.exitCode).toBe(ExitCode.SERVER_UNAVAILABLE);
    expect(seen).toHaveLength(3);
  });

  test('API errors become one line with the field, and an exit code per status', async () => {
    const { server, url } = stub([
      () =>
        Response.json(
          {
            error: {
              code: 'INVALID_REQUEST',
              message: 'Invalid request parameters',
              details: { field: 'secrets.1.name', reason: 'Invalid name' },
            },
          },
          { status: 400 },
        ),
      () =>
        Response.json(
          { error: { code: 'NOT_FOUND', message: 'Vault not found' } },
          { status: 404 },
        ),
    ]);
    servers.push(server);
    const client = new SecrynClient({ url, token: 'scr_x' });
    const invalid = await failureOf(client.request('POST', '/v1/x', {}));
    expect(invalid.message).toBe('Invalid request parameters: secrets.1.name: Invalid name');
    expect(invalid.exitCode).toBe(ExitCode.REJECTED);
    expect(invalid.code).toBe('INVALID_REQUEST');
    const missing = await failureOf(client.request('GET', '/v1/y'));
    expect(missing.exitCode).toBe(ExitCode.NOT_FOUND);
  });

  test('a server that does not answer in time: UNREACHABLE', async () => {
    const server = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch: () => new Promise<Response>(() => {}),
    });
    servers.push(server);
    const client = new SecrynClient({
      url: `http://127.0.0.1:${server.port}`,
      token: 'scr_x',
      timeoutMs: 200,
    });
    const error = await failureOf(client.request('GET', '/v1/me'));
    expect(error.exitCode).toBe(ExitCode.UNREACHABLE);
    expect(error.message).toContain('no answer');
  });

  test('URLs: /v1 and trailing slashes dropped; credentials and other schemes refused', () => {
    expect(normalizeUrl('https://s.example:8443/v1/')).toBe('https://s.example:8443');
    expect(normalizeUrl('http://127.0.0.1:8420')).toBe('http://127.0.0.1:8420');
    expect(() => normalizeUrl('https://user:pw@s.example')).toThrow('credentials');
    expect(() => normalizeUrl('ftp://s.example')).toThrow('http(s)');
  });

  test('Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    const at = (value: string) =>
      retryAfterMs(new Response('', { headers: { 'retry-after': value } }), now);
    expect(at('7')).toBe(7_000);
    expect(at('Thu, 01 Jan 2026 00:00:30 GMT')).toBe(30_000);
    expect(at('soon')).toBeUndefined();
  });
});
