/**
 * Property-based tests (fast-check): random bodies, query strings, path parameters and headers
 * thrown at every projects, vaults and resources route, as different keys. Whatever comes in,
 * the answer is never a 5xx, and every error has exactly the shape of docs/api.md §1.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { ROUTE_PERMISSIONS } from '../src/access/permissions.ts';
import { makeTestPki } from './pki.ts';
import { openWorld, type Reply, type World } from './resources-harness.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 200);

const ERROR_CODES = [
  'INVALID_REQUEST',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'CONFLICT',
  'GONE',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'RATE_LIMITED',
];

const MINE = /^(GET|POST|PUT|DELETE) \/v1\/(projects|vaults|resources)/;
const ROUTES = Object.keys(ROUTE_PERMISSIONS).filter((route) => MINE.test(route));

/** Field names the schemas know, mixed with junk, so that bodies get past the first check. */
const FIELD = fc.constantFrom(
  'type',
  'vault_id',
  'project_id',
  'name',
  'description',
  'tags',
  'enabled',
  'activates_at',
  'expires_at',
  'content_type',
  'value',
  'generate',
  'private_key',
  'restricted',
  'algorithm',
  '__proto__',
  'constructor',
  'x',
);

describe('fuzzing every route', () => {
  let w: World;
  let world: Record<string, string>;
  const tokens: string[] = [];
  const pki = makeTestPki(['fuzz.test']);

  beforeAll(async () => {
    w = openWorld({ resources: { max_value_bytes: 2048 } });
    w.clock.set(Date.now());
    const make = async (path: string, body: unknown) => {
      const reply = await w.send(w.admin, 'POST', path, body);
      if (reply.status !== 201) throw new Error(`${path}: ${reply.text}`);
      return reply.json.id as string;
    };
    const project = await make('/v1/projects', { name: 'fuzz' });
    const vault = await make('/v1/vaults', { project_id: project, name: 'fuzz' });
    world = {
      project,
      vault,
      secret: await make('/v1/resources', {
        type: 'secret',
        vault_id: vault,
        name: 'S',
        value: 'v',
      }),
      key: await make('/v1/resources', {
        type: 'key',
        vault_id: vault,
        name: 'K',
        generate: { algorithm: 'ed25519' },
      }),
      certificate: await make('/v1/resources', {
        type: 'certificate',
        vault_id: vault,
        name: 'C',
        value: pki.leafCert,
      }),
    };
    tokens.push(
      w.admin,
      w.key({ role: 'reader' }).token,
      w.key({ role: 'access', vaultIds: [vault] }).token,
      w.key({ role: 'contributor' }).token,
    );
  });
  afterAll(async () => w.close());

  // Mapped lazily: the world exists only once beforeAll has run.
  const existing = () =>
    fc.constantFrom('project', 'vault', 'secret', 'key', 'certificate').map((name) => world[name]!);
  const junkSegment = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.constantFrom('res_', 'vlt_x', '..', '%', '%ZZ', '0', '-1', '99999999999', 'S', 'K'),
  );
  const segment = fc.oneof({ arbitrary: existing(), weight: 3 }, junkSegment);

  /** A value that sometimes is what the field wants. */
  const plausible = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }),
    existing(),
    fc.constantFrom('secret', 'key', 'certificate', 'ed25519', 'ec-p256', 'aes-256', 'rsa-1024'),
    fc.constantFrom('2030-01-01T00:00:00Z', '2030-02-30T00:00:00Z', '1999-01-01T00:00:00+01:00'),
    fc.constantFrom(
      pki.leafCert,
      pki.leafKey,
      '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----',
    ),
    fc.record({ algorithm: fc.constantFrom('ed25519', 'ec-p256', 'aes-256', 'rsa-9') }),
    fc.array(fc.string({ maxLength: 70 }), { maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.constant('x'.repeat(3000)),
  );
  const name = fc.oneof(
    fc.string({ minLength: 1, maxLength: 30 }),
    fc.string({ unit: 'grapheme', maxLength: 300 }),
  );
  /** A valid body for the route, with up to two fields replaced or added at random. */
  const nearValid = (route: string) => {
    const bases: Record<string, fc.Arbitrary<Record<string, unknown>>> = {
      'POST /v1/projects': fc.record({ name }),
      'PUT /v1/projects/:id': fc.record({ description: fc.string() }),
      'POST /v1/vaults': fc.record({ project_id: existing(), name, restricted: fc.boolean() }),
      'PUT /v1/vaults/:id': fc.record({ name, restricted: fc.boolean() }),
      'POST /v1/resources': fc.record({
        type: fc.constantFrom('secret', 'key', 'certificate'),
        vault_id: existing(),
        name,
        value: fc.oneof(fc.string({ maxLength: 100 }), fc.constantFrom(pki.leafCert, pki.leafKey)),
        tags: fc.array(fc.string({ maxLength: 70 }), { maxLength: 3 }),
      }),
      'PUT /v1/resources/:id': fc.record(
        {
          value: fc.string(),
          name,
          enabled: fc.boolean(),
          expires_at: fc.constantFrom('2040-01-01T00:00:00Z', null),
        },
        { requiredKeys: [] },
      ),
    };
    const base = bases[route] ?? fc.constant({});
    return fc
      .tuple(base, fc.dictionary(FIELD, plausible, { maxKeys: 2 }), fc.boolean())
      .map(([valid, noise, noisy]) => (noisy ? { ...valid, ...noise } : valid));
  };
  const body = (route: string) =>
    fc.oneof(
      { arbitrary: nearValid(route), weight: 3 },
      fc.dictionary(FIELD, plausible, { maxKeys: 8 }),
      fc.jsonValue({ maxDepth: 3 }),
      fc.constant(undefined),
    );
  const query = fc
    .dictionary(
      fc.oneof(
        fc.constantFrom(
          'page',
          'limit',
          'vault_id',
          'project_id',
          'type',
          'name',
          'tag',
          'enabled',
          'deleted',
          'secrets',
          'resource',
        ),
        fc.string({ maxLength: 10 }),
      ),
      fc.oneof(
        fc.string({ maxLength: 30 }),
        existing(),
        fc.constantFrom('1', '0', '100', '101', 'true', 'names'),
      ),
      { maxKeys: 4 },
    )
    .map((params) => new URLSearchParams(params).toString());
  const headers = fc.record(
    {
      'idempotency-key': fc.string({ unit: 'grapheme-ascii', maxLength: 20 }),
      'if-match': fc.oneof(
        fc.constantFrom('1', '"1"', '*', 'W/"2"'),
        fc.string({ unit: 'grapheme-ascii', maxLength: 8 }),
      ),
      'content-type': fc.constantFrom(
        'application/json',
        'text/plain',
        'application/x-www-form-urlencoded',
      ),
    },
    { requiredKeys: [] },
  );
  const rawBody = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.constantFrom('{', '[]', 'null', '{"a":', '\u0000'),
  );

  /** Statuses seen, per route (`FUZZ_STATS=1` prints them: are the inputs reaching handlers?). */
  const seen = new Map<string, Map<number, number>>();
  afterAll(() => {
    if (process.env.FUZZ_STATS)
      for (const [route, counts] of seen) console.log(route, JSON.stringify([...counts]));
  });

  /** Asserts the properties every reply must have. */
  const check = (label: string, reply: Reply) => {
    expect(`${label} → ${reply.status}`).not.toMatch(/→ 5\d\d$/);
    if (reply.status >= 400) {
      expect(reply.json, `${label}: ${reply.text}`).toBeDefined();
      expect(Object.keys(reply.json)).toEqual(['error']);
      const error = reply.json.error;
      expect(ERROR_CODES).toContain(error.code);
      expect(typeof error.message).toBe('string');
      const keys = Object.keys(error).sort();
      expect(keys.filter((k) => k !== 'details')).toEqual(['code', 'message']);
      if (error.details !== undefined) expect(typeof error.details).toBe('object');
    }
  };

  for (const route of ROUTES) {
    test(
      route,
      async () => {
        const [method, pattern] = route.split(' ') as [string, string];
        const params = pattern.split('/').filter((part) => part.startsWith(':'));
        await fc.assert(
          fc.asyncProperty(
            fc.array(segment, { minLength: params.length, maxLength: params.length }),
            fc.oneof(fc.constant(''), query),
            body(route),
            fc.oneof(fc.constant<{ [name: string]: string | undefined }>({}), headers),
            fc.oneof({ arbitrary: fc.constant(undefined), weight: 4 }, rawBody),
            fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, fc.nat(tokens.length - 1)),
            async (values, search, json, extra, raw, who) => {
              let path = pattern;
              params.forEach((param, i) => {
                path = path.replace(param, encodeURIComponent(values[i]!));
              });
              if (search) path += `?${search}`;
              const { 'content-type': contentType, ...rest } = extra;
              const send = raw === undefined || method === 'GET' ? json : undefined;
              const reply = await w.send(
                tokens[who]!,
                method,
                path,
                method === 'GET' || method === 'DELETE' ? undefined : send,
                {
                  ...rest,
                  ...(contentType ? { 'content-type': contentType } : {}),
                },
              );
              const counts = seen.get(route) ?? new Map<number, number>();
              counts.set(reply.status, (counts.get(reply.status) ?? 0) + 1);
              seen.set(route, counts);
              if (process.env.FUZZ_TRACE && reply.status === 400)
                console.log(route, JSON.stringify(reply.json.error.details));
              check(`${method} ${path} ${JSON.stringify(send)?.slice(0, 200)}`, reply);
              if (raw !== undefined && method !== 'GET') {
                const rawReply = await w.sendRaw(tokens[who]!, method, path, raw, {
                  'content-type': contentType ?? 'application/json',
                });
                check(`${method} ${path} (raw)`, rawReply);
              }
            },
          ),
          { numRuns: RUNS },
        );
        expect(w.logger.lines.filter((line) => line.includes('unhandled error'))).toEqual([]);
      },
      120_000,
    );
  }

  test('raw bodies that are not JSON, or not UTF-8, never reach a handler', async () => {
    for (const [contentType, raw] of [
      ['application/json', '{"type":'],
      ['application/json', '\xff\xfe'],
      ['text/plain', 'type=secret'],
      [
        'application/json',
        JSON.stringify({ type: 'secret', vault_id: world.vault, name: 'ok', value: '\ud800' }),
      ],
    ] as const) {
      const response = await w.app.handle(
        new Request('http://localhost/v1/resources', {
          method: 'POST',
          headers: { authorization: `Bearer ${w.admin}`, 'content-type': contentType },
          body: raw,
        }),
      );
      expect([400, 415]).toContain(response.status);
      const parsed = (await response.json()) as { error: { code: string } };
      expect(Object.keys(parsed)).toEqual(['error']);
    }
  });
});
