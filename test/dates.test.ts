/**
 * Impossible dates through the API: refused with a 400 naming the field wherever a time is
 * taken, never rolled over into another day (an API key asked to expire on February 30 used to
 * expire on March 2).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { errorOf, openWorld, type World } from './resources-harness.ts';

describe('impossible dates', () => {
  let w: World;
  beforeAll(() => {
    w = openWorld();
  });
  afterAll(async () => {
    await w.close();
  });

  test('API key expires_at: February 30 and hour 24 are 400, not another day', async () => {
    for (const expires_at of [
      '2037-02-30T00:00:00Z',
      '2037-04-31T00:00:00Z',
      '2037-01-10T24:00:00Z',
    ]) {
      const created = await w.send(w.admin, 'POST', '/v1/api-keys', {
        name: 'dated',
        role: 'reader',
        expires_at,
      });
      expect(created.status).toBe(400);
      expect(created.json).toMatchObject(errorOf('INVALID_REQUEST', 'expires_at'));
    }
    const ok = await w.send(w.admin, 'POST', '/v1/api-keys', {
      name: 'dated',
      role: 'reader',
      expires_at: '2036-02-29T00:00:00Z',
    });
    expect(ok.status).toBe(201);
    expect(ok.json.expires_at).toBe('2036-02-29T00:00:00Z');
    const updated = await w.send(w.admin, 'PUT', `/v1/api-keys/${ok.json.id}`, {
      expires_at: '2037-02-29T00:00:00Z',
    });
    expect(updated.status).toBe(400);
    expect(updated.json).toMatchObject(errorOf('INVALID_REQUEST', 'expires_at'));
  });

  test('audit log and event filters: since/until on impossible dates are 400 naming them', async () => {
    for (const [path, field] of [
      ['/v1/audit-logs?since=2027-02-30T00:00:00Z', 'since'],
      ['/v1/audit-logs?until=2027-02-30', 'until'],
      ['/v1/events?since=2027-02-30T00:00:00Z', 'since'],
    ] as const) {
      const reply = await w.send(w.admin, 'GET', path);
      expect(reply.status).toBe(400);
      expect(reply.json).toMatchObject(errorOf('INVALID_REQUEST', field));
    }
    expect((await w.send(w.admin, 'GET', '/v1/audit-logs?since=2027-02-28')).status).toBe(200);
  });
});
