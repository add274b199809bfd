/**
 * The resources API end to end over HTTP (app.handle on a real SQLite file, app assembled as
 * `serve` does): the scenario of issue 5, then versioning and If-Match, keys and certificates,
 * uniqueness, deletes and restores, lists, restricted vaults, the purge loop, and encryption at
 * rest (no value in the database files, the audit log or the events).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { ROUTE_PERMISSIONS } from '../src/access/permissions.ts';
import { idempotencyResponseColumn } from '../src/db/schema/idempotency.ts';
import { reencryptValues } from '../src/keyring/reencrypt.ts';
import { rotateDataKey } from '../src/keyring/rotate.ts';
import { countValuesByDataKey } from '../src/keyring/value-census.ts';
import { KEY_ALGORITHMS } from '../src/resources/material.ts';
import { resourceValueColumn } from '../src/db/schema/resources.ts';
import { purgeExpired, startPurgeLoop } from '../src/resources/purge.ts';
import { makeTestPki } from './pki.ts';
import { errorOf, filesContaining, openWorld, type World } from './resources-harness.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Values whose bytes must never show up outside the encrypted columns. */
const V1 = 'VALUE-MARKER-v1-7f3a9c';
const V2 = 'VALUE-MARKER-v2-91bd04';
const V3 = 'VALUE-MARKER-v3-c55e12';
const ROOT = 'VALUE-MARKER-root-44aa01';
const TOKEN_VALUE = 'VALUE-MARKER-token-0d9e77';
const MARKERS = [V1, V2, V3, ROOT, TOKEN_VALUE, 'VALUE-MARKER'];

