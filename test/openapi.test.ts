/**
 * The OpenAPI document at /docs/json describes the API as served: every /v1 route is in it,
 * every route that takes a body documents it as JSON with its schema, and it advertises bearer
 * authentication everywhere but the health check.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import type { TSchema } from '@sinclair/typebox';
import { hasTransform } from 'elysia/schema';
import { buildFeatures } from '../src/features.ts';
import { createInstance } from '../src/instance.ts';
import { buildApp } from '../src/server.ts';
import { call, memoryLogger, tempDir, testConfig } from './harness.ts';

type Operation = {
  requestBody?: { content?: Record<string, { schema?: Record<string, unknown> }> };
  security?: unknown[];
};

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
