/**
 * Rules every API input follows, through the real routes on one instance:
 * - impossible dates are a 400 naming the field wherever a time is taken, never rolled over into
 *   another day (an API key asked to expire on February 30 used to expire on March 2);
 * - every list refuses a query parameter it does not know (`?rol=admin` must not silently list
 *   everything);
 * - free text that ends up in terminals and logs (key names, descriptions) refuses every control
 *   character: C0, DEL and C1 (U+009B is a terminal's escape-sequence introducer);
 * - errors about submitted references name the field and the rule, never the submitted value.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { errorOf, openWorld, type World } from './resources-harness.ts';

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

describe('impossible dates', () => {
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
    // A zone offset must not carry an expiry past what the API can show (year 10000).
    const beyond = await w.send(w.admin, 'POST', '/v1/api-keys', {
      name: 'dated',
      role: 'reader',
      expires_at: '9999-12-31T23:59:59-23:59',
    });
    expect(beyond.status).toBe(400);
    expect(beyond.json.error.details).toEqual({
      field: 'expires_at',
      reason: 'Must be no later than 9999-12-31T23:59:59Z',
    });
    const latest = await w.send(w.admin, 'PUT', `/v1/api-keys/${ok.json.id}`, {
      expires_at: '9999-12-31T23:59:59Z',
    });
    expect(latest.status).toBe(200);
    expect(latest.json.expires_at).toBe('9999-12-31T23:59:59Z');
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

describe('errors never echo submitted values', () => {
  const expectRefused = async (path: string, body: unknown, field: string, marker: string) => {
    const reply = await w.send(w.admin, 'POST', path, body);
    expect(reply.status).toBe(400);
    expect(reply.json.error.details.field).toBe(field);
    expect(reply.text).not.toContain(marker);
  };

  test('webhook events, API key projects, vaults and scopes', async () => {
    await expectRefused(
      '/v1/webhooks',
      { url: 'https://93.184.216.34/x', events: ['resource.created', 'bogus.MARKERevt'] },
      'events',
      'MARKERevt',
    );
    const missingProject = 'prj_01m8cxxxxxxxxxxxxxxxxxxxxx';
    await expectRefused(
      '/v1/api-keys',
      { name: 'k', role: 'reader', project_ids: [missingProject] },
      'project_ids',
      missingProject,
    );
    const missingVault = 'vlt_01m8cxxxxxxxxxxxxxxxxxxxxx';
    await expectRefused(
      '/v1/api-keys',
      { name: 'k', role: 'reader', vault_ids: [missingVault] },
      'vault_ids',
      missingVault,
    );
    await expectRefused(
      '/v1/api-keys',
      { name: 'k', role: 'reader', scopes: ['resources:read', 'resources:write'] },
      'scopes',
      'resources:write',
    );
  });
});

describe('control characters in free text', () => {
  test('refused in key names, project and webhook descriptions; newlines allowed in descriptions', async () => {
    for (const bad of ['a\u009b31mred', 'a\u0085b', 'a\u001bb', 'a\u007fb']) {
      const key = await w.send(w.admin, 'POST', '/v1/api-keys', { name: bad, role: 'reader' });
      expect(key.status).toBe(400);
      expect(key.json.error.details.field).toBe('name');
      const project = await w.send(w.admin, 'POST', '/v1/projects', {
        name: 'p',
        description: bad,
      });
      expect(project.status).toBe(400);
      expect(project.json.error.details.field).toBe('description');
      const hook = await w.send(w.admin, 'POST', '/v1/webhooks', {
        url: 'https://93.184.216.34/x',
        events: ['*'],
        description: bad,
      });
      expect(hook.status).toBe(400);
      expect(hook.json.error.details.field).toBe('description');
    }
    const multiline = await w.send(w.admin, 'POST', '/v1/projects', {
      name: 'p',
      description: 'line one\n\tline two',
    });
    expect(multiline.status).toBe(201);
  });
});

describe('list query parameters', () => {
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

describe('an empty update', () => {
  test('is the unchanged object on every update route, and 409 on a revoked key, never a 500', async () => {
    const project = await w.send(w.admin, 'POST', '/v1/projects', { name: 'empty-update' });
    expect(project.status).toBe(201);
    const vault = await w.send(w.admin, 'POST', '/v1/vaults', {
      project_id: project.json.id,
      name: 'empty-update',
    });
    expect(vault.status).toBe(201);
    const resource = await w.send(w.admin, 'POST', '/v1/resources', {
      vault_id: vault.json.id,
      type: 'secret',
      name: 'empty-update',
      value: 'v',
    });
    expect(resource.status).toBe(201);
    const key = await w.send(w.admin, 'POST', '/v1/api-keys', { name: 'empty', role: 'reader' });
    expect(key.status).toBe(201);
    for (const path of [
      `/v1/projects/${project.json.id}`,
      `/v1/vaults/${vault.json.id}`,
      `/v1/resources/${resource.json.id}`,
      `/v1/webhooks/${webhook}`,
      `/v1/api-keys/${key.json.id}`,
    ]) {
      const before = await w.send(w.admin, 'GET', path);
      const reply = await w.send(w.admin, 'PUT', path, {});
      expect([path, reply.status]).toEqual([path, 200]);
      expect(reply.json.id).toBe(before.json.id);
    }
    expect((await w.send(w.admin, 'DELETE', `/v1/api-keys/${key.json.id}`)).status).toBe(200);
    const revoked = await w.send(w.admin, 'PUT', `/v1/api-keys/${key.json.id}`, {});
    expect(revoked.status).toBe(409);
    expect(revoked.json.error.code).toBe('CONFLICT');
    expect((await w.send(w.admin, 'DELETE', `/v1/resources/${resource.json.id}`)).status).toBe(200);
    const deleted = await w.send(w.admin, 'PUT', `/v1/resources/${resource.json.id}`, {});
    expect(deleted.status).toBe(404);
  });
});

describe('echoed names', () => {
  test('an unknown field or parameter name comes back bounded and without control characters', async () => {
    const huge = 'k'.repeat(200_000);
    const body = await w.send(w.admin, 'POST', '/v1/projects', { name: 'echo', [huge]: 1 });
    expect(body.status).toBe(400);
    expect(body.json.error.details.reason).toBe('Unknown field');
    expect(body.json.error.details.field).toBe(`${'k'.repeat(63)}…`);
    expect(body.text.length).toBeLessThan(500);

    const query = await w.send(w.admin, 'GET', `/v1/projects?${'q'.repeat(10_000)}=1`);
    expect(query.status).toBe(400);
    expect(query.json.error.details).toEqual({
      field: `${'q'.repeat(63)}…`,
      reason: 'Unknown field',
      location: 'query',
    });

    const escapes = await w.send(
      w.admin,
      'GET',
      '/v1/projects?%1B%5B31mevil%1B%5B0m%07%C2%9B%7F=1',
    );
    expect(escapes.status).toBe(400);
    expect(escapes.json.error.details.field).toBe('evil');
    const nested = await w.send(w.admin, 'POST', '/v1/projects', {
      name: 'echo',
      ['\u001b]0;title\u0007x\u0000y']: 1,
    });
    expect(nested.status).toBe(400);
    expect(nested.json.error.details.field).toBe('xy');
  });
});