describe('issue 5 scenario', () => {
  let w: World;
  const ids: Record<string, string> = {};
  const keys: Record<string, string> = {};
  const pki = makeTestPki(['api.payments.test']);

  beforeAll(() => {
    w = openWorld();
    w.clock.set(Date.now()); // the test certificate is valid from now for a day
  });
  afterAll(async () => w.close());

  test('an admin creates a project, two vaults (one restricted) and secrets', async () => {
    const project = await w.send(w.admin, 'POST', '/v1/projects', {
      name: 'payments',
      description: 'Payment services',
    });
    expect(project.status).toBe(201);
    expect(project.headers.get('location')).toBe(`/v1/projects/${project.json.id}`);
    expect(project.json).toEqual({
      id: expect.stringMatching(/^prj_[0-9a-z]{26}$/),
      name: 'payments',
      description: 'Payment services',
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      updated_at: expect.any(String),
    });
    ids.project = project.json.id;
    const prod = await w.send(w.admin, 'POST', '/v1/vaults', {
      project_id: ids.project,
      name: 'prod',
    });
    expect(prod.status).toBe(201);
    expect(prod.json).toMatchObject({ project_id: ids.project, name: 'prod', restricted: false });
    ids.prod = prod.json.id;
    const restricted = await w.send(w.admin, 'POST', '/v1/vaults', {
      project_id: ids.project,
      name: 'break-glass',
      restricted: true,
    });
    expect(restricted.json.restricted).toBe(true);
    ids.restricted = restricted.json.id;

    const secret = await w.send(w.admin, 'POST', '/v1/resources', {
      type: 'secret',
      vault_id: ids.prod,
      name: 'DB_PASSWORD',
      value: V1,
      tags: ['db', 'db', 'rotation=90d'],
    });
    expect(secret.status).toBe(201);
    expect(secret.json).toEqual({
      id: expect.stringMatching(/^res_/),
      type: 'secret',
      vault_id: ids.prod,
      project_id: ids.project,
      name: 'DB_PASSWORD',
      description: null,
      tags: ['db', 'rotation=90d'],
      enabled: true,
      activates_at: null,
      expires_at: null,
      created_at: expect.any(String),
      updated_at: expect.any(String),
      created_by: expect.stringMatching(/^key_/),
      content_type: 'text/plain',
      version: 1,
    });
    ids.secret = secret.json.id;
    const token = await w.send(w.admin, 'POST', '/v1/resources', {
      type: 'secret',
      vault_id: ids.prod,
      name: 'API_TOKEN',
      value: TOKEN_VALUE,
      content_type: 'application/json',
    });
    expect(token.json.content_type).toBe('application/json');
    ids.token = token.json.id;
    const root = await w.send(w.admin, 'POST', '/v1/resources', {
      type: 'secret',
      vault_id: ids.restricted,
      name: 'ROOT_PASSWORD',
      value: ROOT,
    });
    expect(root.status).toBe(201);
    ids.root = root.json.id;
  });

  test('... a generated key of every algorithm', async () => {
    for (const algorithm of KEY_ALGORITHMS) {
      const key = await w.send(w.admin, 'POST', '/v1/resources', {
        type: 'key',
        vault_id: ids.prod,
        name: `key-${algorithm}`,
        generate: { algorithm },
      });
      expect(key.status).toBe(201);
      expect(key.json).toMatchObject({ type: 'key', algorithm, name: `key-${algorithm}` });
      expect(key.json.value).toBeUndefined();
      expect(key.json.version).toBeUndefined();
      if (algorithm === 'aes-256') expect(key.json.public_key).toBeNull();
      else expect(key.json.public_key).toStartWith('-----BEGIN PUBLIC KEY-----');
      keys[algorithm] = key.json.id;
    }
  }, 60_000);

  test('... and an uploaded certificate with its private key', async () => {
    const cert = await w.send(w.admin, 'POST', '/v1/resources', {
      type: 'certificate',
      vault_id: ids.prod,
      name: 'api-tls',
      value: pki.leafCert + pki.caCert,
      private_key: pki.leafKey,
    });
    expect(cert.status).toBe(201);
    const x509 = new X509Certificate(pki.leafCert);
    expect(cert.json).toMatchObject({
      type: 'certificate',
      subject: 'CN=api.payments.test',
      issuer: 'CN=Secryn test CA',
      serial_number: x509.serialNumber.toUpperCase(),
      fingerprint_sha256: x509.fingerprint256,
      has_private_key: true,
    });
    expect(cert.json.expires_at).toBe(cert.json.not_after);
    expect(Date.parse(cert.json.not_after)).toBe(
      Math.floor(x509.validToDate.getTime() / 1000) * 1000,
    );
    ids.cert = cert.json.id;
  });

  test('a contributor updates a secret twice and restores version 1', async () => {
    keys.contributor = w.key({ role: 'contributor', projectIds: [ids.project!] }).token;
    const c = keys.contributor;
    const v2 = await w.send(
      c,
      'PUT',
      `/v1/resources/${ids.secret}`,
      { value: V2 },
      {
        'if-match': '1',
      },
    );
    expect(v2.status).toBe(200);
    expect(v2.json.version).toBe(2);
    const v3 = await w.send(c, 'PUT', `/v1/resources/${ids.secret}`, { value: V3 });
    expect(v3.json.version).toBe(3);
    const restored = await w.send(c, 'POST', `/v1/resources/${ids.secret}/versions/1/restore`);
    expect(restored.status).toBe(200);
    expect(restored.json.version).toBe(4);
    const now = await w.send(c, 'GET', `/v1/resources/${ids.secret}`);
    expect(now.json.value).toBe(V1);
    const versions = await w.send(c, 'GET', `/v1/resources/${ids.secret}/versions`);
    expect(versions.json.data.map((v: { version: number }) => v.version)).toEqual([4, 3, 2, 1]);
    expect(versions.text).not.toContain('VALUE-MARKER');
    const v2read = await w.send(c, 'GET', `/v1/resources/${ids.secret}/versions/2`);
    expect(v2read.json).toMatchObject({ resource_id: ids.secret, version: 2, value: V2 });

    // Restricted vaults are out of a contributor's reach; deleting is a manager's job.
    for (const path of [`/v1/vaults/${ids.restricted}`, `/v1/resources/${ids.root}`]) {
      const hidden = await w.send(c, 'GET', path);
      expect(hidden.status).toBe(404);
      expect(hidden.json).toMatchObject(errorOf('NOT_FOUND'));
    }
    const vaults = await w.send(c, 'GET', '/v1/vaults');
    expect(vaults.json.data.map((v: { id: string }) => v.id)).toEqual([ids.prod]);
    const list = await w.send(c, 'GET', '/v1/resources?limit=100');
    expect(list.json.data.map((r: { id: string }) => r.id)).not.toContain(ids.root);
    expect((await w.send(c, 'DELETE', `/v1/resources/${ids.secret}`)).status).toBe(403);
  });

  test('a reader sees metadata and never a value', async () => {
    const r = w.key({ role: 'reader', projectIds: [ids.project!] }).token;
    const reads = [
      `/v1/resources/${ids.secret}`,
      `/v1/resources/${ids.secret}/versions/1`,
      `/v1/resources/${keys['ed25519']}`,
      `/v1/resources/${ids.cert}`,
      `/v1/vaults/${ids.prod}`,
      `/v1/vaults/${ids.prod}/secrets/DB_PASSWORD`,
      `/v1/vaults/${ids.prod}?resource=${ids.cert}`,
      `/v1/resources?limit=100`,
      `/v1/vaults/${ids.prod}/keys`,
    ];
    for (const path of reads) {
      const reply = await w.send(r, 'GET', path);
      expect(`${path} ${reply.status}`).toBe(`${path} 200`);
      expect(reply.text).not.toContain('"value"');
      expect(reply.text).not.toContain('PRIVATE KEY');
    }
    const vault = await w.send(r, 'GET', `/v1/vaults/${ids.prod}`);
    expect(vault.json.secrets.map((s: { name: string }) => s.name)).toEqual([
      'API_TOKEN',
      'DB_PASSWORD',
    ]);
    for (const path of [
      `/v1/vaults/${ids.prod}/keys/${keys['ec-p256']}/download`,
      `/v1/vaults/${ids.prod}/certificates/${ids.cert}/download`,
    ]) {
      expect((await w.send(r, 'GET', path)).status).toBe(403);
    }
  });

  test('an access key pulls the vault and downloads the key and the certificate', async () => {
    const a = w.key({ role: 'access', vaultIds: [ids.prod!, ids.restricted!] }).token;
    keys.access = a;
    const vault = await w.send(a, 'GET', `/v1/vaults/${ids.prod}`);
    expect(vault.status).toBe(200);
    expect(vault.json).toMatchObject({ id: ids.prod, name: 'prod', restricted: false });
    expect(vault.json.secrets).toEqual([
      {
        id: ids.token,
        name: 'API_TOKEN',
        value: TOKEN_VALUE,
        content_type: 'application/json',
        tags: [],
        updated_at: expect.any(String),
      },
      {
        id: ids.secret,
        name: 'DB_PASSWORD',
        value: V1,
        content_type: 'text/plain',
        tags: ['db', 'rotation=90d'],
        updated_at: expect.any(String),
      },
    ]);
    const names = await w.send(a, 'GET', `/v1/vaults/${ids.prod}?secrets=names`);
    expect(names.json.secrets).toEqual([
      { id: ids.token, name: 'API_TOKEN' },
      { id: ids.secret, name: 'DB_PASSWORD' },
    ]);
    const restricted = await w.send(a, 'GET', `/v1/vaults/${ids.restricted}`);
    expect(restricted.json.secrets[0].value).toBe(ROOT);
    const one = await w.send(a, 'GET', `/v1/vaults/${ids.prod}/secrets/DB_PASSWORD`);
    expect(one.json).toMatchObject({ id: ids.secret, name: 'DB_PASSWORD', value: V1 });

    for (const algorithm of KEY_ALGORITHMS) {
      const download = await w.send(
        a,
        'GET',
        `/v1/vaults/${ids.prod}/keys/${keys[algorithm]}/download`,
      );
      expect(download.status).toBe(200);
      expect(download.headers.get('content-type')).toStartWith('application/x-pem-file');
      expect(download.headers.get('content-disposition')).toContain(`key-${algorithm}.pem`);
      const viaResource = await w.send(
        a,
        'GET',
        `/v1/vaults/${ids.prod}?resource=${keys[algorithm]}`,
      );
      expect(viaResource.json.value).toBe(download.text);
      if (algorithm === 'aes-256') {
        expect(download.text).toStartWith('-----BEGIN SECRYN AES KEY-----');
        continue;
      }
      expect(download.text).toStartWith('-----BEGIN PRIVATE KEY-----');
      const metadata = await w.send(a, 'GET', `/v1/resources/${keys[algorithm]}`);
      const derived = createPublicKey(createPrivateKey(download.text)).export({
        type: 'spki',
        format: 'pem',
      });
      expect(derived).toBe(metadata.json.public_key);
    }
    const cert = await w.send(a, 'GET', `/v1/vaults/${ids.prod}/certificates/${ids.cert}/download`);
    expect(cert.status).toBe(200);
    expect(cert.headers.get('content-type')).toStartWith('application/x-pem-file');
    expect(cert.text.match(/-----BEGIN CERTIFICATE-----/g)?.length).toBe(2);
    expect(cert.text).toContain('-----BEGIN PRIVATE KEY-----');
    expect(new X509Certificate(cert.text).subject).toBe('CN=api.payments.test');

    // A vault it was not granted does not exist for it.
    const staging = await w.send(w.admin, 'POST', '/v1/vaults', {
      project_id: ids.project,
      name: 'staging',
    });
    expect((await w.send(a, 'GET', `/v1/vaults/${staging.json.id}`)).status).toBe(404);
    // No writes for access keys.
    expect((await w.send(a, 'PUT', `/v1/resources/${ids.secret}`, { value: 'x' })).status).toBe(
      403,
    );
  });

  test('an expired secret answers 410; a deleted one 404, then comes back with restore', async () => {
    const expiring = await w.send(w.admin, 'PUT', `/v1/resources/${ids.token}`, {
      expires_at: new Date(w.clock.now() + HOUR).toISOString(),
    });
    expect(expiring.status).toBe(200);
    expect(expiring.json.version).toBe(1); // metadata only: no new version
    w.clock.advance(2 * HOUR);
    const gone = await w.send(keys.access!, 'GET', `/v1/resources/${ids.token}`);
    expect(gone.status).toBe(410);
    expect(gone.json).toMatchObject(errorOf('GONE'));
    expect(
      (await w.send(keys.access!, 'GET', `/v1/vaults/${ids.prod}/secrets/API_TOKEN`)).status,
    ).toBe(410);
    expect(
      (await w.send(keys.access!, 'GET', `/v1/resources/${ids.token}/versions/1`)).status,
    ).toBe(410);
    const vault = await w.send(keys.access!, 'GET', `/v1/vaults/${ids.prod}`);
    expect(vault.json.secrets.map((s: { name: string }) => s.name)).toEqual(['DB_PASSWORD']);
    const listed = await w.send(w.admin, 'GET', `/v1/resources?name=API_TOKEN`);
    expect(listed.json.data).toHaveLength(1); // lists still show its metadata

    const deleted = await w.send(w.admin, 'DELETE', `/v1/resources/${ids.secret}`);
    expect(deleted.json).toEqual({ id: ids.secret, deleted: true });
    for (const path of [
      `/v1/resources/${ids.secret}`,
      `/v1/vaults/${ids.prod}/secrets/DB_PASSWORD`,
      `/v1/resources/${ids.secret}/versions`,
    ]) {
      expect(`${path} ${(await w.send(keys.access!, 'GET', path)).status}`).toBe(`${path} 404`);
    }
    const live = await w.send(w.admin, 'GET', `/v1/resources?vault_id=${ids.prod}&limit=100`);
    expect(live.json.data.map((r: { id: string }) => r.id)).not.toContain(ids.secret);
    const bin = await w.send(w.admin, 'GET', '/v1/resources?deleted=true');
    expect(bin.json.data).toEqual([
      expect.objectContaining({ id: ids.secret, deleted_at: expect.any(String) }),
    ]);
    const back = await w.send(w.admin, 'POST', `/v1/resources/${ids.secret}/restore`);
    expect(back.status).toBe(200);
    expect(back.json.deleted_at).toBeUndefined();
    const again = await w.send(keys.access!, 'GET', `/v1/resources/${ids.secret}`);
    expect(again.json).toMatchObject({ version: 4, value: V1 });
  });

  test('an expired certificate answers 410 on download', async () => {
    const cert = await w.send(w.admin, 'GET', `/v1/resources/${ids.cert}`);
    w.clock.set(Date.parse(cert.json.not_after) + 1000);
    const download = await w.send(
      keys.access!,
      'GET',
      `/v1/vaults/${ids.prod}/certificates/${ids.cert}/download`,
    );
    expect(download.status).toBe(410);
    expect(download.json).toMatchObject(errorOf('GONE'));
  });

  test('the audit log records reveals and changes, and no value is in it, the events or the files', async () => {
    const actions = (
      w.instance.sqlite.query('SELECT DISTINCT action FROM audit_log').all() as { action: string }[]
    ).map((row) => row.action);
    for (const action of [
      'project.create',
      'vault.create',
      'resource.create',
      'resource.update',
      'resource.restore_version',
      'resource.reveal',
      'vault.reveal',
      'resource.delete',
      'resource.restore',
    ]) {
      expect(actions).toContain(action);
    }
    const audit = JSON.stringify(w.instance.sqlite.query('SELECT * FROM audit_log').all());
    const events = JSON.stringify(w.instance.sqlite.query('SELECT * FROM events').all());
    for (const marker of MARKERS) {
      expect(audit).not.toContain(marker);
      expect(events).not.toContain(marker);
    }
    expect(events).not.toContain('PRIVATE KEY');
    const types = (
      w.instance.sqlite.query('SELECT DISTINCT type FROM events').all() as { type: string }[]
    ).map((row) => row.type);
    expect(types).toEqual(
      expect.arrayContaining([
        'project.created',
        'vault.created',
        'resource.created',
        'resource.updated',
        'resource.deleted',
        'resource.restored',
      ]),
    );
    expect(filesContaining(w.dir, MARKERS)).toEqual([]);
    w.instance.sqlite.run('PRAGMA wal_checkpoint(TRUNCATE)');
    expect(filesContaining(w.dir, MARKERS)).toEqual([]);
    expect(filesContaining(w.dir, ['PRIVATE KEY'])).toEqual([]);
  });
});

