import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Elysia, t } from 'elysia';
import { createInstance, type Instance } from '../src/instance.ts';
import { buildApp, type RunningServer, startServer } from '../src/server.ts';
import { createApp } from '../src/http/app.ts';
import { call, memoryLogger, tempDir, testConfig } from './harness.ts';

const MARKER = 'MARKER-7f3c1e0b-do-not-echo';

/** A sample feature exercising validation, thrown errors and slow handlers. */
const sample = new Elysia({ name: 'sample' })
  .post('/v1/samples', ({ body }) => ({ name: body.name }), {
    body: t.Object({
      name: t.String({ minLength: 1 }),
      count: t.Optional(t.Number()),
      nested: t.Optional(t.Object({ deep: t.Boolean() })),
    }),
  })
  .get('/v1/samples/:id', ({ params, query }) => ({ id: params.id, q: query.q ?? null }))
  .get('/v1/explode', () => {
    throw new Error(`internal detail ${MARKER}`);
  })
  .get('/v1/slow', async () => {
    await Bun.sleep(300);
    return { slow: true };
  });

describe('HTTP foundation', () => {
  const dir = tempDir();
  const logger = memoryLogger('json', 'info');
  let instance: Instance;
  let app: ReturnType<typeof buildApp>;

  beforeAll(() => {
    instance = createInstance(testConfig(dir.path, { server: { max_body_bytes: 2048 } }), logger);
    app = buildApp(instance, { features: [sample] });
  });
  afterAll(async () => {
    await instance.close();
    dir[Symbol.dispose]();
  });

  const expectErrorShape = async (response: Response, status: number, code: string) => {
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toContain('application/json');
    expect(response.headers.get('x-request-id')).toBeTruthy();
    const body = (await response.json()) as {
      error: { code: string; message: string; details?: Record<string, unknown> };
    };
    expect(body.error.code).toBe(code);
    expect(typeof body.error.message).toBe('string');
    expect(JSON.stringify(body)).not.toContain(MARKER);
    return body.error;
  };

  test('health on both paths, no auth, with the package version', async () => {
    for (const path of ['/health', '/v1/health']) {
      const response = await call(app, 'GET', path);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({
        status: 'ok',
        version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      });
    }
  });

  test('unknown route is 404 and a known path with the wrong method is 405 with Allow', async () => {
    await expectErrorShape(await call(app, 'GET', '/v1/nothing-here'), 404, 'NOT_FOUND');
    const response = await call(app, 'DELETE', '/v1/samples/abc');
    expect(response.headers.get('allow')).toBe('GET');
    await expectErrorShape(response, 405, 'METHOD_NOT_ALLOWED');
  });

  test('validation errors name the field and never echo the submitted value', async () => {
    const wrongType = await expectErrorShape(
      await call(app, 'POST', '/v1/samples', { body: { name: 12345, secret: MARKER } }),
      400,
      'INVALID_REQUEST',
    );
    expect(wrongType.details).toMatchObject({ field: 'name' });
    const nested = await expectErrorShape(
      await call(app, 'POST', '/v1/samples', { body: { name: 'ok', nested: { deep: MARKER } } }),
      400,
      'INVALID_REQUEST',
    );
    expect(nested.details).toMatchObject({ field: 'nested.deep' });
    const missing = await expectErrorShape(
      await call(app, 'POST', '/v1/samples', { body: { count: 1 } }),
      400,
      'INVALID_REQUEST',
    );
    expect(missing.details).toEqual({ field: 'name', reason: 'Missing required field' });
  });

  test('malformed JSON is 400; a non-JSON content type is 415', async () => {
    const malformed = await call(app, 'POST', '/v1/samples', {
      rawBody: `{"name": "${MARKER}"`,
      headers: { 'content-type': 'application/json' },
    });
    await expectErrorShape(malformed, 400, 'INVALID_REQUEST');
    const form = await call(app, 'POST', '/v1/samples', {
      rawBody: `name=${MARKER}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    await expectErrorShape(form, 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  test('a body over server.max_body_bytes is 413, declared or streamed', async () => {
    const big = JSON.stringify({ name: MARKER.repeat(200) });
    const declared = await call(app, 'POST', '/v1/samples', {
      rawBody: big,
      headers: { 'content-type': 'application/json', 'content-length': String(big.length) },
    });
    await expectErrorShape(declared, 413, 'PAYLOAD_TOO_LARGE');
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(big));
        controller.close();
      },
    });
    const chunked = await call(app, 'POST', '/v1/samples', {
      rawBody: stream,
      headers: { 'content-type': 'application/json' },
    });
    await expectErrorShape(chunked, 413, 'PAYLOAD_TOO_LARGE');
  });

  test('a thrown error is a generic 500; the detail goes to the log with the request id', async () => {
    const response = await call(app, 'GET', '/v1/explode', {
      headers: { 'x-request-id': 'trace-0001-abcd' },
    });
    expect(response.headers.get('x-request-id')).toBe('trace-0001-abcd');
    const error = await expectErrorShape(response, 500, 'INTERNAL_ERROR');
    expect(error.message).toBe('Internal server error');
    const logged = logger.lines
      .map((line) => JSON.parse(line))
      .find((entry) => entry.msg === 'unhandled error');
    expect(logged).toMatchObject({ level: 'error', request_id: 'trace-0001-abcd' });
    expect(logged.error).toContain('internal detail');
  });

  test('X-Request-Id: a sane incoming id is echoed, anything else replaced', async () => {
    const echoed = await call(app, 'GET', '/v1/samples/x', {
      headers: { 'x-request-id': 'abc-12345.6789' },
    });
    expect(echoed.headers.get('x-request-id')).toBe('abc-12345.6789');
    const replaced = await call(app, 'GET', '/v1/samples/x', {
      headers: { 'x-request-id': '<script>alert(1)</script>' },
    });
    expect(replaced.headers.get('x-request-id')).toMatch(/^req_[A-Za-z0-9_-]{16}$/);
  });

  test('one JSON access-log line per request: no query values, no headers, no bodies', async () => {
    const secret = 'ACCESS-LOG-MARKER-51c2';
    await call(app, 'GET', `/v1/samples/abc?q=${secret}`, {
      headers: { authorization: `Bearer ${secret}`, 'x-request-id': 'access-log-get-1' },
    });
    await call(app, 'POST', '/v1/samples', {
      body: { name: secret },
      headers: { 'x-request-id': 'access-log-post-1' },
    });
    await call(app, 'GET', '/v1/health', { headers: { 'x-request-id': 'access-log-health-1' } });
    await Bun.sleep(50); // the access log is written after the response has gone out
    const entries = logger.lines
      .map((line) => JSON.parse(line))
      .filter(
        (entry) => entry.msg === 'request' && String(entry.request_id).startsWith('access-log-'),
      );
    expect(entries).toHaveLength(3);
    expect(entries).toContainEqual(
      expect.objectContaining({ path: '/v1/health', request_id: 'access-log-health-1' }),
    );
    expect(entries).toContainEqual(
      expect.objectContaining({
        level: 'info',
        method: 'GET',
        path: '/v1/samples/abc',
        status: 200,
        request_id: 'access-log-get-1',
      }),
    );
    expect(entries).toContainEqual(
      expect.objectContaining({
        method: 'POST',
        path: '/v1/samples',
        status: 200,
        request_id: 'access-log-post-1',
      }),
    );
    for (const entry of entries) expect(typeof entry.duration_ms).toBe('number');
    expect(logger.lines.join('\n')).not.toContain(secret);
  });

  test('above info there is no access log, and requests are still answered', async () => {
    using quietDir = tempDir();
    const logger = memoryLogger('json', 'warn');
    // Metrics off too: they would count every request from the same hook.
    const quiet = createInstance(
      { ...testConfig(quietDir.path), metrics: { enabled: false, listen: '' } },
      logger,
    );
    try {
      const quietApp = buildApp(quiet);
      expect((await call(quietApp, 'GET', '/v1/health')).status).toBe(200);
      expect((await call(quietApp, 'GET', '/v1/nope')).status).toBe(404);
      await Bun.sleep(50);
      expect(logger.lines.filter((line) => JSON.parse(line).msg === 'request')).toEqual([]);
      // The one after-response hook stays (as in `app`): SIGHUP can turn the access log or the
      // metrics on, and they must start at once. It costs ~7 µs a request (issue 19 report).
      const hooks = (built: { event: { afterResponse?: unknown[] } }) =>
        built.event.afterResponse?.length ?? 0;
      expect(hooks(quietApp)).toBe(hooks(app));
    } finally {
      await quiet.close();
    }
  });

  test('health is 503 "unavailable" when the database cannot be written', async () => {
    using brokenDir = tempDir();
    const broken = createInstance(testConfig(brokenDir.path), memoryLogger());
    const brokenApp = buildApp(broken);
    expect((await call(brokenApp, 'GET', '/v1/health')).status).toBe(200);
    broken.sqlite.run('PRAGMA query_only = ON');
    await Bun.sleep(1100); // the verdict is cached for a second
    const response = await call(brokenApp, 'GET', '/v1/health');
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({
      status: 'unavailable',
      version: expect.any(String),
      failing: ['database'],
    });
    broken.sqlite.run('PRAGMA query_only = OFF');
    await broken.close();
  });
});

describe('hostile JSON bodies (default body limit)', () => {
  const dir = tempDir();
  let instance: Instance;
  let app: ReturnType<typeof buildApp>;
  beforeAll(() => {
    instance = createInstance(testConfig(dir.path), memoryLogger('json', 'warn'));
    app = buildApp(instance, { features: [sample] });
  });
  afterAll(async () => {
    await instance.close();
    dir[Symbol.dispose]();
  });
  const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
  const post = (rawBody: string) =>
    call(app, 'POST', '/v1/samples', { rawBody, headers: { 'content-type': 'application/json' } });

  test('a JSON body that is not an object is a 400 naming the body, not an empty change', async () => {
    for (const raw of ['42', 'true', '[]', '"x"', 'null', `["${MARKER}"]`]) {
      const response = await post(raw);
      expect(response.status).toBe(400);
      const text = await response.text();
      expect(JSON.parse(text).error.details).toEqual({
        field: 'body',
        reason: 'Must be a JSON object',
      });
      expect(text).not.toContain(MARKER);
    }
  });

  test('a body nested thousands of levels deep is a 400 naming the rule, not a 500', async () => {
    // 10 KB of brackets overflowed the stack while the validation error was described.
    const response = await post(`{"name":"x","nested":${nested(5000)}}`);
    expect(response.status).toBe(400);
    expect(response.headers.get('x-request-id')).toBeTruthy();
    const body = (await response.json()) as { error: { code: string; details: unknown } };
    expect(body.error).toMatchObject({
      code: 'INVALID_REQUEST',
      details: { reason: 'The body nests arrays and objects deeper than 32 levels' },
    });
  });

  test('32 levels pass the nesting check and meet the schema as usual', async () => {
    // The outer object is level 1, so the value under "nested" may nest 31 more.
    const atLimit = await post(`{"name":"x","nested":${nested(31)}}`);
    expect(atLimit.status).toBe(400);
    expect(((await atLimit.json()) as { error: { details: unknown } }).error.details).toMatchObject(
      { field: 'nested.deep', reason: 'Missing required field' },
    );
    const overLimit = await post(`{"name":"x","nested":${nested(32)}}`);
    expect(((await overLimit.json()) as { error: { details: unknown } }).error.details).toEqual({
      reason: 'The body nests arrays and objects deeper than 32 levels',
    });
  });
});

describe('server', () => {
  test('graceful stop: in-flight requests finish, new connections are refused', async () => {
    using dir = tempDir();
    const instance = createInstance(testConfig(dir.path), memoryLogger());
    const running: RunningServer = startServer(instance, { features: [sample], port: 0 });
    const base = `http://127.0.0.1:${running.server.port}`;
    const inFlight = fetch(`${base}/v1/slow`);
    await Bun.sleep(50);
    const stopped = running.stop();
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ slow: true });
    await stopped;
    expect(
      await fetch(`${base}/v1/health`).then(
        () => 'answered',
        () => 'refused',
      ),
    ).toBe('refused');
  });

  test('Bun serves in production mode: an error escaping every handler gets no developer page', async () => {
    using dir = tempDir();
    const instance = createInstance(testConfig(dir.path), memoryLogger());
    const running = startServer(instance, { features: [sample], port: 0 });
    try {
      expect(running.server.development).toBe(false);
    } finally {
      await running.stop();
    }
  });

  test('HTTPS when tls_cert_file and tls_key_file are set', async () => {
    using dir = tempDir();
    const cert = `${dir.path}/tls.crt`;
    const key = `${dir.path}/tls.key`;
    const openssl = Bun.spawnSync([
      'openssl',
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ]);
    expect(openssl.exitCode).toBe(0);
    const instance = createInstance(
      testConfig(dir.path, { server: { tls_cert_file: cert, tls_key_file: key } }),
      memoryLogger(),
    );
    const running = startServer(instance, { port: 0 });
    try {
      expect(running.url.protocol).toBe('https:');
      const response = await fetch(`https://127.0.0.1:${running.server.port}/v1/health`, {
        tls: { ca: await Bun.file(cert).text() },
      });
      expect(response.status).toBe(200);
      const plain = await fetch(`http://127.0.0.1:${running.server.port}/v1/health`).then(
        (r) => r.status,
        () => 'refused',
      );
      expect(plain).not.toBe(200);
    } finally {
      await running.stop();
    }
  });
});

