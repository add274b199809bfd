/**
 * `POST /v1/vaults/:id/secrets/import`: the atomic bulk create/update behind `secryn env
 * import`. Round trips, unchanged detection (and its absence for writers who may not reveal),
 * all-or-nothing refusals naming `secrets.N.<field>`, permissions, idempotent retries and body
 * limits, on a real instance through `app.handle`.
 */
import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import { errorOf, openWorld, type World } from './resources-harness.ts';

const VALUES = {
  SPACES: 'a value with  spaces ',
  LINES: 'line one\nline two\r\n',
  EQUALS: 'k=v==&x=1',
  UNICODE: 'zürich — 東京 🔑',
};

describe('POST /v1/vaults/:id/secrets/import', () => {
  let w: World;
  let projectId: string;
  let vaultId: string;
  const path = () => `/v1/vaults/${vaultId}/secrets/import`;
  const importAs = (token: string, secrets: unknown, headers: Record<string, string> = {}) =>
    w.send(token, 'POST', path(), { secrets }, headers);
  const valueOf = async (name: string) =>
    (await w.send(w.admin, 'GET', `/v1/vaults/${vaultId}/secrets/${encodeURIComponent(name)}`))
      .json;
  /** What an all-or-nothing refusal must leave untouched. */
  const snapshot = () => ({
    resources: w.count('resources'),
    versions: w.count('resource_versions'),
    events: w.count('events'),
    changeEntries: (
      w.instance.sqlite
        .query(
          "SELECT count(*) AS n FROM audit_log WHERE action IN ('resource.created', 'resource.updated')",
        )
        .get() as { n: number }
    ).n,
  });

  beforeEach(async () => {
    w = openWorld({ resources: { max_value_bytes: 1024 } });
    projectId = (await w.send(w.admin, 'POST', '/v1/projects', { name: 'p' })).json.id;
    vaultId = (await w.send(w.admin, 'POST', '/v1/vaults', { project_id: projectId, name: 'v' }))
      .json.id;
  });
  afterEach(() => w.close());

  test('round trip: values with spaces, newlines, "=" and unicode come back exactly', async () => {
    const reply = await importAs(
      w.admin,
      Object.entries(VALUES).map(([name, value]) => ({ name, value })),
    );
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({ created: Object.keys(VALUES), updated: [], unchanged: [] });
    for (const [name, value] of Object.entries(VALUES)) {
      const secret = await valueOf(name);
      expect(secret.value).toBe(value);
      expect(secret.content_type).toBe('text/plain');
    }
    // Metadata only in the response, the events and the audit log: never a value.
    expect(reply.text).not.toContain('zürich');
    const events = await w.send(w.admin, 'GET', '/v1/events?type=resource.created');
    expect(events.json.data).toHaveLength(4);
    expect(events.text).not.toContain('zürich');
  });

  test('created, updated and unchanged; one version, audit entry and event per change', async () => {
    await importAs(w.admin, [
      { name: 'A', value: 'a' },
      { name: 'B', value: 'b' },
      { name: 'T', value: '{}' },
    ]);
    const before = snapshot();
    const reply = await importAs(w.admin, [
      { name: 'A', value: 'a' },
      { name: 'B', value: 'b2' },
      { name: 'C', value: 'c' },
      { name: 'T', value: '{}', content_type: 'application/json' },
    ]);
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({ created: ['C'], updated: ['B', 'T'], unchanged: ['A'] });
    const after = snapshot();
    expect(after.resources - before.resources).toBe(1);
    // B gets version 2; T's content type changed (no new value: no new version); C version 1.
    expect(after.versions - before.versions).toBe(2);
    expect(after.changeEntries - before.changeEntries).toBe(3);
    expect(after.events - before.events).toBe(3);
    const entries = w.instance.sqlite
      .query('SELECT action, target_type, outcome FROM audit_log ORDER BY seq DESC LIMIT 4')
      .all();
    expect(entries).toEqual([
      { action: 'resource.import', target_type: 'vault', outcome: 'success' },
      { action: 'resource.updated', target_type: 'resource', outcome: 'success' },
      { action: 'resource.created', target_type: 'resource', outcome: 'success' },
      { action: 'resource.updated', target_type: 'resource', outcome: 'success' },
    ]);
    expect((await valueOf('A')).value).toBe('a');
    expect((await valueOf('B')).value).toBe('b2');
    expect((await valueOf('T')).content_type).toBe('application/json');
  });

  test('a writer without resources:reveal gets a new version for every value it sends', async () => {
    await importAs(w.admin, [{ name: 'A', value: 'a' }]);
    const blind = w.key({
      role: 'contributor',
      scopes: ['vaults:read', 'resources:read', 'resources:write'],
    }).token;
    const reply = await importAs(blind, [
      { name: 'A', value: 'a' },
      { name: 'B', value: 'b' },
    ]);
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({ created: ['B'], updated: ['A'], unchanged: [] });
    const versions = await w.send(
      w.admin,
      'GET',
      `/v1/resources/${(await valueOf('A')).id}/versions`,
    );
    expect(versions.json.pagination.total).toBe(2);
  });

  test('one bad entry refuses the whole import, naming it, and changes nothing', async () => {
    await importAs(w.admin, [{ name: 'A', value: 'a' }]);
    const before = snapshot();
    const cases: [unknown[], number, string][] = [
      [
        [
          { name: 'B', value: 'b' },
          { name: 'C', value: 'c' },
          { name: 'bad/name', value: 'x' },
        ],
        400,
        'secrets.2.name',
      ],
      [
        [
          { name: 'B', value: 'b' },
          { name: ' lead', value: 'x' },
        ],
        400,
        'secrets.1.name',
      ],
      [
        [
          { name: 'A', value: 'new' },
          { name: 'B', value: 'x'.repeat(1025) },
        ],
        413,
        'secrets.1.value',
      ],
      [
        [
          { name: 'A', value: 'new' },
          { name: 'B', value: 'bad \ud800' },
        ],
        400,
        'secrets.1.value',
      ],
      [
        [
          { name: 'B', value: 'b' },
          { name: 'B', value: 'again' },
        ],
        400,
        'secrets.1.name',
      ],
      // The same name once composed and once decomposed is one name (NFC), so a duplicate.
      [
        [
          { name: 'caf\u00e9', value: '1' },
          { name: 'cafe\u0301', value: '2' },
        ],
        400,
        'secrets.1.name',
      ],
      [[{ name: 'B', value: 'b' }, { name: 'C' }], 400, 'secrets.1.value'],
      [
        [
          { name: 'B', value: 'b' },
          { name: 'C', value: 1 },
        ],
        400,
        'secrets.1.value',
      ],
      [[{ name: 'B', value: 'b', content_type: 'not a type' }], 400, 'secrets.0.content_type'],
      [[{ name: 'B', value: 'b', extra: true }], 400, 'secrets.0.extra'],
    ];
    for (const [secrets, status, field] of cases) {
      const reply = await importAs(w.admin, secrets);
      expect({ field, status: reply.status }).toEqual({ field, status });
      expect(reply.json.error.details.field).toBe(field);
      expect(reply.text).not.toContain('bad \ud800');
      expect(snapshot()).toEqual(before);
    }
    expect((await valueOf('A')).value).toBe('a');
    const missing = await w.send(w.admin, 'POST', path(), {});
    expect(missing.status).toBe(400);
    expect(missing.json).toMatchObject(errorOf('INVALID_REQUEST', 'secrets'));
  });

  test('permissions: like writing resources in the vault', async () => {
    const body = [{ name: 'P', value: 'p' }];
    for (const role of ['reader', 'access'] as const) {
      expect((await importAs(w.key({ role }).token, body)).status).toBe(403);
    }
    const contributor = w.key({ role: 'contributor', projectIds: [projectId] }).token;
    expect((await importAs(contributor, body)).status).toBe(200);
    const otherProject = (await w.send(w.admin, 'POST', '/v1/projects', { name: 'other' })).json.id;
    const outsider = w.key({ role: 'contributor', projectIds: [otherProject] }).token;
    const hidden = await importAs(outsider, body);
    expect(hidden.status).toBe(404);
    expect(hidden.json).toMatchObject(errorOf('NOT_FOUND'));
    const unknown = await w.send(
      w.admin,
      'POST',
      '/v1/vaults/vlt_01jq3v6x1nf4r8s2k9w7y5t3m0/secrets/import',
      { secrets: body },
    );
    expect(unknown.status).toBe(404);
    // A restricted vault: managers and keys granted the vault, not project contributors.
    await w.send(w.admin, 'PUT', `/v1/vaults/${vaultId}`, { restricted: true });
    expect((await importAs(contributor, body)).status).toBe(404);
    const granted = w.key({ role: 'contributor', vaultIds: [vaultId] }).token;
    expect((await importAs(granted, body)).status).toBe(200);
  });

  test('Idempotency-Key: a retry replays the first answer and writes nothing', async () => {
    const headers = { 'idempotency-key': 'import-1' };
    const first = await importAs(w.admin, [{ name: 'I', value: 'one' }], headers);
    expect(first.json).toEqual({ created: ['I'], updated: [], unchanged: [] });
    const before = snapshot();
    const retry = await importAs(w.admin, [{ name: 'I', value: 'one' }], headers);
    expect(retry.status).toBe(200);
    expect(retry.json).toEqual(first.json);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(snapshot()).toEqual(before);
    const changed = await importAs(w.admin, [{ name: 'I', value: 'two' }], headers);
    expect(changed.status).toBe(409);
    expect((await valueOf('I')).value).toBe('one');
  });

  test('limits: at most 1000 entries, and the body limit', async () => {
    const many = Array.from({ length: 1001 }, (_, i) => ({ name: `N${i}`, value: 'v' }));
    const tooMany = await importAs(w.admin, many);
    expect(tooMany.status).toBe(400);
    expect(tooMany.json).toMatchObject(errorOf('INVALID_REQUEST', 'secrets'));
    const ok = await importAs(w.admin, many.slice(0, 1000));
    expect(ok.status).toBe(200);
    expect(ok.json.created).toHaveLength(1000);
    const huge = Array.from({ length: 1000 }, (_, i) => ({
      name: `H${i}`,
      value: 'x'.repeat(1024),
    }));
    const tooLarge = await importAs(w.admin, huge);
    expect(tooLarge.status).toBe(413);
    expect(w.count('resources')).toBe(1000);
    const empty = await importAs(w.admin, []);
    expect(empty.json).toEqual({ created: [], updated: [], unchanged: [] });
  });
});