describe('secrets: versions and If-Match', () => {
  let w: World;
  let vault: string;
  beforeAll(async () => {
    w = openWorld();
    const project = await w.send(w.admin, 'POST', '/v1/projects', { name: 'p' });
    vault = (
      await w.send(w.admin, 'POST', '/v1/vaults', { project_id: project.json.id, name: 'v' })
    ).json.id;
  });
  afterAll(async () => w.close());

  const create = async (name: string, extra: Record<string, unknown> = {}) =>
    (
      await w.send(w.admin, 'POST', '/v1/resources', {
        type: 'secret',
        vault_id: vault,
        name,
        value: 'one',
        ...extra,
      })
    ).json;

  test('metadata-only changes and an unchanged value make no version; a new value does', async () => {
    const secret = await create('meta');
    const path = `/v1/resources/${secret.id}`;
    w.clock.advance(1000);
    const renamed = await w.send(w.admin, 'PUT', path, {
      name: 'meta2',
      description: 'd',
      tags: ['a'],
      content_type: 'application/json',
      enabled: false,
    });
    expect(renamed.json).toMatchObject({ name: 'meta2', version: 1, enabled: false });
    expect(renamed.json.updated_at).not.toBe(secret.updated_at);
    const same = await w.send(w.admin, 'PUT', path, { value: 'one' });
    expect(same.json.version).toBe(1);
    expect(w.count('resource_versions')).toBe(1);
    const changed = await w.send(w.admin, 'PUT', path, { value: 'two' });
    expect(changed.json.version).toBe(2);
    // Disabled: metadata is readable, the value is not handed out.
    const read = await w.send(w.admin, 'GET', path);
    expect(read.status).toBe(200);
    expect(read.json.value).toBeUndefined();
    expect((await w.send(w.admin, 'GET', `${path}/versions/1`)).json.value).toBeUndefined();
    await w.send(w.admin, 'PUT', path, { enabled: true });
    expect((await w.send(w.admin, 'GET', `${path}/versions/1`)).json.value).toBe('one');
    expect((await w.send(w.admin, 'GET', `${path}/versions/3`)).status).toBe(404);
  });

  test('what a PUT answers is what a read of the stored row answers', async () => {
    // The update answers with the row it wrote, not one read back: both must agree exactly.
    const secret = await create('echo');
    const path = `/v1/resources/${secret.id}`;
    const { value: _, ...stored } = (await w.send(w.admin, 'GET', path)).json;
    expect(stored).toEqual(secret);
    const changes = [
      { value: 'new-value' },
      { tags: ['B', 'a', 'B'], description: 'x', content_type: 'text/csv' },
      { expires_at: '2031-01-02T03:04:05.678Z', activates_at: '2020-01-01T00:00:00Z' },
      { name: 'echo-renamed', enabled: false, value: 'third' },
      { enabled: true, description: null },
    ];
    for (const body of changes) {
      w.clock.advance(1500);
      const put = await w.send(w.admin, 'PUT', path, body);
      expect(put.status).toBe(200);
      const { value: __, ...read } = (await w.send(w.admin, 'GET', path)).json;
      expect(put.json).toEqual(read);
    }
  });

  test('If-Match: the second of two writers that read the same version gets 409', async () => {
    const secret = await create('race');
    const path = `/v1/resources/${secret.id}`;
    const first = w.send(w.admin, 'PUT', path, { value: 'writer-1' }, { 'if-match': '1' });
    const second = w.send(w.admin, 'PUT', path, { value: 'writer-2' }, { 'if-match': '"1"' });
    const replies = await Promise.all([first, second]);
    expect(replies.map((r) => r.status).sort()).toEqual([200, 409]);
    const loser = replies.find((r) => r.status === 409)!;
    expect(loser.json).toMatchObject(errorOf('CONFLICT', 'If-Match'));
    const read = await w.send(w.admin, 'GET', path);
    expect(read.json.version).toBe(2);
    expect(read.json.value).toBe(replies[0]!.status === 200 ? 'writer-1' : 'writer-2');
    // A stale If-Match fails metadata changes too, and version restores; `*` matches any.
    expect((await w.send(w.admin, 'PUT', path, { name: 'x' }, { 'if-match': '1' })).status).toBe(
      409,
    );
    expect(
      (
        await w.send(w.admin, 'POST', `${path}/versions/1/restore`, undefined, {
          'if-match': 'W/"1"',
        })
      ).status,
    ).toBe(409);
    expect((await w.send(w.admin, 'PUT', path, { name: 'x' }, { 'if-match': '*' })).status).toBe(
      200,
    );
    const bad = await w.send(w.admin, 'PUT', path, { name: 'y' }, { 'if-match': 'abc' });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject(errorOf('INVALID_REQUEST', 'If-Match'));
  });

  test('activates_at: not active yet → no value, absent from the vault read; then active', async () => {
    const later = new Date(w.clock.now() + DAY).toISOString();
    const secret = await create('future', { activates_at: later });
    expect(secret.activates_at).toBe(later.replace(/\.\d{3}Z$/, 'Z'));
    const read = await w.send(w.admin, 'GET', `/v1/resources/${secret.id}`);
    expect(read.status).toBe(200);
    expect(read.json.value).toBeUndefined();
    const byName = await w.send(w.admin, 'GET', `/v1/vaults/${vault}/secrets/future`);
    expect(byName.status).toBe(404);
    expect(byName.json.error.details.reason).toContain('not active until');
    w.clock.advance(DAY);
    expect((await w.send(w.admin, 'GET', `/v1/resources/${secret.id}`)).json.value).toBe('one');
    const window = await w.send(w.admin, 'POST', '/v1/resources', {
      type: 'secret',
      vault_id: vault,
      name: 'window',
      value: 'x',
      activates_at: '2031-01-01T00:00:00Z',
      expires_at: '2030-01-01T00:00:00Z',
    });
    expect(window.json).toMatchObject(errorOf('INVALID_REQUEST', 'expires_at'));
    const impossible = await w.send(w.admin, 'POST', '/v1/resources', {
      type: 'secret',
      vault_id: vault,
      name: 'feb30',
      value: 'x',
      expires_at: '2031-02-30T00:00:00Z',
    });
    expect(impossible.json).toMatchObject(errorOf('INVALID_REQUEST', 'expires_at'));
  });
});