describe('request outcomes (the audit hook)', () => {
  test('every request is recorded with its final status before the response; a failure to record is a 503', async () => {
    using dir = tempDir();
    const instance = createInstance(testConfig(dir.path), memoryLogger());
    const recorded: [string, number][] = [];
    let failRecording = false;
    const app = createApp({
      config: instance.config,
      logger: memoryLogger(),
      version: '0.0.0',
      failingChecks: async () => [],
      features: [sample],
      recordOutcome: async (request, status) => {
        if (failRecording) throw new Error('audit storage is gone');
        recorded.push([`${request.method} ${new URL(request.url).pathname}`, status]);
      },
    });
    expect((await call(app, 'GET', '/v1/samples/a')).status).toBe(200);
    expect((await call(app, 'POST', '/v1/samples', { body: {} })).status).toBe(400);
    expect((await call(app, 'GET', '/v1/explode')).status).toBe(500);
    expect(recorded).toEqual([
      ['GET /v1/samples/a', 200],
      ['POST /v1/samples', 400],
      ['GET /v1/explode', 500],
    ]);
    failRecording = true;
    for (const path of ['/v1/samples/a', '/v1/explode']) {
      const response = await call(app, 'GET', path);
      expect(response.status).toBe(503);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
        'SERVICE_UNAVAILABLE',
      );
    }
    await instance.close();
  });
});
