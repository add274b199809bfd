/**
 * Free text that ends up in terminals and logs (API key names, descriptions) refuses every
 * control character: C0, DEL and C1 (U+0080–U+009F; U+009B is a terminal's escape-sequence
 * introducer). Newlines and tabs stay allowed in descriptions.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { openWorld, type World } from './resources-harness.ts';

describe('control characters in free text', () => {
  let w: World;
  beforeAll(() => {
    w = openWorld();
  });
  afterAll(async () => {
    await w.close();
  });

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
