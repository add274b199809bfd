/**
 * A real instance for the resource tests: a temp directory with a real SQLite file, the app
 * assembled exactly as `serve` assembles it (buildFeatures), a manual clock, API keys of any
 * grant, and a small JSON client over `app.handle`.
 */
import { expect } from 'bun:test';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyGrant } from '../src/access/principal.ts';
import { manualClock } from '../src/clock.ts';
import { buildFeatures } from '../src/features.ts';
import { createInstance, type Instance } from '../src/instance.ts';
import { insertApiKey, newApiKeyId } from '../src/keys/service.ts';
import { buildApp } from '../src/server.ts';
import { call, memoryLogger, tempDir, testConfig } from './harness.ts';

/** A response, read once: status, headers and the body as text and (if any) JSON. */
export type Reply = {
  status: number;
  headers: Headers;
  text: string;
  /** Parsed JSON (undefined if none). Loosely typed on purpose: tests assert its shape. */
  json: any;
};

export type World = {
  instance: Instance;
  app: ReturnType<typeof buildApp>;
  clock: ReturnType<typeof manualClock>;
  dir: string;
  logger: ReturnType<typeof memoryLogger>;
  /** Token of an unlimited admin key. */
  admin: string;
  /** A new key with this grant; returns its token (and id). */
  key(grant: Partial<KeyGrant>): { token: string; id: string };
  /** Sends a request with `token` (none when null) and reads the reply. */
  send(
    token: string | null,
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<Reply>;
  /** Sends a raw (not JSON-encoded) body with the given headers. */
  sendRaw(
    token: string | null,
    method: string,
    path: string,
    rawBody: string,
    headers?: Record<string, string>,
  ): Promise<Reply>;
  /** Row count of a table. */
  count(table: string): number;
  close(): Promise<void>;
};

/** Opens a fresh instance. `overrides` are config sections (e.g. `{resources: {...}}`). */
export function openWorld(overrides: Record<string, Record<string, unknown>> = {}): World {
  const temp = tempDir('secryn-resources-');
  const clock = manualClock(Date.UTC(2026, 0, 1));
  const logger = memoryLogger();
  const instance = createInstance(
    testConfig(temp.path, {
      rate_limit: { burst: 1_000_000, requests_per_minute: 1_000_000 },
      ...overrides,
    }),
    logger,
    undefined,
    { clock },
  );
  const features = buildFeatures(instance);
  const app = buildApp(instance, {
    features: features.features,
    recordOutcome: features.recordOutcome,
  });
  const key = (grant: Partial<KeyGrant>) => {
    const { row, token } = insertApiKey(
      instance.db,
      newApiKeyId(),
      {
        name: 'test key',
        role: 'reader',
        projectIds: [],
        vaultIds: [],
        scopes: null,
        expiresAt: null,
        ...grant,
      },
      'test',
      clock.now(),
    );
    return { token, id: row.id };
  };
  const admin = key({ role: 'admin' }).token;
  return {
    instance,
    app,
    clock,
    dir: temp.path,
    logger,
    admin,
    key,
    async send(token, method, path, body, headers = {}) {
      return read(
        await call(app, method, path, {
          body,
          headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...headers },
        }),
      );
    },
    async sendRaw(token, method, path, rawBody, headers = {}) {
      return read(
        await call(app, method, path, {
          rawBody,
          headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...headers },
        }),
      );
    },
    count(table) {
      return (instance.sqlite.query(`SELECT count(*) AS n FROM "${table}"`).get() as { n: number })
        .n;
    },
    async close() {
      await instance.close();
      temp[Symbol.dispose]();
    },
  };
}

async function read(response: Response): Promise<Reply> {
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** Every file under `dir` whose raw bytes contain one of `needles`. */
export function filesContaining(dir: string, needles: string[]): string[] {
  const hits: string[] = [];
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const bytes = readFileSync(path);
    if (needles.some((needle) => bytes.includes(Buffer.from(needle, 'utf8')))) hits.push(path);
  }
  return hits;
}

/**
 * The error body of docs/api.md §1, for `expect(reply.json).toMatchObject(errorOf(...))`. Read any
 * detail before that call: bun's toMatchObject writes the matchers into the received object.
 */
export function errorOf(code: string, field?: string) {
  return {
    error: {
      code,
      message: expect.any(String),
      ...(field ? { details: expect.objectContaining({ field }) } : {}),
    },
  };
}
