/**
 * The OpenAPI document at /docs/json describes the API as served: every /v1 route is in it,
 * every route that takes a body documents it as JSON with its schema, and it advertises bearer
 * authentication everywhere but the health check.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TSchema } from '@sinclair/typebox';
import { hasTransform } from 'elysia/schema';
import { buildFeatures } from '../src/features.ts';
import { createInstance } from '../src/instance.ts';
import { buildApp, startServer } from '../src/server.ts';
import { insertAdminKey } from './app-harness.ts';
import { call, memoryLogger, REPO_ROOT, tempDir, testConfig } from './harness.ts';
import { openWorld } from './resources-harness.ts';

type Operation = {
  operationId?: string;
  summary?: string;
  description?: string;
  parameters?: { $ref?: string; in?: string }[];
  requestBody?: { content?: Record<string, { schema?: Record<string, unknown> }> };
  responses?: Record<string, { headers?: Record<string, unknown>; content?: any }>;
  security?: unknown[];
};
type Document = {
  servers?: unknown[];
  info: { license?: { name?: string } };
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown> };
};

/** Every /v1 route's path with its parameters filled in with ids of the right shape. */
function concretePath(path: string): string {
  return path
    .replace(':dlv_id', 'dlv_01jq3v6x1nf4r8s2k9w7y5t3m0')
    .replace(':res_id', 'res_01jq3v6x1nf4r8s2k9w7y5t3m0')
    .replace(':name', 'missing')
    .replace(':n', '1')
    .replace(
      ':id',
      path.startsWith('/v1/projects')
        ? 'prj_01jq3v6x1nf4r8s2k9w7y5t3m0'
        : path.startsWith('/v1/vaults')
          ? 'vlt_01jq3v6x1nf4r8s2k9w7y5t3m0'
          : 'x_01jq3v6x1nf4r8s2k9w7y5t3m0',
    );
}

describe('OpenAPI document', () => {
  const dir = tempDir();
  const instance = createInstance(testConfig(dir.path), memoryLogger(), undefined, { env: {} });
  const features = buildFeatures(instance);
  const app = buildApp(instance, {
    features: features.features,
    recordOutcome: features.recordOutcome,
  });
  afterAll(async () => {
    await instance.close();
    dir[Symbol.dispose]();
  });

  test('lists every /v1 route, with JSON request bodies where a route takes one', async () => {
    const response = await call(app, 'GET', '/docs/json');
    expect(response.status).toBe(200);
    const doc = (await response.json()) as { paths: Record<string, Record<string, Operation>> };
    const routes = app.routes.filter((route) => route.path.startsWith('/v1/'));
    expect(routes.length).toBeGreaterThan(40);
    for (const route of routes) {
      const openApiPath = route.path.replace(/:([A-Za-z_]+)/g, '{$1}');
      const operation = doc.paths[openApiPath]?.[route.method.toLowerCase()];
      expect({
        route: `${route.method} ${route.path}`,
        documented: operation !== undefined,
      }).toEqual({
        route: `${route.method} ${route.path}`,
        documented: true,
      });
      const takesBody = (route.hooks as { body?: unknown } | undefined)?.body !== undefined;
      if (takesBody) {
        const schema = operation!.requestBody?.content?.['application/json']?.schema;
        expect({
          route: `${route.method} ${route.path}`,
          hasJsonSchema: Boolean(schema && Object.keys(schema).length),
        }).toEqual({
          route: `${route.method} ${route.path}`,
          hasJsonSchema: true,
        });
      }
    }
    expect(doc.paths['/v1/health']?.get?.security).toEqual([]);
  });

  // A transform in a response schema (e.g. Elysia's t.Integer) makes Elysia Encode every
  // response of the route instead of running its compiled Check: keep them out (ResponseInteger).
  test('no response schema carries a transform', () => {
    const withTransform: string[] = [];
    for (const route of app.routes) {
      const response = (route.hooks as { response?: unknown } | undefined)?.response;
      if (response === undefined) continue;
      const schemas: Record<string, unknown> =
        typeof response === 'object' && response !== null && !('type' in response)
          ? (response as Record<string, unknown>)
          : { 200: response };
      for (const [status, schema] of Object.entries(schemas)) {
        if (typeof schema === 'object' && schema !== null && hasTransform(schema as TSchema)) {
          withTransform.push(`${route.method} ${route.path} ${status}`);
        }
      }
    }
    expect(withTransform).toEqual([]);
  });
});