describe('keys and certificates', () => {
  let w: World;
  let vault: string;
  const pki = makeTestPki(['svc.test']);
  const other = makeTestPki(['other.test'], 'Other CA');
  beforeAll(async () => {
    w = openWorld();
    w.clock.set(Date.now());
    const project = await w.send(w.admin, 'POST', '/v1/projects', { name: 'p' });
    vault = (
      await w.send(w.admin, 'POST', '/v1/vaults', { project_id: project.json.id, name: 'v' })
    ).json.id;
  });
  afterAll(async () => w.close());

  const post = (body: Record<string, unknown>) =>
    w.send(w.admin, 'POST', '/v1/resources', { vault_id: vault, ...body });

  test('uploaded keys are validated and normalised; garbage is a 400 naming the field', async () => {
    const uploaded = await post({ type: 'key', name: 'up', value: pki.leafKey });
    expect(uploaded.status).toBe(201);
    expect(uploaded.json.algorithm).toBe('ec-p256');
    const read = await w.send(w.admin, 'GET', `/v1/resources/${uploaded.json.id}`);
    expect(read.json.value).toStartWith('-----BEGIN PRIVATE KEY-----');
    for (const [body, field] of [
      [{ type: 'key', name: 'g1', value: 'not a pem' }, 'value'],
      [{ type: 'key', name: 'g2', value: pki.leafCert }, 'value'],
      [{ type: 'key', name: 'g3' }, 'value'],
      [
        { type: 'key', name: 'g4', value: pki.leafKey, generate: { algorithm: 'ed25519' } },
        'value',
      ],
      [{ type: 'key', name: 'g5', generate: { algorithm: 'rsa-1024' } }, 'generate.algorithm'],
      [{ type: 'key', name: 'g6', generate: { algorithm: 'ed25519', bits: 1 } }, 'generate.bits'],
      [
        { type: 'key', name: 'g7', generate: { algorithm: 'ed25519' }, content_type: 'a/b' },
        'content_type',
      ],
      [{ type: 'secret', name: 'g8', value: 'x', generate: { algorithm: 'ed25519' } }, 'generate'],
      [{ type: 'secret', name: 'g9', value: 'x', private_key: pki.leafKey }, 'private_key'],
    ] as const) {
      const reply = await post(body);
      expect(`${JSON.stringify(body).slice(0, 40)} ${reply.status}`).toBe(
        `${JSON.stringify(body).slice(0, 40)} 400`,
      );
      expect(reply.json).toMatchObject(errorOf('INVALID_REQUEST', field));
      expect(reply.text).not.toContain('PRIVATE KEY');
    }
  });

  test('keys are immutable: a PUT with a value is 409 with a reason; metadata changes work', async () => {
    const key = await post({ type: 'key', name: 'imm', generate: { algorithm: 'ec-p384' } });
    const path = `/v1/resources/${key.json.id}`;
    const refused = await w.send(w.admin, 'PUT', path, { value: pki.leafKey });
    expect(refused.status).toBe(409);
    expect(refused.json.error.details.reason).toContain('immutable');
    expect(refused.json).toMatchObject(errorOf('CONFLICT', 'value'));
    const renamed = await w.send(w.admin, 'PUT', path, { name: 'imm2', tags: ['signing'] });
    expect(renamed.json).toMatchObject({ name: 'imm2', tags: ['signing'], algorithm: 'ec-p384' });
    const restore = await w.send(w.admin, 'POST', `${path}/versions/1/restore`);
    expect(restore.status).toBe(409);
    expect((await w.send(w.admin, 'PUT', path, { content_type: 'a/b' })).status).toBe(400);
  });

  test('certificates: the private key must match the leaf; garbage and reversed chains are refused', async () => {
    const mismatch = await post({
      type: 'certificate',
      name: 'mm',
      value: pki.leafCert,
      private_key: other.leafKey,
    });
    expect(mismatch.json).toMatchObject(errorOf('INVALID_REQUEST', 'private_key'));
    const reversed = await post({
      type: 'certificate',
      name: 'rv',
      value: pki.caCert + pki.leafCert,
    });
    expect(reversed.json).toMatchObject(errorOf('INVALID_REQUEST', 'value'));
    const garbage = await post({
      type: 'certificate',
      name: 'gb',
      value: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
    });
    expect(garbage.json).toMatchObject(errorOf('INVALID_REQUEST', 'value'));
    const withExpiry = await post({
      type: 'certificate',
      name: 'ex',
      value: pki.leafCert,
      expires_at: '2040-01-01T00:00:00Z',
    });
    expect(withExpiry.json).toMatchObject(errorOf('INVALID_REQUEST', 'expires_at'));
    const plain = await post({ type: 'certificate', name: 'plain', value: pki.leafCert });
    expect(plain.status).toBe(201);
    expect(plain.json.has_private_key).toBe(false);
    const pem = await w.send(
      w.admin,
      'GET',
      `/v1/vaults/${vault}/certificates/${plain.json.id}/download`,
    );
    expect(pem.text).toBe(pki.leafCert.replace(/\r\n/g, '\n'));
    expect(
      (await w.send(w.admin, 'PUT', `/v1/resources/${plain.json.id}`, { value: pki.leafCert }))
        .status,
    ).toBe(409);
    expect(
      (await w.send(w.admin, 'PUT', `/v1/resources/${plain.json.id}`, { expires_at: null })).status,
    ).toBe(400);
    expect(w.count('resources')).toBe(3);
  });
});

