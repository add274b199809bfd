/**
 * Large JSON bodies over a real socket: a body past Bun's 16 KiB cork buffer is sent as a
 * one-chunk stream (chunked transfer encoding) because Bun 1.4 writes a response finished after
 * an await uncorked otherwise, one send() per header fragment (src/http/fields.ts `jsonText`;
 * the cost is measured in bench/resources.ts). Small bodies keep their Content-Length.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { openWorld, type World } from './resources-harness.ts';

describe('large list pages and vault reads over a socket', () => {
  let w: World;
  let server: ReturnType<typeof Bun.serve>;
  let vault: string;

  beforeAll(async () => {
    w = openWorld();
    const project = (await w.send(w.admin, 'POST', '/v1/projects', { name: 'p' })).json.id;
    vault = (await w.send(w.admin, 'POST', '/v1/vaults', { project_id: project, name: 'v' })).json
      .id;
    for (let i = 0; i < 60; i++) {
      const created = await w.send(w.admin, 'POST', '/v1/resources', {
        type: 'secret',
        vault_id: vault,
        name: `secret-${String(i).padStart(2, '0')}`,
        description: 'd'.repeat(200),
        value: `value-${i}-${'v'.repeat(200)}`,
      });
      expect(created.status).toBe(201);
    }
    server = Bun.serve({
      port: 0,
      hostname: '127.0.0.1',
      fetch: (request) => w.app.handle(request),
    });
  });
  afterAll(async () => {
    await server.stop(true);
    w.close();
  });

  const get = (path: string) =>
    fetch(`http://127.0.0.1:${server.port}${path}`, {
      headers: { authorization: `Bearer ${w.admin}` },
    });

  test('a page past 16 KiB is streamed whole; a small page keeps its Content-Length', async () => {
    const large = await get(`/v1/resources?vault_id=${vault}&limit=60`);
    expect(large.status).toBe(200);
    expect(large.headers.get('transfer-encoding')).toBe('chunked');
    expect(large.headers.get('content-type')).toBe('application/json;charset=utf-8');
    const text = await large.text();
    expect(text.length).toBeGreaterThan(16 * 1024);
    const body = JSON.parse(text) as { data: { name: string }[]; pagination: { total: number } };
    expect(body.data).toHaveLength(60);
    expect(body.pagination.total).toBe(60);

    const small = await get(`/v1/resources?vault_id=${vault}&limit=2`);
    expect(small.headers.get('transfer-encoding')).toBeNull();
    expect(Number(small.headers.get('content-length'))).toBe((await small.text()).length);
  });

  test('an audit log page past 16 KiB is streamed whole, entries as documented', async () => {
    const response = await get('/v1/audit-logs?limit=100');
    expect(response.status).toBe(200);
    expect(response.headers.get('transfer-encoding')).toBe('chunked');
    const body = (await response.json()) as { data: Record<string, unknown>[] };
    expect(body.data.length).toBeGreaterThanOrEqual(60);
    for (const entry of body.data) {
      for (const key of Object.keys(entry)) {
        expect([
          'id',
          'at',
          'actor',
          'action',
          'target',
          'outcome',
          'status',
          'ip',
          'user_agent',
          'request_id',
          'details',
          'hash',
          'prev_hash',
        ]).toContain(key);
      }
    }
  });

  test('a vault read past 16 KiB is streamed whole, every value in it', async () => {
    const response = await get(`/v1/vaults/${vault}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('transfer-encoding')).toBe('chunked');
    const body = (await response.json()) as { secrets: { name: string; value: string }[] };
    expect(body.secrets).toHaveLength(60);
    expect(body.secrets[59]!.value).toBe(`value-59-${'v'.repeat(200)}`);
  });
});