describe('OpenAPI document: a contract tools can trust', () => {
  // Lazy route compilation used to mutate the shared schema objects (additionalProperties:
  // false appeared on the responses of routes called before the document was first asked for).
  test('is byte-identical from a fresh server and after every route has been called', async () => {
    const fresh = openWorld();
    const used = openWorld();
    try {
      const routes = used.app.routes.filter((route) => route.path.startsWith('/v1/'));
      expect(routes.length).toBeGreaterThan(40);
      for (const route of routes) {
        const body = ['POST', 'PUT'].includes(route.method) ? {} : undefined;
        // The event stream never ends: call it with a refused resume point instead.
        const query = route.path === '/v1/events/stream' ? '?last_event_id=none' : '';
        const path = concretePath(route.path) + query;
        const reply = await used.send(used.admin, route.method, path, body);
        expect(reply.status).toBeLessThan(500);
      }
      const afterTraffic = await (await call(used.app, 'GET', '/docs/json')).text();
      const fromFresh = await (await call(fresh.app, 'GET', '/docs/json')).text();
      expect(afterTraffic.length).toBeGreaterThan(10_000);
      expect(afterTraffic === fromFresh).toBe(true);
      expect(afterTraffic).not.toContain(
        '"additionalProperties":false,"type":"object","required":["id","name","description"',
      );
    } finally {
      await fresh.close();
      await used.close();
    }
  });

  // Over a real socket, Bun's route table compiles each route on its first request, and that
  // adds `additionalProperties: false` to its response schemas, which route modules share. The
  // document is made on the first request for it, so it must come from copies taken at mount.
  test('is the same when served after requests through the listener', async () => {
    const fresh = openWorld();
    using dir = tempDir();
    const instance = createInstance(testConfig(dir.path), memoryLogger(), undefined, { env: {} });
    const features = buildFeatures(instance);
    const running = startServer(instance, {
      features: features.features,
      recordOutcome: features.recordOutcome,
      port: 0,
    });
    try {
      // Made before any request reaches the listener.
      const expected = await (await call(fresh.app, 'GET', '/docs/json')).text();
      const base = `http://127.0.0.1:${running.server.port}`;
      expect((await fetch(`${base}/v1/health`)).status).toBe(200);
      const projects = await fetch(`${base}/v1/projects`, {
        headers: { authorization: `Bearer ${insertAdminKey(instance)}` },
      });
      expect(projects.status).toBe(200);
      const served = await (await fetch(`${base}/docs/json`)).text();
      expect(served.length).toBeGreaterThan(10_000);
      expect(served === expected).toBe(true);
    } finally {
      await running.stop();
      await fresh.close();
    }
  });

  const dir = tempDir();
  const instance = createInstance(testConfig(dir.path), memoryLogger(), undefined, { env: {} });
  const features = buildFeatures(instance);
  const app = buildApp(instance, {
    features: features.features,
    recordOutcome: features.recordOutcome,
  });
  afterAll(async () => {
    await instance.close();
    dir[Symbol.dispose]();
  });
  const load = async () => (await (await call(app, 'GET', '/docs/json')).json()) as Document;
  const operations = (doc: Document) =>
    Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, operation]) => ({ path, method, operation })),
    );

  test('every operation lists its error answers, each with the shared Error schema', async () => {
    const doc = await load();
    const missing: string[] = [];
    for (const { path, method, operation } of operations(doc)) {
      const responses = operation.responses ?? {};
      const expected = new Set(['503']);
      if (operation.security === undefined) ['401', '403', '429'].forEach((s) => expected.add(s));
      if (path.includes('{')) expected.add('404');
      if (operation.requestBody) ['400', '413', '415'].forEach((s) => expected.add(s));
      if (method === 'post') expected.add('409');
      const text = `${operation.summary ?? ''} ${operation.description ?? ''}`;
      for (const match of text.matchAll(/\b(4\d\d|503)\b/g)) expected.add(match[1]!);
      for (const status of expected) {
        if (responses[status] === undefined) missing.push(`${method} ${path} ${status}`);
      }
      for (const [status, response] of Object.entries(responses)) {
        if (Number(status) < 400 || (path.startsWith('/v1/health') && status === '503')) continue;
        expect(response.content?.['application/json']?.schema).toEqual({
          $ref: '#/components/schemas/Error',
        });
      }
    }
    expect(missing).toEqual([]);
  });

  test('names its objects, declares headers, and uses one operation id style', async () => {
    const doc = await load();
    for (const name of ['Project', 'Vault', 'Resource', 'SecretVersion', 'ApiKey', 'Webhook']) {
      expect(doc.components.schemas[name], name).toBeDefined();
    }
    for (const name of ['Delivery', 'Event', 'AuditEntry', 'Error', 'Pagination']) {
      expect(doc.components.schemas[name], name).toBeDefined();
    }
    const text = JSON.stringify(doc.paths);
    expect(text).toContain('"$ref":"#/components/schemas/Project"');
    expect(doc.servers?.length).toBeGreaterThan(0);
    expect(doc.info.license?.name).toBe(
      (await Bun.file(join(REPO_ROOT, 'package.json')).json()).license,
    );
    const ids = new Set<string>();
    for (const { path, method, operation } of operations(doc)) {
      const where = `${method} ${path}`;
      expect(operation.operationId ?? '', where).toMatch(/^[a-z][A-Za-z]+$/);
      ids.add(operation.operationId!);
      const responses = operation.responses ?? {};
      for (const [status, response] of Object.entries(responses)) {
        expect(response.headers?.['X-Request-Id'], `${where} ${status}`).toBeDefined();
        if (operation.security === undefined) {
          expect(response.headers?.['X-RateLimit-Remaining'], where).toBeDefined();
        }
      }
      if (responses['201']) expect(responses['201'].headers?.Location, where).toBeDefined();
      if (responses['401']) {
        expect(responses['401'].headers?.['WWW-Authenticate'], where).toBeDefined();
      }
      for (const status of ['429', '503']) {
        if (responses[status])
          expect(responses[status].headers?.['Retry-After'], where).toBeDefined();
      }
      const headerRefs = (operation.parameters ?? []).map((parameter) => parameter.$ref);
      if (method === 'post' && operation.security === undefined) {
        expect(headerRefs, where).toContain('#/components/parameters/IdempotencyKey');
      }
    }
    expect(ids.size).toBe(operations(doc).length);
    expect(doc.paths['/v1/projects']?.get?.operationId).toBe('listProjects');
    expect(doc.paths['/v1/projects']?.get?.responses?.['200']?.headers?.Link).toBeDefined();
    const ifMatch = doc.paths['/v1/resources/{id}']?.put?.parameters?.map((p) => p.$ref);
    expect(ifMatch).toContain('#/components/parameters/IfMatch');
  });

  test('leaks no validator keyword and marks timestamps as date-time', async () => {
    const doc = await load();
    const leaks: string[] = [];
    const walk = (node: unknown, where: string) => {
      if (Array.isArray(node)) return node.forEach((item, i) => walk(item, `${where}/${i}`));
      if (!node || typeof node !== 'object') return;
      for (const [key, value] of Object.entries(node)) {
        const inProperties = where.endsWith('/properties');
        if (!inProperties && ['error', 'noValidate', 'nullable'].includes(key)) {
          leaks.push(`${where}/${key}`);
        }
        walk(value, `${where}/${key}`);
      }
    };
    walk(doc, '#');
    expect(leaks).toEqual([]);
    const project = doc.components.schemas.Project as { properties: Record<string, any> };
    expect(project.properties.created_at).toMatchObject({ type: 'string', format: 'date-time' });
    expect(project.properties.description.type).toEqual(['string', 'null']);
  });

  // @redocly/cli with its recommended rules: errors fail, warnings are printed.
  test('passes redocly lint (recommended rules) with no errors', async () => {
    using out = tempDir('secryn-openapi-');
    const specPath = join(out.path, 'openapi.json');
    writeFileSync(specPath, await (await call(app, 'GET', '/docs/json')).text());
    writeFileSync(join(out.path, 'redocly.yaml'), 'extends:\n  - recommended\n');
    const lint = Bun.spawnSync(
      [join(REPO_ROOT, 'node_modules/.bin/redocly'), 'lint', specPath, '--format=stylish'],
      {
        cwd: out.path,
        env: {
          ...process.env,
          REDOCLY_TELEMETRY: 'off',
          REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true',
          NO_COLOR: '1',
        },
        stdout: 'pipe',
        stderr: 'pipe',
      },
    );
    const output = `${lint.stdout.toString()}${lint.stderr.toString()}`;
    const warnings = output.split('\n').filter((line) => /\bwarning\b/.test(line));
    if (warnings.length) console.log(`redocly lint warnings:\n${warnings.join('\n')}`);
    expect({
      exitCode: lint.exitCode,
      errors: output.split('\n').filter((l) => /\berror\b/.test(l)),
    }).toEqual({
      exitCode: 0,
      errors: [],
    });
  }, 60_000);
});