describe('projects, vaults and names', () => {
  let w: World;
  beforeAll(() => {
    w = openWorld();
  });
  afterAll(async () => w.close());

  test('uniqueness conflicts are 409 with details.field', async () => {
    const a = (await w.send(w.admin, 'POST', '/v1/projects', { name: 'alpha' })).json;
    const b = (await w.send(w.admin, 'POST', '/v1/projects', { name: 'beta' })).json;
    expect((await w.send(w.admin, 'POST', '/v1/projects', { name: 'alpha' })).json).toMatchObject(
      errorOf('CONFLICT', 'name'),
    );
    expect(
      (await w.send(w.admin, 'PUT', `/v1/projects/${b.id}`, { name: 'alpha' })).json,
    ).toMatchObject(errorOf('CONFLICT', 'name'));
    const va = (await w.send(w.admin, 'POST', '/v1/vaults', { project_id: a.id, name: 'prod' }))
      .json;
    expect(
      (await w.send(w.admin, 'POST', '/v1/vaults', { project_id: b.id, name: 'prod' })).status,
    ).toBe(201);
    expect(
      (await w.send(w.admin, 'POST', '/v1/vaults', { project_id: a.id, name: 'prod' })).json,
    ).toMatchObject(errorOf('CONFLICT', 'name'));
    const secret = { type: 'secret', vault_id: va.id, name: 'X', value: '1' };
    const first = (await w.send(w.admin, 'POST', '/v1/resources', secret)).json;
    expect((await w.send(w.admin, 'POST', '/v1/resources', secret)).json).toMatchObject(
      errorOf('CONFLICT', 'name'),
    );
    // Another type may share the name.
    const key = await w.send(w.admin, 'POST', '/v1/resources', {
      type: 'key',
      vault_id: va.id,
      name: 'X',
      generate: { algorithm: 'ed25519' },
    });
    expect(key.status).toBe(201);
    // A deleted resource frees its name; restoring it while the name is taken is a 409.
    await w.send(w.admin, 'DELETE', `/v1/resources/${first.id}`);
    const second = await w.send(w.admin, 'POST', '/v1/resources', secret);
    expect(second.status).toBe(201);
    const restore = await w.send(w.admin, 'POST', `/v1/resources/${first.id}/restore`);
    expect(restore.json).toMatchObject(errorOf('CONFLICT', 'name'));
    const notDeleted = await w.send(w.admin, 'POST', `/v1/resources/${second.json.id}/restore`);
    expect(notDeleted.status).toBe(409);
  });

  test('a project with vaults and a vault with live resources cannot be deleted (409)', async () => {
    const p = (await w.send(w.admin, 'POST', '/v1/projects', { name: 'del' })).json;
    const v = (await w.send(w.admin, 'POST', '/v1/vaults', { project_id: p.id, name: 'v' })).json;
    const r = (
      await w.send(w.admin, 'POST', '/v1/resources', {
        type: 'secret',
        vault_id: v.id,
        name: 'S',
        value: 's',
      })
    ).json;
    expect((await w.send(w.admin, 'DELETE', `/v1/projects/${p.id}`)).json).toMatchObject(
      errorOf('CONFLICT'),
    );
    expect((await w.send(w.admin, 'DELETE', `/v1/vaults/${v.id}`)).json).toMatchObject(
      errorOf('CONFLICT'),
    );
    await w.send(w.admin, 'DELETE', `/v1/resources/${r.id}`);
    const versionsBefore = w.count('resource_versions');
    expect((await w.send(w.admin, 'DELETE', `/v1/vaults/${v.id}`)).json).toEqual({
      id: v.id,
      deleted: true,
    });
    expect(w.count('resource_versions')).toBe(versionsBefore - 1); // purged with the vault
    expect((await w.send(w.admin, 'GET', `/v1/vaults/${v.id}`)).status).toBe(404);
    expect((await w.send(w.admin, 'DELETE', `/v1/projects/${p.id}`)).json).toEqual({
      id: p.id,
      deleted: true,
    });
    expect((await w.send(w.admin, 'GET', `/v1/projects/${p.id}`)).status).toBe(404);
  });

  test('unknown body fields and wrong types are 400 naming the field; a missing vault is 404', async () => {
    const p = (await w.send(w.admin, 'POST', '/v1/projects', { name: 'strict' })).json;
    const unknown = await w.send(w.admin, 'POST', '/v1/projects', { name: 'x', colour: 'red' });
    expect(unknown.json).toMatchObject(errorOf('INVALID_REQUEST', 'colour'));
    const typo = await w.send(w.admin, 'PUT', `/v1/projects/${p.id}`, { nmae: 'x' });
    expect(typo.json).toMatchObject(errorOf('INVALID_REQUEST', 'nmae'));
    const wrong = await w.send(w.admin, 'POST', '/v1/vaults', {
      project_id: p.id,
      name: 'v',
      restricted: 'yes',
    });
    expect(wrong.json).toMatchObject(errorOf('INVALID_REQUEST', 'restricted'));
    const noProject = await w.send(w.admin, 'POST', '/v1/vaults', {
      project_id: 'prj_01jq3v6x1nf4r8s2k9w7y5t3m0',
      name: 'v',
    });
    expect(noProject.json).toMatchObject(errorOf('NOT_FOUND'));
    // A missing enum field is refused, never defaulted.
    const noType = await w.send(w.admin, 'POST', '/v1/resources', {
      vault_id: 'vlt_01jq3v6x1nf4r8s2k9w7y5t3m0',
      name: 'x',
      value: 'x',
    });
    expect(noType.json).toMatchObject(errorOf('INVALID_REQUEST', 'type'));
    const noAlgorithm = await w.send(w.admin, 'POST', '/v1/resources', {
      type: 'key',
      vault_id: 'vlt_01jq3v6x1nf4r8s2k9w7y5t3m0',
      name: 'x',
      generate: {},
    });
    expect(noAlgorithm.json).toMatchObject(errorOf('INVALID_REQUEST', 'generate.algorithm'));
    const noVault = await w.send(w.admin, 'POST', '/v1/resources', {
      type: 'secret',
      vault_id: 'vlt_01jq3v6x1nf4r8s2k9w7y5t3m0',
      name: 'x',
      value: 'x',
    });
    expect(noVault.status).toBe(404);
  });

  test('a manager limited to one project reaches nothing of another; restricted vaults are for managers and grants', async () => {
    const a = (await w.send(w.admin, 'POST', '/v1/projects', { name: 'reach-a' })).json;
    const b = (await w.send(w.admin, 'POST', '/v1/projects', { name: 'reach-b' })).json;
    const locked = (
      await w.send(w.admin, 'POST', '/v1/vaults', {
        project_id: a.id,
        name: 'locked',
        restricted: true,
      })
    ).json;
    const vb = (await w.send(w.admin, 'POST', '/v1/vaults', { project_id: b.id, name: 'open' }))
      .json;
    const manager = w.key({ role: 'manager', projectIds: [a.id] }).token;
    expect((await w.send(manager, 'GET', `/v1/vaults/${locked.id}`)).status).toBe(200);
    for (const [method, path, body] of [
      ['GET', `/v1/projects/${b.id}`, undefined],
      ['GET', `/v1/vaults/${vb.id}`, undefined],
      ['PUT', `/v1/vaults/${vb.id}`, { name: 'x' }],
      ['POST', '/v1/vaults', { project_id: b.id, name: 'mine' }],
      ['POST', '/v1/resources', { type: 'secret', vault_id: vb.id, name: 'x', value: 'x' }],
    ] as const) {
      const reply = await w.send(manager, method, path, body);
      expect(`${method} ${path} ${reply.status}`).toBe(`${method} ${path} 404`);
    }
    const projects = await w.send(manager, 'GET', '/v1/projects');
    expect(projects.json.data.map((p: { id: string }) => p.id)).toEqual([a.id]);
    const contributor = w.key({ role: 'contributor' }).token;
    expect((await w.send(contributor, 'GET', `/v1/vaults/${locked.id}`)).status).toBe(404);
    const granted = w.key({ role: 'contributor', vaultIds: [locked.id] }).token;
    expect((await w.send(granted, 'GET', `/v1/vaults/${locked.id}`)).status).toBe(200);
    // A vault grant shows the vault's project, but gives no authority over it.
    expect((await w.send(granted, 'GET', `/v1/projects/${a.id}`)).status).toBe(200);
    expect((await w.send(granted, 'GET', `/v1/projects/${b.id}`)).status).toBe(404);
    const hidden = w.instance.sqlite
      .query("SELECT outcome FROM audit_log WHERE target_id = ? AND action = 'vault.read'")
      .all(locked.id) as { outcome: string }[];
    expect(hidden.map((r) => r.outcome)).toContain('denied');
  });
});

