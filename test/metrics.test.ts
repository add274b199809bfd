/**
 * GET /metrics: who may scrape it, that its output passes `promtool check metrics` after traffic
 * of every kind, that values move with what happened (a 429, a webhook delivery, a commit), and
 * that no label carries an id, a token or a raw path. Real app, real database, real receiver.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../src/clock.ts';
import { emitEvent } from '../src/ledger/emit.ts';
import { buildFeatures } from '../src/features.ts';
import { insertApiKey, newApiKeyId } from '../src/keys/service.ts';
import { buildApp } from '../src/server.ts';
import { createWebhookTestInstance, startReceiver, type Receiver } from './fixtures/webhooks.ts';
import { metricsFor } from '../src/metrics/metrics.ts';
import { call, REPO_ROOT, tempDir } from './harness.ts';
import { promtool, promtoolRules, sample } from './metrics-helpers.ts';

describe('GET /metrics', () => {
  const dir = tempDir('secryn-metrics-');
  const t = createWebhookTestInstance(dir.path, systemClock, {
    // A tight per-key limit for one key is set on the key itself (below); the defaults stay wide.
    webhooks: { poll_interval_ms: 10 },
  });
  const { instance } = t;
  const features = buildFeatures(instance);
  const app = buildApp(instance, {
    features: features.features,
    recordOutcome: features.recordOutcome,
  });
  const key = (grant: Record<string, unknown>) =>
    insertApiKey(
      instance.db,
      newApiKeyId(),
      {
        name: 'k',
        role: 'admin',
        projectIds: [],
        vaultIds: [],
        scopes: null,
        expiresAt: null,
        ...grant,
      } as never,
      'test',
      Date.now(),
    ).token;
  const admin = t.admin.authorization;
  const scraper = `Bearer ${key({ role: 'admin', scopes: ['metrics:read'] })}`;
  const reader = `Bearer ${key({ role: 'reader' })}`;
  const limited = key({ role: 'reader', rateLimit: { burst: 1, requestsPerMinute: 1 } });
  let receiver: Receiver;
  const send = (method: string, path: string, authorization?: string, body?: unknown) =>
    call(app, method, path, { body, headers: authorization ? { authorization } : {} });
  const scrape = async () => {
    const response = await send('GET', '/metrics', scraper);
    expect(response.status).toBe(200);
    return response.text();
  };

  beforeAll(async () => {
    receiver = startReceiver();
    await features.start();
  });
  afterAll(async () => {
    receiver.stop();
    await features.stop();
    await t.close();
    dir[Symbol.dispose]();
  });

  test('admins and keys scoped to metrics:read may scrape; others may not', async () => {
    expect((await send('GET', '/metrics', admin)).status).toBe(200);
    const scraped = await send('GET', '/metrics', scraper);
    expect(scraped.status).toBe(200);
    expect(scraped.headers.get('content-type')).toStartWith('text/plain; version=0.0.4');
    // The scope is all the scraper key holds.
    expect((await send('GET', '/v1/projects', scraper)).status).toBe(403);
    expect((await send('GET', '/metrics', reader)).status).toBe(403);
    const anonymous = await send('GET', '/metrics');
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toContain('Bearer');
  });

  test('traffic of every kind: promtool passes, values move, labels are templates', async () => {
    const before = await scrape();
    // Writes and reads with ids in their paths, errors, unmatched paths, a 405, a 401 and 429s.
    const project = (await (
      await send('POST', '/v1/projects', admin, { name: 'metrics' })
    ).json()) as {
      id: string;
    };
    const vault = (await (
      await send('POST', '/v1/vaults', admin, { project_id: project.id, name: 'v' })
    ).json()) as { id: string };
    const secret = (await (
      await send('POST', '/v1/resources', admin, {
        type: 'secret',
        vault_id: vault.id,
        name: 'db-password',
        value: 'S3CRET-VALUE-MARKER',
        expires_at: new Date(Date.now() + 3 * 86_400_000).toISOString(),
      })
    ).json()) as { id: string };
    expect(secret.id).toStartWith('res_');
    expect((await send('GET', `/v1/resources/${secret.id}?reveal=true`, admin)).status).toBe(200);
    expect((await send('GET', `/v1/resources/res_01jq3v6x1nf4r8s2k9w7y5t3m0`, admin)).status).toBe(
      404,
    );
    expect(
      (await send('GET', '/v1/no/such/route/res_01jq3v6x1nf4r8s2k9w7y5t3m0', admin)).status,
    ).toBe(404);
    expect((await send('PATCH', `/v1/projects/${project.id}`, admin)).status).toBe(405);
    expect((await send('GET', `/v1/resources/${secret.id}`, 'Bearer scr_not-a-token')).status).toBe(
      401,
    );
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++)
      statuses.push((await send('GET', '/v1/projects', `Bearer ${limited}`)).status);
    expect(statuses).toContain(429);
    // A webhook delivery, through the worker serve runs.
    const hook = (await (
      await send('POST', '/v1/webhooks', admin, { url: `${receiver.url}/hook`, events: ['*'] })
    ).json()) as { id: string; secret: string };
    receiver.setSecrets([hook.secret]);
    await instance.writes.run(() =>
      emitEvent(instance.db, instance.clock, {
        type: 'resource.updated',
        projectId: null,
        object: { n: 1 },
      }),
    );
    await receiver.waitFor(1, 5_000);
    const deadline = Date.now() + 5_000;
    let after = await scrape();
    while (sample(after, 'secryn_webhook_delivery_attempts_total', { outcome: 'succeeded' }) < 1) {
      if (Date.now() > deadline) throw new Error('the delivery was not counted');
      await Bun.sleep(20);
      after = await scrape();
    }

    await promtool(after);
    const refused = (text: string) =>
      sample(text, 'secryn_rate_limit_refusals_total', { limiter: 'key' });
    expect(refused(after) - refused(before)).toBe(statuses.filter((s) => s === 429).length);
    expect(
      sample(after, 'secryn_http_requests_total', {
        method: 'GET',
        route: '/v1/resources/:id',
        status: '200',
      }),
    ).toBe(1);
    expect(
      sample(after, 'secryn_http_requests_total', {
        method: 'GET',
        route: '/v1/resources/:id',
        status: '404',
      }),
    ).toBe(1);
    expect(
      sample(after, 'secryn_http_requests_total', {
        method: 'GET',
        route: '/v1/resources/:id',
        status: '401',
      }),
    ).toBe(1);
    expect(
      sample(after, 'secryn_http_requests_total', {
        method: 'PATCH',
        route: '/v1/projects/:id',
        status: '405',
      }),
    ).toBe(1);
    expect(
      sample(after, 'secryn_http_requests_total', {
        method: 'GET',
        route: 'unmatched',
        status: '404',
      }),
    ).toBe(1);
    expect(
      sample(after, 'secryn_http_request_duration_seconds_count', {
        method: 'POST',
        route: '/v1/resources',
      }),
    ).toBe(1);
    expect(sample(after, 'secryn_db_commit_batch_size_count', { queue: 'writes' })).toBeGreaterThan(
      0,
    );
    expect(
      sample(after, 'secryn_db_commit_duration_seconds_count', { queue: 'audit' }),
    ).toBeGreaterThan(0);
    expect(sample(after, 'secryn_resources_expiring', { within_days: '7' })).toBe(1);
    expect(sample(after, 'secryn_resources_expiring', { within_days: '1' })).toBe(0);
    expect(sample(after, 'secryn_keyring_current_data_key_version', {})).toBe(1);
    expect(sample(after, 'secryn_keyring_values_under_old_keys', {})).toBe(0);
    expect(sample(after, 'secryn_db_file_size_bytes', { file: 'database' })).toBeGreaterThan(0);
    expect(sample(after, 'secryn_backup_age_seconds', {})).toBe(Infinity);
    expect(sample(after, 'process_resident_memory_bytes', {})).toBeGreaterThan(0);
    expect(sample(after, 'process_open_fds', {})).toBeGreaterThan(0);
    expect(after).toMatch(/^secryn_build_info\{version="[^"]+",runtime="bun [^"]+"\} 1$/m);

    // No id, token, secret or raw path in any label value.
    const labels = [...after.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]!).join('\n');
    for (const forbidden of [
      secret.id,
      project.id,
      vault.id,
      hook.id,
      'scr_',
      'S3CRET',
      'db-password',
      'no/such',
    ]) {
      expect(labels).not.toContain(forbidden);
    }
    for (const route of labels.matchAll(/route="([^"]*)"/g)) {
      expect(route[1]!).toMatch(/^(unmatched|\/[a-z0-9/:_*-]*)$/);
      expect(route[1]!).not.toMatch(/_[0-9a-z]{26}/);
    }
  });

  test('the backup age comes from whatever records backups', async () => {
    metricsFor(instance).setLastBackupSource(() => Date.now() - 90_000);
    const age = sample(await scrape(), 'secryn_backup_age_seconds', {});
    expect(age).toBeGreaterThanOrEqual(90);
    expect(age).toBeLessThan(120);
  });

  test('metrics.enabled = false answers 404', async () => {
    metricsFor(instance).enabled = false;
    try {
      expect((await send('GET', '/metrics', admin)).status).toBe(404);
    } finally {
      metricsFor(instance).enabled = true;
    }
  });
});

describe('the README alert rules', () => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const rules = /```yaml\n(groups:[\s\S]*?)```/.exec(readme)?.[1];

  test('pass promtool check rules', async () => {
    expect(rules).toBeDefined();
    using dir = tempDir();
    const file = join(dir.path, 'secryn-rules.yml');
    writeFileSync(file, rules!);
    const out = await promtoolRules(file);
    if (out) expect(out).toContain('SUCCESS: 6 rules found');
  });

  test('name only metrics that exist', async () => {
    using dir = tempDir();
    const t = createWebhookTestInstance(dir.path, systemClock);
    try {
      const text = await metricsFor(t.instance).render();
      for (const [name] of rules!.matchAll(/\bsecryn_[a-z_]+/g)) {
        expect(text).toMatch(new RegExp(`^# TYPE ${name.replace(/_bucket$/, '')} `, 'm'));
      }
    } finally {
      await t.close();
    }
  });
});
