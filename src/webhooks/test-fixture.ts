/**
 * Test-only helpers for the webhook tests and bench/webhooks.ts: a real HTTP receiver on
 * 127.0.0.1 that verifies every request with the reference `standardwebhooks` package, and an
 * in-process instance with the app assembled as `serve` assembles it plus an admin key.
 * Never imported by the product.
 */
import { Webhook } from 'standardwebhooks';
import type { Clock } from '../clock.ts';
import { validateConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { buildFeatures } from '../features.ts';
import { createInstance, type Instance } from '../instance.ts';
import { insertApiKey, newApiKeyId } from '../keys/service.ts';
import { createLogger } from '../log/logger.ts';
import { buildApp } from '../server.ts';
import type { LookupAll } from './outbound-guard.ts';
import { webhookRoutes } from './routes.ts';

/** One request the receiver got. */
export type ReceivedDelivery = {
  /** Arrival, by the receiver's wall clock (ms); recorded once the answer is decided. */
  at: number;
  webhookId: string;
  timestamp: number;
  /** The `webhook-signature` header's entries. */
  signatures: string[];
  body: string;
  payload: {
    id: string;
    type: string;
    created_at: string;
    data: { object: Record<string, unknown> };
  };
  /** The secrets (by index into `secrets()`) whose signature verified. */
  verifiedWith: number[];
  /** What the receiver answered. */
  status: number;
  path: string;
};

/** How the receiver answers the n-th request (0-based); default 200. */
export type Behaviour = (n: number, request: Request) => Response | Promise<Response>;

/** A receiver that verifies signatures and records everything. */
export type Receiver = {
  url: string;
  port: number;
  received: ReceivedDelivery[];
  /** Requests whose signature no known secret verified (each one is a test failure). */
  unverified: string[];
  /** Sets the secrets to verify with (current first). */
  setSecrets(secrets: string[]): void;
  setBehaviour(behaviour: Behaviour): void;
  /** Resolves once at least `count` requests have arrived (or rejects after `timeoutMs`). */
  waitFor(count: number, timeoutMs?: number): Promise<void>;
  stop(): void;
};

/**
 * Starts a receiver on 127.0.0.1. With `strict` (default) signatures are verified with
 * `Webhook.verify`, which also enforces the 5-minute timestamp tolerance against the real time;
 * tests whose injected clock runs far ahead pass `strict: false`, which checks the signature
 * alone (still computed by the package) for the timestamp the request carries.
 */
export function startReceiver(
  options: { secrets?: string[]; behaviour?: Behaviour; strict?: boolean } = {},
): Receiver {
  let secrets = options.secrets ?? [];
  let behaviour: Behaviour = options.behaviour ?? (() => new Response('ok'));
  const strict = options.strict ?? true;
  const received: ReceivedDelivery[] = [];
  const unverified: string[] = [];
  let count = 0;
  const waiters: { count: number; resolve: () => void }[] = [];
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(request) {
      const n = count++;
      const arrived = Date.now();
      const body = await request.text();
      const headers = {
        'webhook-id': request.headers.get('webhook-id') ?? '',
        'webhook-timestamp': request.headers.get('webhook-timestamp') ?? '',
        'webhook-signature': request.headers.get('webhook-signature') ?? '',
      };
      const verifiedWith = secrets.flatMap((secret, index) => {
        try {
          if (strict) new Webhook(secret).verify(body, headers);
          else {
            const expected = new Webhook(secret).sign(
              headers['webhook-id'],
              new Date(Number(headers['webhook-timestamp']) * 1000),
              body,
            );
            if (!headers['webhook-signature'].split(' ').includes(expected)) return [];
          }
          return [index];
        } catch {
          return [];
        }
      });
      if (verifiedWith.length === 0) unverified.push(headers['webhook-id']);
      const response = await behaviour(n, request);
      received.push({
        at: arrived,
        webhookId: headers['webhook-id'],
        timestamp: Number(headers['webhook-timestamp']),
        signatures: headers['webhook-signature'].split(' ').filter(Boolean),
        body,
        payload: JSON.parse(body) as ReceivedDelivery['payload'],
        verifiedWith,
        status: response.status,
        path: new URL(request.url).pathname,
      });
      for (const waiter of [...waiters]) {
        if (received.length >= waiter.count) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve();
        }
      }
      return response;
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    port: server.port!,
    received,
    unverified,
    setSecrets: (next) => void (secrets = next),
    setBehaviour: (next) => void (behaviour = next),
    waitFor(target, timeoutMs = 10_000) {
      if (received.length >= target) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`receiver got ${received.length} of ${target} requests`)),
          timeoutMs,
        );
        waiters.push({
          count: target,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
    stop: () => void server.stop(true),
  };
}

/** An in-process instance with the full app and an admin key. */
export type WebhookTestInstance = {
  instance: Instance;
  app: ReturnType<typeof buildApp>;
  admin: { authorization: string };
  close(): Promise<void>;
};

/**
 * Creates an instance in `dir` (database and master key there) with loopback allowed as a
 * webhook target, generous rate limits and `overrides` applied, builds the app as `serve` does
 * (without starting its workers: tests drive a `DeliveryWorker` themselves) and makes an admin
 * key.
 */
export function createWebhookTestInstance(
  dir: string,
  clock: Clock,
  overrides: Record<string, Record<string, unknown>> = {},
  options: { lookup?: LookupAll } = {},
): WebhookTestInstance {
  const config: Config = validateConfig({
    ...overrides,
    storage: { path: `${dir}/secryn.db`, ...(overrides.storage ?? {}) },
    encryption: { master_key_file: `${dir}/master.key` },
    rate_limit: { requests_per_minute: 1_000_000, burst: 1_000_000 },
    webhooks: { allowed_cidrs: ['127.0.0.0/8'], ...(overrides.webhooks ?? {}) },
    log: { level: 'silent' },
  });
  const logger = createLogger({ level: 'silent', format: 'json', color: false, write: () => {} });
  const instance = createInstance(config, logger, undefined, { clock });
  const { token } = insertApiKey(
    instance.db,
    newApiKeyId(),
    { name: 'admin', role: 'admin', projectIds: [], vaultIds: [], scopes: null, expiresAt: null },
    'test',
    clock.now(),
  );
  const features = buildFeatures(instance);
  // Same assembly as `serve`; only the webhook routes get the injected DNS lookup.
  const mounted = options.lookup
    ? features.features.map((feature) =>
        feature.config.name === 'webhooks'
          ? webhookRoutes(instance, { lookup: options.lookup })
          : feature,
      )
    : features.features;
  const app = buildApp(instance, {
    features: mounted,
    recordOutcome: features.recordOutcome,
  });
  return {
    instance,
    app,
    admin: { authorization: `Bearer ${token}` },
    close: () => instance.close(),
  };
}

/** A JSON request through the app; returns status and parsed body. */
export async function api<T = Record<string, unknown>>(
  t: Pick<WebhookTestInstance, 'app' | 'admin'>,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = t.admin,
): Promise<{ status: number; body: T; headers: Headers }> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] = 'application/json';
  }
  const response = await t.app.handle(new Request(`http://localhost${path}`, init));
  const text = await response.text();
  return {
    status: response.status,
    body: (text === '' ? {} : JSON.parse(text)) as T,
    headers: response.headers,
  };
}