describe('lists', () => {
  let w: World;
  let vaultA: string;
  let vaultB: string;
  let project: string;
  const created: string[] = [];
  beforeAll(async () => {
    w = openWorld();
    project = (await w.send(w.admin, 'POST', '/v1/projects', { name: 'lists' })).json.id;
    vaultA = (await w.send(w.admin, 'POST', '/v1/vaults', { project_id: project, name: 'a' })).json
      .id;
    vaultB = (await w.send(w.admin, 'POST', '/v1/vaults', { project_id: project, name: 'b' })).json
      .id;
    for (let i = 0; i < 7; i++) {
      const reply = await w.send(w.admin, 'POST', '/v1/resources', {
        type: 'secret',
        vault_id: i % 2 === 0 ? vaultA : vaultB,
        name: `S${i}`,
        value: `VALUE-MARKER-${i}`,
        tags: i < 3 ? ['low'] : ['high'],
        enabled: i !== 6,
      });
      created.push(reply.json.id);
      if (i % 3 === 0) continue; // same-millisecond creations are ordered by id
      w.clock.advance(10);
    }
  });
  afterAll(async () => w.close());

  test('page and limit are validated, naming the field', async () => {
    for (const [query, field] of [
      ['page=0', 'page'],
      ['page=-1', 'page'],
      ['page=x', 'page'],
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['limit=1.5', 'limit'],
      ['type=folder', 'type'],
      ['enabled=yes', 'enabled'],
      ['vault_id=nope', 'vault_id'],
      ['colour=red', 'colour'],
    ]) {
      for (const path of ['/v1/resources', '/v1/projects', '/v1/vaults']) {
        if (path !== '/v1/resources' && !['page', 'limit', 'colour'].includes(field!)) continue;
        const reply = await w.send(w.admin, 'GET', `${path}?${query}`);
        expect(`${path}?${query} ${reply.status}`).toBe(`${path}?${query} 400`);
        expect(reply.json).toMatchObject(errorOf('INVALID_REQUEST', field));
      }
    }
  });

  test('newest first, stable, with Link headers and no values', async () => {
    const all = await w.send(w.admin, 'GET', '/v1/resources?limit=100');
    expect(all.json.data.map((r: { id: string }) => r.id)).toEqual([...created].reverse());
    expect(all.json.pagination).toEqual({ total: 7, page: 1, limit: 100 });
    expect(all.text).not.toContain('VALUE-MARKER');
    expect(all.headers.get('link')).toBeNull();
    const page2 = await w.send(w.admin, 'GET', `/v1/resources?limit=3&page=2&vault_id=${vaultA}`);
    expect(page2.json.pagination).toEqual({ total: 4, page: 2, limit: 3 });
    expect(page2.json.data.map((r: { id: string }) => r.id)).toEqual([created[0]]);
    expect(page2.headers.get('link')).toBe(
      `</v1/resources?limit=3&page=1&vault_id=${vaultA}>; rel="prev"`,
    );
    const page1 = await w.send(w.admin, 'GET', '/v1/resources?limit=3');
    expect(page1.headers.get('link')).toBe('</v1/resources?limit=3&page=2>; rel="next"');
    const beyond = await w.send(w.admin, 'GET', '/v1/resources?limit=3&page=9');
    expect(beyond.json.data).toEqual([]);
  });

  test('totals follow every change (creates, deletes, restores, a vault becoming restricted)', async () => {
    const contributor = w.key({ role: 'contributor' }).token;
    const total = async (token: string, query = '') =>
      (await w.send(token, 'GET', `/v1/resources?limit=1${query}`)).json.pagination.total;
    expect(await total(contributor)).toBe(7);
    expect(await total(contributor, `&vault_id=${vaultB}`)).toBe(3);
    await w.send(w.admin, 'PUT', `/v1/vaults/${vaultB}`, { restricted: true });
    expect(await total(contributor)).toBe(4);
    expect(await total(contributor, `&vault_id=${vaultB}`)).toBe(0);
    expect(await total(w.admin)).toBe(7);
    await w.send(w.admin, 'PUT', `/v1/vaults/${vaultB}`, { restricted: false });
    expect(await total(contributor)).toBe(7);
    const extra = await w.send(w.admin, 'POST', '/v1/resources', {
      type: 'secret',
      vault_id: vaultA,
      name: 'extra',
      value: 'x',
    });
    expect(await total(contributor)).toBe(8);
    await w.send(w.admin, 'PUT', `/v1/resources/${extra.json.id}`, { enabled: false });
    expect(await total(contributor, '&enabled=false')).toBe(2);
    await w.send(w.admin, 'DELETE', `/v1/resources/${extra.json.id}`);
    expect(await total(contributor)).toBe(7);
    expect(await total(contributor, '&enabled=false')).toBe(1);
    await w.send(w.admin, 'POST', `/v1/resources/${extra.json.id}/restore`);
    expect(await total(contributor)).toBe(8);
    await w.send(w.admin, 'DELETE', `/v1/resources/${extra.json.id}`);
    expect(await total(w.admin)).toBe(7);
  });

  test('pages stay exact in any visiting order, also after changes (remembered bookmarks)', async () => {
    const all = async (token: string) =>
      (await w.send(token, 'GET', '/v1/resources?limit=100')).json.data.map(
        (r: { id: string }) => r.id,
      );
    const page = async (token: string, n: number) =>
      (await w.send(token, 'GET', `/v1/resources?limit=2&page=${n}`)).json.data.map(
        (r: { id: string }) => r.id,
      );
    const reader = w.key({ role: 'reader' }).token;
    for (const token of [w.admin, reader]) {
      let expected: string[] = await all(token);
      const check = async (n: number) =>
        expect(await page(token, n)).toEqual(expected.slice((n - 1) * 2, n * 2));
      for (const n of [1, 2, 3, 4, 4, 3, 2, 1, 3, 1, 4, 2]) await check(n);
      const made = await w.send(w.admin, 'POST', '/v1/resources', {
        type: 'secret',
        vault_id: vaultB,
        name: `paging-${token.slice(-6)}`,
        value: 'x',
      });
      expected = await all(token);
      for (const n of [4, 3, 2, 1]) await check(n);
      await w.send(w.admin, 'DELETE', `/v1/resources/${made.json.id}`);
      expected = await all(token);
      for (const n of [3, 4, 1, 2]) await check(n);
    }
  });

  test('filters: vault_id, project_id, type, name, tag, enabled', async () => {
    const ids = async (query: string) =>
      (await w.send(w.admin, 'GET', `/v1/resources?limit=100&${query}`)).json.data
        .map((r: { id: string }) => r.id)
        .sort();
    expect(await ids(`vault_id=${vaultB}`)).toEqual([created[1], created[3], created[5]].sort());
    expect(await ids(`project_id=${project}`)).toHaveLength(7);
    expect(await ids('project_id=prj_01jq3v6x1nf4r8s2k9w7y5t3m0')).toEqual([]);
    expect(await ids('type=key')).toEqual([]);
    expect(await ids('type=secret&name=S4')).toEqual([created[4]]);
    expect(await ids('tag=low')).toEqual(created.slice(0, 3).sort());
    expect(await ids('enabled=false')).toEqual([created[6]]);
    expect(await ids(`tag=high&enabled=true&vault_id=${vaultA}`)).toEqual([created[4]].sort());
  });
});

