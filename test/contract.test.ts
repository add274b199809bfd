/**
 * The OpenAPI document checked by third-party tools against the running server: a Prism
 * validating proxy (@stoplight/prism-cli) sits in front of a real listener while a scenario
 * calls every operation, successes and error answers alike, through a client typed by
 * openapi-typescript (test/contract/secryn-api.d.ts, type-checked by `tsc`, regenerated and
 * compared here). Prism runs without `--errors` so that it forwards every request and reports
 * each request and response violation in `sl-violations`; the scenario requires there be none.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import createClient, { type Middleware } from 'openapi-fetch';
import { call, freePort, REPO_ROOT, tempDir, waitForHealthy } from './harness.ts';
import type { paths } from './contract/secryn-api.d.ts';
import { makeTestPki } from './pki.ts';
import { openWorld, type World } from './resources-harness.ts';

const GENERATED = join(REPO_ROOT, 'test/contract/secryn-api.d.ts');
const bin = (name: string) => join(REPO_ROOT, 'node_modules/.bin', name);

describe('the OpenAPI contract, checked by Prism and openapi-typescript', () => {
  const out = tempDir('secryn-contract-');
  let world: World;
  let prism: ReturnType<typeof Bun.spawn> | undefined;
  let prismLog = '';
  let specText = '';
  let prismUrl = '';

  beforeAll(async () => {
    world = openWorld({ webhooks: { allowed_hosts: ['127.0.0.1'] } });
    specText = await (await call(world.app, 'GET', '/docs/json')).text();
    writeFileSync(join(out.path, 'openapi.json'), specText);
    const server = world.app.listen({ hostname: '127.0.0.1', port: 0 });
    const upstream = `http://127.0.0.1:${server.server!.port}`;
    const port = freePort();
    prism = Bun.spawn(
      [bin('prism'), 'proxy', join(out.path, 'openapi.json'), upstream, '--port', String(port)],
      { cwd: out.path, stdout: 'pipe', stderr: 'pipe', env: { ...process.env, NO_COLOR: '1' } },
    );
    void new Response(prism.stdout as ReadableStream).text().then((t) => (prismLog += t));
    prismUrl = `http://127.0.0.1:${port}`;
    await waitForHealthy(`${prismUrl}/v1/health`, 60_000);
  }, 90_000);

  afterAll(async () => {
    prism?.kill();
    await prism?.exited;
    await world?.app.stop();
    await world?.close();
    out[Symbol.dispose]();
  });

  test('the committed client types are what openapi-typescript makes of /docs/json', () => {
    const target = join(out.path, 'secryn-api.d.ts');
    const run = Bun.spawnSync(
      [bin('openapi-typescript'), join(out.path, 'openapi.json'), '-o', target],
      { cwd: out.path, stdout: 'pipe', stderr: 'pipe' },
    );
    expect(run.exitCode).toBe(0);
    // After an API change: UPDATE_CONTRACT_TYPES=1 bun test test/contract.test.ts, then review.
    if (process.env.UPDATE_CONTRACT_TYPES === '1') writeFileSync(GENERATED, readFileSync(target));
    expect(readFileSync(target, 'utf8') === readFileSync(GENERATED, 'utf8')).toBe(true);
  }, 60_000);

  test('every operation, with its error answers, passes through Prism without a violation', async () => {
    const violations: string[] = [];
    const called = new Set<string>();
    const statuses: string[] = [];
    const watch: Middleware = {
      onRequest({ request, schemaPath }) {
        called.add(`${request.method.toLowerCase()} ${schemaPath}`);
      },
      onResponse({ request, response, schemaPath }) {
        statuses.push(`${request.method} ${schemaPath} ${response.status}`);
        const found = response.headers.get('sl-violations');
        if (found) violations.push(`${request.method} ${schemaPath} ${response.status}: ${found}`);
      },
    };
    const as = (token: string) => {
      const client = createClient<paths>({
        baseUrl: prismUrl,
        headers: { authorization: `Bearer ${token}` },
      });
      client.use(watch);
      return client;
    };
    const admin = as(world.admin);
    const reader = as(world.key({ role: 'reader' }).token);
    const nobody = as('scr_not_a_real_key');

    const health = await admin.GET('/v1/health');
    expect(health.response.status).toBe(200);

    // Projects
    const project = (await admin.POST('/v1/projects', { body: { name: 'contract' } })).data!;
    expect(project.id).toStartWith('prj_');
    expect(
      (await admin.POST('/v1/projects', { body: { name: 'contract' } })).error?.error.code,
    ).toBe('CONFLICT');
    const projectPath = { params: { path: { id: project.id } } };
    await admin.GET('/v1/projects');
    await admin.GET('/v1/projects/{id}', projectPath);
    await admin.PUT('/v1/projects/{id}', { ...projectPath, body: { description: 'typed' } });
    expect((await nobody.GET('/v1/projects')).response.status).toBe(401);
    expect((await reader.POST('/v1/projects', { body: { name: 'no' } })).response.status).toBe(403);

    // Vaults
    const vault = (
      await admin.POST('/v1/vaults', { body: { project_id: project.id, name: 'app' } })
    ).data!;
    const vaultPath = { params: { path: { id: vault.id } } };
    await admin.GET('/v1/vaults');
    await admin.GET('/v1/vaults/{id}', vaultPath);
    await admin.PUT('/v1/vaults/{id}', { ...vaultPath, body: { description: 'vault' } });
    expect((await admin.DELETE('/v1/projects/{id}', projectPath)).error?.error.code).toBe(
      'CONFLICT',
    );

    // Resources: a secret, a key, a certificate
    const secret = (
      await admin.POST('/v1/resources', {
        body: { type: 'secret', vault_id: vault.id, name: 'db-password', value: 's3cret' },
        headers: { 'Idempotency-Key': 'contract-secret-1' },
      })
    ).data!;
    const secretPath = { params: { path: { id: secret.id } } };
    await admin.GET('/v1/resources');
    await admin.GET('/v1/resources/{id}', secretPath);
    await admin.PUT('/v1/resources/{id}', {
      ...secretPath,
      body: { value: 's3cret-2' },
      headers: { 'If-Match': '1' },
    });
    expect(
      (
        await admin.PUT('/v1/resources/{id}', {
          ...secretPath,
          body: {},
          headers: { 'If-Match': 'x' },
        })
      ).response.status,
    ).toBe(400);
    expect(
      (
        await admin.PUT('/v1/resources/{id}', {
          ...secretPath,
          body: { value: 'v' },
          headers: { 'If-Match': '1' },
        })
      ).response.status,
    ).toBe(409);
    await admin.GET('/v1/resources/{id}/versions', secretPath);
    const version = { params: { path: { id: secret.id, n: 1 as never } } };
    await admin.GET('/v1/resources/{id}/versions/{n}', version);
    await admin.POST('/v1/resources/{id}/versions/{n}/restore', version);
    await admin.GET('/v1/vaults/{id}/secrets/{name}', {
      params: { path: { id: vault.id, name: 'db-password' } },
    });
    const imported = await admin.POST('/v1/vaults/{id}/secrets/import', {
      ...vaultPath,
      body: {
        secrets: [
          { name: 'db-password', value: 's3cret-3' },
          { name: 'IMPORTED', value: 'i' },
        ],
      },
    });
    expect(imported.data).toEqual({
      created: ['IMPORTED'],
      updated: ['db-password'],
      unchanged: [],
    });
    expect(
      (
        await admin.POST('/v1/vaults/{id}/secrets/import', {
          ...vaultPath,
          body: {
            secrets: [
              { name: 'D', value: '1' },
              { name: 'D', value: '2' },
            ],
          },
        })
      ).error?.error.details?.field,
    ).toBe('secrets.1.name');
    const key = (
      await admin.POST('/v1/resources', {
        body: {
          type: 'key',
          vault_id: vault.id,
          name: 'signing',
          generate: { algorithm: 'ec-p256' },
        },
      })
    ).data!;
    await admin.GET('/v1/vaults/{id}/keys', vaultPath);
    await admin.GET('/v1/vaults/{id}/keys/{res_id}/download', {
      params: { path: { id: vault.id, res_id: key.id } },
      parseAs: 'text',
    });
    const pki = makeTestPki(['contract.example']);
    const certificate = (
      await admin.POST('/v1/resources', {
        body: {
          type: 'certificate',
          vault_id: vault.id,
          name: 'tls',
          value: pki.leafCert,
          private_key: pki.leafKey,
        },
      })
    ).data!;
    await admin.GET('/v1/vaults/{id}/certificates', vaultPath);
    await admin.GET('/v1/vaults/{id}/certificates/{res_id}/download', {
      params: { path: { id: vault.id, res_id: certificate.id } },
      parseAs: 'text',
    });
    const expiring = (
      await admin.POST('/v1/resources', {
        body: {
          type: 'secret',
          vault_id: vault.id,
          name: 'short-lived',
          value: 'soon',
          expires_at: new Date(world.clock.now() + 60_000).toISOString(),
        },
      })
    ).data!;
    world.clock.advance(120_000);
    expect(
      (await admin.GET('/v1/resources/{id}', { params: { path: { id: expiring.id } } })).response
        .status,
    ).toBe(410);
    await admin.DELETE('/v1/resources/{id}', secretPath);
    await admin.POST('/v1/resources/{id}/restore', secretPath);
    expect(
      (
        await admin.GET('/v1/resources/{id}', {
          params: { path: { id: 'res_01jq3v6x1nf4r8s2k9w7y5t3m0' } },
        })
      ).response.status,
    ).toBe(404);

    // API keys (the caller's own first)
    expect((await admin.GET('/v1/me')).data!.role).toBe('admin');
    const created = (await admin.POST('/v1/api-keys', { body: { name: 'ci', role: 'reader' } }))
      .data!;
    const keyPath = { params: { path: { id: created.id } } };
    await admin.GET('/v1/api-keys');
    await admin.GET('/v1/api-keys/{id}', keyPath);
    await admin.PUT('/v1/api-keys/{id}', { ...keyPath, body: { name: 'ci-2' } });
    await admin.DELETE('/v1/api-keys/{id}', keyPath);

    // Webhooks, deliveries, events
    const webhook = (
      await admin.POST('/v1/webhooks', {
        body: { url: 'http://127.0.0.1:9/hook', events: ['*'] },
      })
    ).data!;
    const hookPath = { params: { path: { id: webhook.id } } };
    await admin.GET('/v1/webhooks');
    await admin.GET('/v1/webhooks/{id}', hookPath);
    await admin.PUT('/v1/webhooks/{id}', { ...hookPath, body: { description: 'ci' } });
    await admin.POST('/v1/webhooks/{id}/rotate-secret', hookPath);
    const ping = (await admin.POST('/v1/webhooks/{id}/test', hookPath)).data!;
    const deliveries = (await admin.GET('/v1/webhooks/{id}/deliveries', hookPath)).data!;
    const deliveryId = deliveries.data[0]?.id ?? (ping as { id: string }).id;
    const deliveryPath = { params: { path: { id: webhook.id, dlv_id: deliveryId } } };
    await admin.GET('/v1/webhooks/{id}/deliveries/{dlv_id}', deliveryPath);
    await admin.POST('/v1/webhooks/{id}/deliveries/{dlv_id}/retry', deliveryPath);
    const events = (await admin.GET('/v1/events')).data!;
    // The stream itself never ends; its refusals are JSON errors like any other.
    const badResume = await admin.GET('/v1/events/stream', {
      params: { query: { last_event_id: 'not-an-event' } },
    });
    expect(badResume.response.status).toBe(400);
    if (events.data[0]) {
      await admin.GET('/v1/events/{id}', { params: { path: { id: events.data[0].id } } });
    } else {
      await admin.GET('/v1/events/{id}', {
        params: { path: { id: 'evt_01jq3v6x1nf4r8s2k9w7y5t3m0' } },
      });
    }
    await admin.DELETE('/v1/webhooks/{id}', hookPath);

    // Readiness and metrics (text/plain: openapi-fetch must not parse it as JSON).
    await admin.GET('/v1/health/ready');
    await admin.GET('/metrics', { parseAs: 'text' });
    // The caller and console sessions (with a bearer key the current session is a 404)
    await admin.GET('/v1/me');
    await admin.POST('/v1/sessions');
    await admin.GET('/v1/sessions/current');
    await admin.DELETE('/v1/sessions/current');

    // Audit log, then tear down
    const audit = (await admin.GET('/v1/audit-logs', { params: { query: { limit: '5' } } })).data!;
    await admin.GET('/v1/audit-logs/{id}', { params: { path: { id: audit.data[0]!.id } } });
    await admin.GET('/v1/audit-logs/verify');
    for (const resource of [secret, key, certificate, expiring]) {
      await admin.DELETE('/v1/resources/{id}', { params: { path: { id: resource.id } } });
    }
    await admin.DELETE('/v1/vaults/{id}', vaultPath);
    await admin.DELETE('/v1/projects/{id}', projectPath);

    const spec = JSON.parse(specText) as { paths: Record<string, Record<string, unknown>> };
    const everyOperation = Object.entries(spec.paths).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method} ${path}`),
    );
    expect(everyOperation.filter((operation) => !called.has(operation))).toEqual([]);
    const seen = new Set(statuses.map((line) => line.split(' ').pop()));
    for (const status of ['200', '201', '400', '401', '403', '404', '409', '410']) {
      expect(seen.has(status), status).toBe(true);
    }
    expect(statuses.filter((line) => line.endsWith(' 500'))).toEqual([]);
    if (violations.length) console.log(prismLog.slice(-4000));
    expect(violations).toEqual([]);
  }, 120_000);
});
