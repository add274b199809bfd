/**
 * The vault read API (docs/api.md §4) that the `secryn` CLI and existing clients use: exact paths
 * and shapes, which secrets a vault read returns, `?secrets=names` and `?resource=`, lookups by
 * name, the key and certificate lists and downloads — over `app.handle`, and end to end over a
 * real socket with `secryn serve`'s assembly.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { buildFeatures } from '../src/features.ts';
import { startServer } from '../src/server.ts';
import { makeTestPki } from './pki.ts';
import { errorOf, openWorld, type World } from './resources-harness.ts';

const HOUR = 3_600_000;

describe('vault read API', () => {
  let w: World;
  let vault: string;
  let otherVault: string;
  let access: string;
  const ids: Record<string, string> = {};
  const pki = makeTestPki(['read.test']);

  const create = async (body: Record<string, unknown>) => {
    const reply = await w.send(w.admin, 'POST', '/v1/resources', { vault_id: vault, ...body });
    if (reply.status !== 201) throw new Error(reply.text);
    return reply.json.id as string;
  };

  beforeAll(async () => {
    w = openWorld();
    w.clock.set(Date.now());
    const project = (await w.send(w.admin, 'POST', '/v1/projects', { name: 'read' })).json.id;
    vault = (await w.send(w.admin, 'POST', '/v1/vaults', { project_id: project, name: 'app' })).json
      .id;
    otherVault = (
      await w.send(w.admin, 'POST', '/v1/vaults', { project_id: project, name: 'other' })
    ).json.id;
    access = w.key({ role: 'access', vaultIds: [vault] }).token;
    ids.zeta = await create({ type: 'secret', name: 'ZETA', value: 'z', tags: ['t'] });
    ids.alpha = await create({
      type: 'secret',
      name: 'ALPHA',
      value: 'a',
      content_type: 'application/json',
    });
    ids.spaced = await create({ type: 'secret', name: 'with space é', value: 's' });
    ids.disabled = await create({ type: 'secret', name: 'DISABLED', value: 'd', enabled: false });
    ids.future = await create({
      type: 'secret',
      name: 'FUTURE',
      value: 'f',
      activates_at: new Date(w.clock.now() + HOUR).toISOString(),
    });
    ids.expiring = await create({
      type: 'secret',
      name: 'EXPIRING',
      value: 'e',
      expires_at: new Date(w.clock.now() + HOUR).toISOString(),
    });
    ids.deleted = await create({ type: 'secret', name: 'DELETED', value: 'x' });
    await w.send(w.admin, 'DELETE', `/v1/resources/${ids.deleted}`);
    ids.key = await create({ type: 'key', name: 'ALPHA', generate: { algorithm: 'ed25519' } });
    ids.key2 = await create({ type: 'key', name: 'signing', generate: { algorithm: 'ec-p256' } });
    ids.disabledKey = await create({
      type: 'key',
      name: 'off',
      generate: { algorithm: 'ed25519' },
      enabled: false,
    });
    ids.cert = await create({
      type: 'certificate',
      name: 'tls 🔐',
      value: pki.leafCert + pki.caCert,
      private_key: pki.leafKey,
    });
    ids.elsewhere = (
      await w.send(w.admin, 'POST', '/v1/resources', {
        type: 'secret',
        vault_id: otherVault,
        name: 'ALPHA',
        value: 'other',
      })
    ).json.id;
  });
  afterAll(async () => w.close());

  test('GET /v1/vaults/:id: the vault plus its enabled, active secrets by name, with values', async () => {
    const reply = await w.send(access, 'GET', `/v1/vaults/${vault}`);
    expect(reply.status).toBe(200);
    expect(Object.keys(reply.json).sort()).toEqual(
      [
        'created_at',
        'description',
        'id',
        'name',
        'project_id',
        'restricted',
        'secrets',
        'updated_at',
      ].sort(),
    );
    expect(reply.json.secrets).toEqual([
      {
        id: ids.alpha,
        name: 'ALPHA',
        value: 'a',
        content_type: 'application/json',
        tags: [],
        updated_at: expect.any(String),
      },
      {
        id: ids.expiring,
        name: 'EXPIRING',
        value: 'e',
        content_type: 'text/plain',
        tags: [],
        updated_at: expect.any(String),
      },
      {
        id: ids.zeta,
        name: 'ZETA',
        value: 'z',
        content_type: 'text/plain',
        tags: ['t'],
        updated_at: expect.any(String),
      },
      {
        id: ids.spaced,
        name: 'with space é',
        value: 's',
        content_type: 'text/plain',
        tags: [],
        updated_at: expect.any(String),
      },
    ]);
    const names = await w.send(access, 'GET', `/v1/vaults/${vault}?secrets=names`);
    expect(names.json.secrets).toEqual([
      { id: ids.alpha, name: 'ALPHA' },
      { id: ids.expiring, name: 'EXPIRING' },
      { id: ids.zeta, name: 'ZETA' },
      { id: ids.spaced, name: 'with space é' },
    ]);
    const bad = await w.send(access, 'GET', `/v1/vaults/${vault}?secrets=values`);
    expect(bad.json).toMatchObject(errorOf('INVALID_REQUEST', 'secrets'));
    // A key without resources:read sees the vault but not its secrets.
    const vaultsOnly = w.key({ role: 'access', vaultIds: [vault], scopes: ['vaults:read'] }).token;
    const bare = await w.send(vaultsOnly, 'GET', `/v1/vaults/${vault}`);
    expect(bare.status).toBe(200);
    expect(bare.json.secrets).toBeUndefined();
  });

  test('?resource=: one resource of the vault with its value', async () => {
    const key = await w.send(access, 'GET', `/v1/vaults/${vault}?resource=${ids.key}`);
    expect(key.json).toMatchObject({ id: ids.key, type: 'key', algorithm: 'ed25519' });
    expect(key.json.value).toStartWith('-----BEGIN PRIVATE KEY-----');
    const cert = await w.send(access, 'GET', `/v1/vaults/${vault}?resource=${ids.cert}`);
    expect(cert.json.value).toContain('-----BEGIN CERTIFICATE-----');
    const secret = await w.send(access, 'GET', `/v1/vaults/${vault}?resource=${ids.zeta}`);
    expect(secret.json).toMatchObject({ id: ids.zeta, value: 'z', version: 1 });
    const disabled = await w.send(access, 'GET', `/v1/vaults/${vault}?resource=${ids.disabled}`);
    expect(disabled.status).toBe(404);
    expect(disabled.json.error.details.reason).toBe('The resource is disabled');
    for (const id of [ids.deleted, ids.elsewhere, 'res_nope']) {
      expect((await w.send(w.admin, 'GET', `/v1/vaults/${vault}?resource=${id}`)).status).toBe(404);
    }
  });

  test('GET /v1/vaults/:id/secrets/:name: one secret with its value; names are URL-decoded', async () => {
    const alpha = await w.send(access, 'GET', `/v1/vaults/${vault}/secrets/ALPHA`);
    expect(alpha.json).toEqual({
      id: ids.alpha,
      name: 'ALPHA',
      value: 'a',
      content_type: 'application/json',
      tags: [],
      updated_at: expect.any(String),
    });
    const spaced = await w.send(
      access,
      'GET',
      `/v1/vaults/${vault}/secrets/${encodeURIComponent('with space é')}`,
    );
    expect(spaced.json.value).toBe('s');
    for (const [name, status, reason] of [
      ['DISABLED', 404, 'The resource is disabled'],
      ['FUTURE', 404, 'not active until'],
      ['DELETED', 404, undefined],
      ['signing', 404, undefined], // a key, not a secret
      ['NOPE', 404, undefined],
    ] as const) {
      const reply = await w.send(access, 'GET', `/v1/vaults/${vault}/secrets/${name}`);
      expect(`${name} ${reply.status}`).toBe(`${name} ${status}`);
      if (reason) expect(reply.json.error.details.reason).toContain(reason);
    }
    const reader = w.key({ role: 'reader', vaultIds: [vault] }).token;
    const masked = await w.send(reader, 'GET', `/v1/vaults/${vault}/secrets/ALPHA`);
    expect(masked.status).toBe(200);
    expect(masked.json.value).toBeUndefined();
  });

  test('keys and certificates lists: {data, pagination}, that type and vault only, newest first', async () => {
    const keys = await w.send(access, 'GET', `/v1/vaults/${vault}/keys`);
    expect(keys.json.data.map((k: { id: string }) => k.id)).toEqual([
      ids.disabledKey,
      ids.key2,
      ids.key,
    ]);
    expect(keys.json.pagination).toEqual({ total: 3, page: 1, limit: 50 });
    expect(keys.text).not.toContain('PRIVATE KEY');
    const page = await w.send(access, 'GET', `/v1/vaults/${vault}/keys?limit=2`);
    expect(page.headers.get('link')).toBe(`</v1/vaults/${vault}/keys?limit=2&page=2>; rel="next"`);
    const certs = await w.send(access, 'GET', `/v1/vaults/${vault}/certificates`);
    expect(certs.json.data).toEqual([
      expect.objectContaining({ id: ids.cert, subject: 'CN=read.test', has_private_key: true }),
    ]);
    expect((await w.send(access, 'GET', `/v1/vaults/${otherVault}/keys`)).status).toBe(404);
  });

  test('downloads: PEM bodies with a safe attachment name; 404 for the wrong type or vault', async () => {
    const key = await w.send(access, 'GET', `/v1/vaults/${vault}/keys/${ids.key2}/download`);
    expect(key.status).toBe(200);
    expect(key.headers.get('content-type')).toStartWith('application/x-pem-file');
    expect(key.headers.get('content-disposition')).toBe(
      `attachment; filename="signing.pem"; filename*=UTF-8''signing.pem`,
    );
    expect(key.headers.get('cache-control')).toBe('no-store');
    const cert = await w.send(
      access,
      'GET',
      `/v1/vaults/${vault}/certificates/${ids.cert}/download`,
    );
    expect(cert.headers.get('content-disposition')).toBe(
      `attachment; filename="tls___.pem"; filename*=UTF-8''tls%20%F0%9F%94%90.pem`,
    );
    expect(cert.text).toStartWith('-----BEGIN CERTIFICATE-----');
    for (const path of [
      `/v1/vaults/${vault}/keys/${ids.cert}/download`,
      `/v1/vaults/${vault}/certificates/${ids.key}/download`,
      `/v1/vaults/${vault}/keys/${ids.zeta}/download`,
      `/v1/vaults/${otherVault}/keys/${ids.key}/download`,
      `/v1/vaults/${vault}/keys/res_nope/download`,
    ]) {
      const reply = await w.send(w.admin, 'GET', path);
      expect(`${path} ${reply.status}`).toBe(`${path} 404`);
      expect(reply.json).toMatchObject(errorOf('NOT_FOUND'));
    }
    const off = await w.send(access, 'GET', `/v1/vaults/${vault}/keys/${ids.disabledKey}/download`);
    expect(off.status).toBe(404);
    expect(off.json.error.details.reason).toBe('The resource is disabled');
  });

  test('expired: gone from the vault read, 410 on lookups, downloads and ?resource=', async () => {
    await w.send(w.admin, 'PUT', `/v1/resources/${ids.key2}`, {
      expires_at: new Date(w.clock.now() + HOUR).toISOString(),
    });
    w.clock.advance(2 * HOUR);
    const read = await w.send(access, 'GET', `/v1/vaults/${vault}?secrets=names`);
    expect(read.json.secrets.map((s: { name: string }) => s.name)).toEqual([
      'ALPHA',
      'FUTURE', // active now
      'ZETA',
      'with space é',
    ]);
    for (const path of [
      `/v1/vaults/${vault}/secrets/EXPIRING`,
      `/v1/vaults/${vault}/keys/${ids.key2}/download`,
      `/v1/vaults/${vault}?resource=${ids.expiring}`,
    ]) {
      const reply = await w.send(access, 'GET', path);
      expect(`${path} ${reply.status}`).toBe(`${path} 410`);
      expect(reply.json).toMatchObject(errorOf('GONE'));
    }
  });
});

describe('vault read API over a real socket', () => {
  test('serve assembly: create as admin, pull and download as an access key', async () => {
    const w = openWorld();
    const features = buildFeatures(w.instance);
    const running = startServer(w.instance, {
      features: features.features,
      recordOutcome: features.recordOutcome,
      port: 0,
    });
    await features.start();
    try {
      const base = running.url.href.replace(/\/$/, '');
      const send = async (token: string, method: string, path: string, body?: unknown) => {
        const response = await fetch(`${base}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        return { response, text: await response.text() };
      };
      const project = JSON.parse(
        (await send(w.admin, 'POST', '/v1/projects', { name: 'sock' })).text,
      );
      const vault = JSON.parse(
        (await send(w.admin, 'POST', '/v1/vaults', { project_id: project.id, name: 'v' })).text,
      );
      await send(w.admin, 'POST', '/v1/resources', {
        type: 'secret',
        vault_id: vault.id,
        name: 'DATABASE_URL',
        value: 'postgres://u:VALUE-MARKER@db/app',
      });
      const key = JSON.parse(
        (
          await send(w.admin, 'POST', '/v1/resources', {
            type: 'key',
            vault_id: vault.id,
            name: 'deploy',
            generate: { algorithm: 'ed25519' },
          })
        ).text,
      );
      const access = w.key({ role: 'access', vaultIds: [vault.id] }).token;
      const pulled = await send(access, 'GET', `/v1/vaults/${vault.id}`);
      expect(pulled.response.status).toBe(200);
      expect(pulled.response.headers.get('x-request-id')).toBeTruthy();
      expect(pulled.response.headers.get('x-ratelimit-limit')).toBeTruthy();
      expect(JSON.parse(pulled.text).secrets[0].value).toBe('postgres://u:VALUE-MARKER@db/app');
      const pem = await send(access, 'GET', `/v1/vaults/${vault.id}/keys/${key.id}/download`);
      expect(pem.response.headers.get('content-type')).toStartWith('application/x-pem-file');
      expect(pem.text).toStartWith('-----BEGIN PRIVATE KEY-----');
    } finally {
      await features.stop();
      await running.stop();
      await w.close();
    }
  });
});