describe('limits: each refused before anything is written', () => {
  let w: World;
  let vault: string;
  let secret: string;
  beforeAll(async () => {
    w = openWorld({ resources: { max_value_bytes: 1024 } });
    const project = (await w.send(w.admin, 'POST', '/v1/projects', { name: 'limits' })).json.id;
    vault = (await w.send(w.admin, 'POST', '/v1/vaults', { project_id: project, name: 'v' })).json
      .id;
    secret = (
      await w.send(w.admin, 'POST', '/v1/resources', {
        type: 'secret',
        vault_id: vault,
        name: 'S',
        value: 's',
      })
    ).json.id;
  });
  afterAll(async () => w.close());

  /** Everything a refused write could have touched. */
  const snapshot = () =>
    JSON.stringify({
      resources: w.instance.sqlite.query('SELECT * FROM resources ORDER BY id').all(),
      versions: w.count('resource_versions'),
      projects: w.count('projects'),
      vaults: w.count('vaults'),
      events: w.count('events'),
    });

  const cases: [string, string, string, Record<string, unknown>, number, string][] = [];
  const base = () => ({ type: 'secret', vault_id: vault, name: 'N', value: 'x' });
  test('value size (413), names (1–255, printable, no "/") and tags (≤ 32 of 1–64)', async () => {
    const before = snapshot();
    const tooBig = 'é'.repeat(513); // 1026 bytes, 513 characters
    cases.push(
      ['POST', '/v1/resources', 'value', { ...base(), value: tooBig }, 413, 'PAYLOAD_TOO_LARGE'],
      ['PUT', `/v1/resources/${secret}`, 'value', { value: tooBig }, 413, 'PAYLOAD_TOO_LARGE'],
      [
        'POST',
        '/v1/resources',
        'name',
        { ...base(), name: 'n'.repeat(256) },
        400,
        'INVALID_REQUEST',
      ],
      ['POST', '/v1/resources', 'name', { ...base(), name: '' }, 400, 'INVALID_REQUEST'],
      ['POST', '/v1/resources', 'name', { ...base(), name: 'a/b' }, 400, 'INVALID_REQUEST'],
      ['POST', '/v1/resources', 'name', { ...base(), name: 'tab\there' }, 400, 'INVALID_REQUEST'],
      ['PUT', `/v1/resources/${secret}`, 'name', { name: 'x/y' }, 400, 'INVALID_REQUEST'],
      ['POST', '/v1/projects', 'name', { name: 'p/q' }, 400, 'INVALID_REQUEST'],
      [
        'POST',
        '/v1/vaults',
        'name',
        { project_id: 'prj_01jq3v6x1nf4r8s2k9w7y5t3m0', name: 'n'.repeat(256) },
        400,
        'INVALID_REQUEST',
      ],
      [
        'POST',
        '/v1/resources',
        'tags',
        { ...base(), tags: Array.from({ length: 33 }, (_, i) => `t${i}`) },
        400,
        'INVALID_REQUEST',
      ],
      [
        'POST',
        '/v1/resources',
        'tags.0',
        { ...base(), tags: ['t'.repeat(65)] },
        400,
        'INVALID_REQUEST',
      ],
      ['POST', '/v1/resources', 'tags.1', { ...base(), tags: ['ok', ''] }, 400, 'INVALID_REQUEST'],
      ['PUT', `/v1/resources/${secret}`, 'tags.0', { tags: ['a,b'] }, 400, 'INVALID_REQUEST'],
      [
        'POST',
        '/v1/resources',
        'value',
        { ...base(), value: 'lone \ud800 surrogate' },
        400,
        'INVALID_REQUEST',
      ],
    );
    for (const [method, path, field, body, status, code] of cases) {
      const reply = await w.send(w.admin, method, path, body);
      const label = `${method} ${path} ${field}`;
      expect(`${label} ${reply.status}`).toBe(`${label} ${status}`);
      expect(reply.json).toMatchObject(errorOf(code, field));
      expect(snapshot()).toBe(before);
    }
    // At the limit exactly, and 32 tags of 64 characters, are fine.
    const fits = await w.send(w.admin, 'POST', '/v1/resources', {
      ...base(),
      name: 'n'.repeat(255),
      value: 'é'.repeat(512),
      tags: Array.from({ length: 32 }, (_, i) => `${i}`.padEnd(64, 't')),
    });
    expect(fits.status).toBe(201);
    const emoji = await w.send(w.admin, 'POST', '/v1/projects', { name: '🔑'.repeat(255) });
    expect(emoji.status).toBe(201);
  });

  test('a key or certificate upload larger than the limit is a 413 naming its field', async () => {
    const before = snapshot();
    const pem = `-----BEGIN PRIVATE KEY-----\n${'A'.repeat(2000)}\n-----END PRIVATE KEY-----\n`;
    const key = await w.send(w.admin, 'POST', '/v1/resources', {
      type: 'key',
      vault_id: vault,
      name: 'k',
      value: pem,
    });
    expect(key.json).toMatchObject(errorOf('PAYLOAD_TOO_LARGE', 'value'));
    const cert = await w.send(w.admin, 'POST', '/v1/resources', {
      type: 'certificate',
      vault_id: vault,
      name: 'c',
      value: 'x',
      private_key: pem,
    });
    expect(cert.json).toMatchObject(errorOf('PAYLOAD_TOO_LARGE', 'private_key'));
    expect(snapshot()).toBe(before);
  });
});

describe('soft delete and the purge loop', () => {
  test('restore works within deleted_retention_days; after it the purge removes values and versions', async () => {
    const w = openWorld({ storage: { deleted_retention_days: 2 } });
    try {
      const project = (await w.send(w.admin, 'POST', '/v1/projects', { name: 'purge' })).json.id;
      const vault = (
        await w.send(w.admin, 'POST', '/v1/vaults', { project_id: project, name: 'v' })
      ).json.id;
      const make = async (name: string) =>
        (
          await w.send(w.admin, 'POST', '/v1/resources', {
            type: 'secret',
            vault_id: vault,
            name,
            value: 'VALUE-MARKER-purge',
          })
        ).json.id;
      const old = await make('old');
      await w.send(w.admin, 'PUT', `/v1/resources/${old}`, { value: 'VALUE-MARKER-purge-2' });
      const young = await make('young');
      const kept = await make('kept');
      await w.send(w.admin, 'DELETE', `/v1/resources/${old}`);
      w.clock.advance(DAY);
      await w.send(w.admin, 'DELETE', `/v1/resources/${young}`);
      expect(await purgeExpired(w.instance)).toEqual({ resources: 0, idempotencyKeys: 0 });
      w.clock.advance(DAY + 1);
      // `old` is past the window: not restorable, and purged by the next pass.
      expect((await w.send(w.admin, 'POST', `/v1/resources/${old}/restore`)).status).toBe(404);
      const listed = await w.send(w.admin, 'GET', '/v1/resources?deleted=true');
      expect(listed.json.data.map((r: { id: string }) => r.id)).toEqual([young]);
      const loop = startPurgeLoop(w.instance, { intervalMs: 60_000 });
      await loop.stop();
      expect(w.instance.sqlite.query('SELECT id FROM resources ORDER BY id').all()).toEqual(
        [{ id: young }, { id: kept }].sort((a, b) => a.id.localeCompare(b.id)),
      );
      expect(
        w.instance.sqlite
          .query('SELECT count(*) AS n FROM resource_versions WHERE resource_id = ?')
          .get(old),
      ).toEqual({ n: 0 });
      const purgeEntries = w.instance.sqlite
        .query(
          "SELECT actor_type, actor_id, target_id FROM audit_log WHERE action = 'resource.purge'",
        )
        .all();
      expect(purgeEntries).toEqual([
        { actor_type: 'system', actor_id: 'resource-purge', target_id: old },
      ]);
      expect((await w.send(w.admin, 'POST', `/v1/resources/${young}/restore`)).status).toBe(200);
      expect((await w.send(w.admin, 'GET', `/v1/resources/${young}`)).json.value).toBe(
        'VALUE-MARKER-purge',
      );
    } finally {
      await w.close();
    }
  });
});

