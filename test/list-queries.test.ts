/**
 * Every list refuses a query parameter it does not know with a 400 naming it: a typo in a filter
 * (`?rol=admin`, `?project=...`) must not silently list everything.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { errorOf, openWorld, type World } from './resources-harness.ts';

describe('list query parameters', () => {
  let w: World;
  let webhook: string;
  beforeAll(async () => {
    w = openWorld();
    const created = await w.send(w.admin, 'POST', '/v1/webhooks', {
      url: 'https://93.184.216.34/hook',
      events: ['*'],
    });
    expect(created.status).toBe(201);
    webhook = created.json.id;
  });
  afterAll(async () => {
    await w.close();
  });

  test('an unknown parameter is a 400 naming it, on every list', async () => {
    const lists = [
      '/v1/projects',
      '/v1/vaults',
      '/v1/resources',
      '/v1/api-keys',
      '/v1/webhooks',
      `/v1/webhooks/${webhook}/deliveries`,
      '/v1/events',
      '/v1/audit-logs',
    ];
    for (const list of lists) {
      expect((await w.send(w.admin, 'GET', `${list}?page=1`)).status).toBe(200);
      const typo = await w.send(w.admin, 'GET', `${list}?rol=admin`);
      expect(typo.status).toBe(400);
      expect(typo.json.error.details).toEqual({
        field: 'rol',
        reason: 'Unknown field',
        location: 'query',
      });
      expect(typo.json).toMatchObject(errorOf('INVALID_REQUEST', 'rol'));
    }
  });
});
