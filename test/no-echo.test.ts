/**
 * Errors about submitted references name the field and the rule, never the submitted value
 * (README: validation errors never echo what was sent).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { openWorld, type World } from './resources-harness.ts';

describe('errors never echo submitted values', () => {
  let w: World;
  beforeAll(() => {
    w = openWorld();
  });
  afterAll(async () => {
    await w.close();
  });

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