describe('OpenAPI document', () => {
  test('every projects, vaults and resources route is documented with its body and responses', async () => {
    const w = openWorld();
    try {
      const doc = (await w.send(null, 'GET', '/docs/json')).json;
      const routes = Object.keys(ROUTE_PERMISSIONS).filter((route) =>
        /^\w+ \/v1\/(projects|vaults|resources)/.test(route),
      );
      expect(routes.length).toBe(25);
      for (const route of routes) {
        const [method, path] = route.split(' ') as [string, string];
        const operation = doc.paths[path.replace(/:(\w+)/g, '{$1}')]?.[method.toLowerCase()];
        expect(operation, route).toBeDefined();
        expect(operation.summary, route).toBeTruthy();
        const success = operation.responses['200'] ?? operation.responses['201'];
        expect(Object.keys(success?.content ?? {}).length, route).toBeGreaterThan(0);
        if ((method === 'POST' || method === 'PUT') && !route.includes('restore')) {
          const schema = operation.requestBody?.content?.['application/json']?.schema;
          expect(schema?.properties, route).toBeDefined();
        }
      }
    } finally {
      await w.close();
    }
  });
});

describe('master-key rotation', () => {
  test('rotate --reencrypt re-seals every version and stored idempotent response', async () => {
    const w = openWorld();
    try {
      const project = (await w.send(w.admin, 'POST', '/v1/projects', { name: 'rot' })).json.id;
      const vault = (
        await w.send(w.admin, 'POST', '/v1/vaults', { project_id: project, name: 'v' })
      ).json.id;
      const secret = (
        await w.send(
          w.admin,
          'POST',
          '/v1/resources',
          { type: 'secret', vault_id: vault, name: 'S', value: 'VALUE-MARKER-rot-1' },
          { 'idempotency-key': 'rotation' },
        )
      ).json.id;
      await w.send(w.admin, 'PUT', `/v1/resources/${secret}`, { value: 'VALUE-MARKER-rot-2' });
      const columns = [resourceValueColumn, idempotencyResponseColumn];
      const before = countValuesByDataKey(w.instance.sqlite, columns).byVersion;
      expect([...before]).toEqual([[1, 3]]); // two versions and one stored response
      const ctx = {
        sqlite: w.instance.sqlite,
        config: w.instance.config,
        env: {},
        clock: w.instance.clock,
        logger: w.instance.logger,
        keyring: w.instance.keyring,
      };
      const rotation = rotateDataKey(ctx, { actor: 'test' });
      const result = await reencryptValues(ctx, rotation.id, { columns, sweepGraceMs: 0 });
      expect(result).toMatchObject({ reencrypted: 3, undecryptable: 0, completed: true });
      const after = countValuesByDataKey(w.instance.sqlite, columns).byVersion;
      expect([...after.keys()]).toEqual([result.dataKeyVersion]);
      expect(result.dataKeyVersion).toBeGreaterThan(1);
      const v1 = await w.send(w.admin, 'GET', `/v1/resources/${secret}/versions/1`);
      expect(v1.json.value).toBe('VALUE-MARKER-rot-1');
      expect((await w.send(w.admin, 'GET', `/v1/resources/${secret}`)).json.value).toBe(
        'VALUE-MARKER-rot-2',
      );
    } finally {
      await w.close();
    }
  });
});

describe('Unicode names', () => {
  test('names and tags are stored in NFC: both forms of "café" are one name', async () => {
    const w = openWorld();
    const decomposed = 'cafe\u0301';
    const composed = 'caf\u00e9';
    try {
      const project = await w.send(w.admin, 'POST', '/v1/projects', { name: decomposed });
      expect(project.status).toBe(201);
      expect(project.json.name).toBe(composed);
      expect((await w.send(w.admin, 'POST', '/v1/projects', { name: composed })).status).toBe(409);
      const vault = (
        await w.send(w.admin, 'POST', '/v1/vaults', { project_id: project.json.id, name: 'v' })
      ).json.id;
      const secret = await w.send(w.admin, 'POST', '/v1/resources', {
        type: 'secret',
        vault_id: vault,
        name: decomposed,
        value: 'VALUE-MARKER-nfc',
        tags: [decomposed, composed],
      });
      expect(secret.status).toBe(201);
      expect(secret.json).toMatchObject({ name: composed, tags: [composed] });
      const again = await w.send(w.admin, 'POST', '/v1/resources', {
        type: 'secret',
        vault_id: vault,
        name: composed,
        value: 'x',
      });
      expect(again.status).toBe(409);
      for (const name of [decomposed, composed]) {
        const byName = await w.send(
          w.admin,
          'GET',
          `/v1/vaults/${vault}/secrets/${encodeURIComponent(name)}`,
        );
        expect(byName.status).toBe(200);
        expect(byName.json.value).toBe('VALUE-MARKER-nfc');
        const listed = await w.send(
          w.admin,
          'GET',
          `/v1/resources?name=${encodeURIComponent(name)}&tag=${encodeURIComponent(name)}`,
        );
        expect(listed.json.data.map((r: { id: string }) => r.id)).toEqual([secret.json.id]);
      }
    } finally {
      await w.close();
    }
  });
});

describe('hidden resources', () => {
  test('a resource outside the key’s reach answers exactly as one that does not exist', async () => {
    const w = openWorld();
    try {
      const post = async (path: string, body: unknown) =>
        (await w.send(w.admin, 'POST', path, body)).json.id as string;
      const p1 = await post('/v1/projects', { name: 'p1' });
      const p2 = await post('/v1/projects', { name: 'p2' });
      const v1 = await post('/v1/vaults', { project_id: p1, name: 'open' });
      const locked = await post('/v1/vaults', { project_id: p1, name: 'locked', restricted: true });
      const v2 = await post('/v1/vaults', { project_id: p2, name: 'other' });
      const secret = (vault: string, name: string) =>
        post('/v1/resources', { type: 'secret', vault_id: vault, name, value: 'VALUE-MARKER-h' });
      const elsewhere = [await secret(v2, 'in-p2'), await secret(locked, 'in-restricted')];
      const deletedElsewhere = await secret(v2, 'deleted');
      await w.send(w.admin, 'DELETE', `/v1/resources/${deletedElsewhere}`);
      // An id of the same shape that was never created.
      const missing = `res_${'0'.repeat(26)}`;
      const contributor = w.key({ role: 'contributor', projectIds: [p1] }).token;
      const manager = w.key({ role: 'manager', projectIds: [p1] }).token;

      const reply = async (token: string, method: string, path: string, body?: unknown) => {
        const r = await w.send(token, method, path, body);
        return { status: r.status, body: r.text };
      };
      const routes = (id: string): [string, string, string, unknown?][] => [
        [contributor, 'GET', `/v1/resources/${id}`],
        [contributor, 'PUT', `/v1/resources/${id}`, { value: 'x' }],
        [contributor, 'GET', `/v1/resources/${id}/versions`],
        [contributor, 'GET', `/v1/resources/${id}/versions/1`],
        [contributor, 'POST', `/v1/resources/${id}/versions/1/restore`],
        [contributor, 'GET', `/v1/vaults/${v1}?resource=${id}`],
      ];
      for (const id of elsewhere) {
        const hidden = routes(id);
        const absent = routes(missing);
        for (let i = 0; i < hidden.length; i++) {
          const [token, method, path, body] = hidden[i]!;
          const seen = await reply(token, method, path, body);
          expect(seen.status).toBe(404);
          const [, , absentPath, absentBody] = absent[i]!;
          expect(seen).toEqual(await reply(token, method, absentPath, absentBody));
        }
      }
      const restore = (id: string) => reply(manager, 'POST', `/v1/resources/${id}/restore`);
      expect(await restore(deletedElsewhere)).toEqual(await restore(missing));
    } finally {
      await w.close();
    }
  });
});
