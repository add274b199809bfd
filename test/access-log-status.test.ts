/*
 * The access log's status is the status actually sent: a route that throws (500), a missing
 * route (404), a handler returning a Response with its own status, an asset whose file is gone.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Elysia } from 'elysia';
import { createInstance, type Instance } from '../src/instance.ts';
import { buildApp, startServer } from '../src/server.ts';
import { call, memoryLogger, pinnedEnv, REPO_ROOT, tempDir, testConfig } from './harness.ts';

const sample = new Elysia({ name: 'access-log-sample' })
  .get('/v1/explode', () => {
    throw new Error('boom');
  })
  .get('/v1/teapot', () => new Response('short and stout', { status: 418 }))
  .get('/v1/missing-file', () => Bun.file('/nonexistent/secryn-asset.js'));

describe('access log status', () => {
  const dir = tempDir();
  const logger = memoryLogger('json', 'info');
  let instance: Instance;
  let app: ReturnType<typeof buildApp>;

  beforeAll(() => {
    instance = createInstance(testConfig(dir.path), logger);
    app = buildApp(instance, { features: [sample] });
  });
  afterAll(async () => {
    await instance.close();
    dir[Symbol.dispose]();
  });

  async function loggedStatus(path: string): Promise<{ sent: number; logged: unknown }> {
    const requestId = `status-${Math.random().toString(36).slice(2, 12)}`;
    const response = await call(app, 'GET', path, { headers: { 'x-request-id': requestId } });
    await response.arrayBuffer().catch(() => undefined);
    await Bun.sleep(50); // written after the response has gone out
    const entry = logger.lines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((e) => e.msg === 'request' && e.request_id === requestId);
    return { sent: response.status, logged: entry?.status };
  }

  test('a route that throws is logged as 500', async () => {
    expect(await loggedStatus('/v1/explode')).toEqual({ sent: 500, logged: 500 });
  });

  test('a Response with its own status is logged with it', async () => {
    expect(await loggedStatus('/v1/teapot')).toEqual({ sent: 418, logged: 418 });
  });

  test('an unknown path is logged as 404', async () => {
    expect(await loggedStatus('/v1/nope')).toEqual({ sent: 404, logged: 404 });
  });

  test('a file body that cannot be opened on a real socket: JSON 500, and a log line saying 500', async () => {
    using socketDir = tempDir();
    const socketLogger = memoryLogger('json', 'info');
    const socketInstance = createInstance(testConfig(socketDir.path), socketLogger);
    const running = startServer(socketInstance, { features: [sample], port: 0 });
    try {
      const response = await fetch(new URL('/v1/missing-file', running.url));
      expect(response.status).toBe(500);
      expect(await response.json()).toEqual({
        error: { code: 'INTERNAL_ERROR', message: 'Internal server error' },
      });
      await Bun.sleep(50);
      const failures = socketLogger.lines
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((e) => e.level === 'error');
      expect(failures).toContainEqual(expect.objectContaining({ status: 500 }));
    } finally {
      await running.stop();
      await socketInstance.close();
    }
  });
});

test('a docs asset whose file is gone answers 500 and is logged as 500', async () => {
  // Its own process: the fixture replaces a module, and module mocks are process-wide.
  const proc = Bun.spawnSync([process.execPath, 'test', './test/fixtures/docs-asset-missing.ts'], {
    cwd: REPO_ROOT,
    env: pinnedEnv(),
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const output = `${proc.stdout.toString()}${proc.stderr.toString()}`;
  expect(output).toContain(' 1 pass');
  expect(proc.exitCode).toBe(0);
});
