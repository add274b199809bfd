/**
 * A key that may write but not reveal cannot confirm a guess of a secret's value (issue 13,
 * item 4): for it, writing the current value and writing another one answer alike — status,
 * body, version, event and audit entry — and both make a new version. A revealer keeps the
 * documented no-op for an unchanged value.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { openWorld, type Reply, type World } from './resources-harness.ts';

let w: World;
afterEach(async () => {
  await w?.close();
});

/** The reply with what legitimately differs between two writes (times, version) masked. */
function shape(reply: Reply) {
  const { updated_at, version, ...rest } = reply.json;
  expect(typeof updated_at).toBe('string');
  return { status: reply.status, body: rest };
}

/** What the write left in the event feed and the audit log (newest entry of each). */
async function traces(world: World) {
  const events = (await world.send(world.admin, 'GET', '/v1/events?limit=1')).json.data;
  const audit = (await world.send(world.admin, 'GET', '/v1/audit-logs?limit=3')).json.data;
  const write = audit.find(
    (entry: any) => entry.action !== 'event.list' && entry.action !== 'audit.list',
  );
  const { id, at, request_id, hash, prev_hash, ...entry } = write ?? {};
  const [event] = events;
  return {
    event: {
      type: event.type,
      object: { ...event.object, updated_at: undefined, version: undefined },
    },
    eventCount: (await world.send(world.admin, 'GET', '/v1/events?limit=100')).json.data.length,
    audit: entry,
  };
}

describe('writing a guess without resources:reveal', () => {
  test('a right and a wrong guess answer alike, and both make a new version', async () => {
    w = openWorld();
    const project = (await w.send(w.admin, 'POST', '/v1/projects', { name: 'p' })).json.id;
    const vault = (await w.send(w.admin, 'POST', '/v1/vaults', { project_id: project, name: 'v' }))
      .json.id;
    const secret = (
      await w.send(w.admin, 'POST', '/v1/resources', {
        type: 'secret',
        vault_id: vault,
        name: 'DB_PASSWORD',
        value: 'hunter2',
      })
    ).json.id;
    const writer = w.key({
      role: 'contributor',
      scopes: ['projects:read', 'vaults:read', 'resources:read', 'resources:write'],
    }).token;
    expect((await w.send(writer, 'GET', `/v1/resources/${secret}`)).json.value).toBeUndefined();

    w.clock.advance(1000);
    const right = await w.send(writer, 'PUT', `/v1/resources/${secret}`, { value: 'hunter2' });
    const afterRight = await traces(w);
    w.clock.advance(1000);
    const wrong = await w.send(writer, 'PUT', `/v1/resources/${secret}`, { value: 'letmein' });
    const afterWrong = await traces(w);

    expect(right.status).toBe(200);
    expect(right.json.version).toBe(2);
    expect(wrong.json.version).toBe(3);
    expect(right.json.updated_at).not.toBe(wrong.json.updated_at);
    expect(shape(right)).toEqual(shape(wrong));
    expect(afterRight.event).toEqual(afterWrong.event);
    expect(afterRight.event.type).toBe('resource.updated');
    expect(afterWrong.eventCount).toBe(afterRight.eventCount + 1);
    expect(afterRight.audit).toEqual(afterWrong.audit);
    // Same headers too (ETag, Location…), but for the request id and the times.
    const headers = (reply: Reply) =>
      [...reply.headers].filter(
        ([name]) => !['x-request-id', 'date', 'x-ratelimit-reset'].includes(name),
      );
    expect(headers(right)).toEqual(headers(wrong));

    // Undoing a guess by a restore is a new version too, whatever the value restored.
    const restored = await w.send(writer, 'POST', `/v1/resources/${secret}/versions/1/restore`);
    expect(restored.json.version).toBe(4);
    const again = await w.send(writer, 'POST', `/v1/resources/${secret}/versions/4/restore`);
    expect(again.json.version).toBe(5);
  });

  test('a revealer still gets the no-op for the current value', async () => {
    w = openWorld();
    const project = (await w.send(w.admin, 'POST', '/v1/projects', { name: 'p' })).json.id;
    const vault = (await w.send(w.admin, 'POST', '/v1/vaults', { project_id: project, name: 'v' }))
      .json.id;
    const secret = (
      await w.send(w.admin, 'POST', '/v1/resources', {
        type: 'secret',
        vault_id: vault,
        name: 'DB_PASSWORD',
        value: 'hunter2',
      })
    ).json.id;
    const revealer = w.key({ role: 'contributor' }).token;
    w.clock.advance(1000);
    const same = await w.send(revealer, 'PUT', `/v1/resources/${secret}`, { value: 'hunter2' });
    expect(same.status).toBe(200);
    expect(same.json.version).toBe(1);
    expect(same.json.updated_at).toBe(same.json.created_at);
    const other = await w.send(revealer, 'PUT', `/v1/resources/${secret}`, { value: 'letmein' });
    expect(other.json.version).toBe(2);
  });
});
