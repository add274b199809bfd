/**
 * `GET /v1/audit-logs/verify` in process: the console's audit chain status. It runs the keyed
 * chain verification read-only, names the first broken entry, reuses one walk for a minute, and
 * is itself audited.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { manualClock } from '../src/clock.ts';
import { api, createWebhookTestInstance, type WebhookTestInstance } from './fixtures/webhooks.ts';
import { tempDir } from './harness.ts';

type Verify = {
  intact: boolean;
  verified: number;
  head: { seq: number; id: string | null; hash: string };
  problem: { kind: string; seq: number; id: string | null; message: string } | null;
  checked_at: string;
};

describe('GET /v1/audit-logs/verify', () => {
  const dir = tempDir();
  const clock = manualClock(Date.now());
  let t: WebhookTestInstance;

  beforeAll(async () => {
    t = createWebhookTestInstance(dir.path, clock);
    for (const name of ['alpha', 'beta', 'gamma'])
      expect((await api(t, 'POST', '/v1/projects', { name })).status).toBe(201);
  });
  afterAll(async () => {
    await t.close();
    dir[Symbol.dispose]();
  });

  test('an intact chain: intact, every entry verified, the head named', async () => {
    const { status, body } = await api<Verify>(t, 'GET', '/v1/audit-logs/verify');
    expect(status).toBe(200);
    expect(body.intact).toBe(true);
    expect(body.problem).toBeNull();
    expect(body.verified).toBeGreaterThanOrEqual(3);
    expect(body.head.seq).toBe(body.verified);
    expect(body.head.hash).toMatch(/^[0-9a-f]{64}$/);
    // The head is the newest entry before this request's own audit.verify entry.
    const newest = t.instance.sqlite
      .query<
        { id: string; action: string },
        []
      >('SELECT id, action FROM audit_log ORDER BY seq DESC LIMIT 2')
      .all();
    expect(newest[0]!.action).toBe('audit.verify');
    expect(body.head.id).toBe(newest[1]!.id);
  });

  test('an edited entry is named after the reuse window; the check itself is audited', async () => {
    t.instance.sqlite.run("UPDATE audit_log SET actor_name = 'someone else' WHERE seq = 2");
    // Within the minute the earlier walk is reused (checked_at says when it ran).
    const cached = await api<Verify>(t, 'GET', '/v1/audit-logs/verify');
    expect(cached.body.intact).toBe(true);
    clock.advance(60_000);
    const { body } = await api<Verify>(t, 'GET', '/v1/audit-logs/verify');
    expect(body.intact).toBe(false);
    expect(body.problem).toMatchObject({ kind: 'changed', seq: 2 });
    expect(body.verified).toBe(1);
    expect(Date.parse(body.checked_at)).toBeGreaterThan(Date.parse(cached.body.checked_at));
    const audited = await api<{ data: { action: string; outcome: string }[] }>(
      t,
      'GET',
      '/v1/audit-logs?action=audit.verify',
    );
    expect(audited.body.data.length).toBe(3);
    expect(audited.body.data.every((entry) => entry.outcome === 'success')).toBe(true);
  });
});
