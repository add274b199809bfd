/**
 * Sealed values are bound to where they live (issue 13, item 2): a resource row moved to another
 * vault or project with raw SQL on a stopped instance's file does not open there, and an
 * instance whose values predate the binding re-seals them at its first start, after which a
 * format-1 value is refused.
 */
import { Database } from 'bun:sqlite';
import { afterEach, describe, expect, test } from 'bun:test';
import { manualClock } from '../src/clock.ts';
import { openValue, type DataKey } from '../src/crypto/envelope.ts';
import { unwrapDataKey } from '../src/crypto/keyring.ts';
import { readKeyFile } from '../src/keyring/key-files.ts';
import { buildFeatures } from '../src/features.ts';
import { createInstance, openInstance, type Instance } from '../src/instance.ts';
import { bindValueLocations } from '../src/keyring/bind-locations.ts';
import { encryptedColumns } from '../src/db/schema/encrypted-columns.ts';
import { sealIntegrityState } from '../src/keyring/integrity.ts';
import { selectValueRows, type ValueRow } from '../src/keyring/value-census.ts';
import { insertApiKey, newApiKeyId } from '../src/keys/service.ts';
import { resourceValueColumn } from '../src/db/schema/resources.ts';
import { signingSecrets } from '../src/webhooks/service.ts';
import { buildApp } from '../src/server.ts';
import { call, memoryLogger, tempDir, testConfig } from './harness.ts';
import { sealLegacyValue } from './legacy-seal.ts';
import { makeTestPki } from './pki.ts';

type Running = {
  instance: Instance;
  logger: ReturnType<typeof memoryLogger>;
  send(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; text: string; json: any }>;
};

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const clock = manualClock(Date.UTC(2026, 0, 1));

/** An admin token valid on every start of the instance in `dir`. */
function start(dir: string, token: { value?: string }, create = false): Running {
  const logger = memoryLogger();
  const config = testConfig(dir, {
    rate_limit: { burst: 1_000_000, requests_per_minute: 1_000_000 },
  });
  const instance = create
    ? createInstance(config, logger, undefined, { clock })
    : openInstance(config, logger, { clock });
  if (create) {
    token.value = insertApiKey(
      instance.db,
      newApiKeyId(),
      { name: 'admin', role: 'admin', projectIds: [], vaultIds: [], scopes: null, expiresAt: null },
      'test',
      clock.now(),
    ).token;
  }
  const features = buildFeatures(instance);
  const app = buildApp(instance, {
    features: features.features,
    recordOutcome: features.recordOutcome,
  });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await instance.close();
  };
  cleanups.push(close);
  return {
    instance,
    logger,
    async send(method, path, body) {
      const response = await call(app, method, path, {
        body,
        headers: { authorization: `Bearer ${token.value}` },
      });
      const text = await response.text();
      let json: any;
      try {
        json = JSON.parse(text);
      } catch {}
      return { status: response.status, text, json };
    },
  };
}

async function stop(running: Running): Promise<void> {
  await running.instance.close();
}

/** Raw SQL on the stopped instance's file, as an attacker with write access would. */
function tamper(dir: string, fn: (db: Database) => void): void {
  const db = new Database(`${dir}/secryn.db`);
  try {
    fn(db);
  } finally {
    db.close();
  }
}

async function populate(app: Running) {
  const pki = makeTestPki(['api.payments.test']);
  const project = async (name: string) =>
    (await app.send('POST', '/v1/projects', { name })).json.id as string;
  const vault = async (project_id: string, name: string) =>
    (await app.send('POST', '/v1/vaults', { project_id, name })).json.id as string;
  const a = await project('a');
  const b = await project('b');
  const ids = {
    a,
    b,
    va: await vault(a, 'va'),
    va2: await vault(a, 'va2'),
    vb: await vault(b, 'vb'),
  };
  const create = async (body: Record<string, unknown>) => {
    const reply = await app.send('POST', '/v1/resources', { vault_id: ids.va, ...body });
    expect(reply.status).toBe(201);
    return reply.json.id as string;
  };
  const res = {
    secret: await create({ type: 'secret', name: 'S', value: 'VALUE-MARKER-bind-1' }),
    key: await create({ type: 'key', name: 'K', generate: { algorithm: 'ec-p256' } }),
    cert: await create({
      type: 'certificate',
      name: 'C',
      value: pki.leafCert + pki.caCert,
      private_key: pki.leafKey,
    }),
  };
  expect(
    (await app.send('PUT', `/v1/resources/${res.secret}`, { value: 'VALUE-MARKER-bind-2' })).status,
  ).toBe(200);
  const values: Record<string, string> = {};
  for (const [name, id] of Object.entries(res)) {
    const reply = await app.send('GET', `/v1/resources/${id}`);
    expect(reply.status).toBe(200);
    values[name] = reply.json.value;
  }
  expect(values.secret).toBe('VALUE-MARKER-bind-2');
  expect(values.cert).toContain('PRIVATE KEY');
  return { ids, res, values };
}

describe('a resource moved with raw SQL', () => {
  for (const move of ['another project', 'another vault of its project'] as const) {
    test(`into ${move} does not reveal its value, and the attempt is logged`, async () => {
      using temp = tempDir('secryn-bind-');
      const token: { value?: string } = {};
      const first = start(temp.path, token, true);
      const { ids, res, values } = await populate(first);
      await stop(first);

      const [vault, project] = move === 'another project' ? [ids.vb, ids.b] : [ids.va2, ids.a];
      tamper(temp.path, (db) => {
        for (const id of Object.values(res)) {
          db.query('UPDATE resources SET vault_id = ?, project_id = ? WHERE id = ?').run(
            vault,
            project,
            id,
          );
        }
      });

      const second = start(temp.path, token);
      for (const [name, id] of Object.entries(res)) {
        const reply = await second.send('GET', `/v1/resources/${id}`);
        expect(reply.status).toBe(500);
        expect(reply.json).toEqual({
          error: { code: 'INTERNAL_ERROR', message: 'Internal server error' },
        });
        expect(reply.text).not.toContain(values[name]!.slice(0, 40));
        // Nor through the version, the vault's secret list, or the original vault.
        const version = await second.send('GET', `/v1/resources/${id}/versions/1`);
        expect(version.status).toBe(500);
        expect((await second.send('GET', `/v1/vaults/${ids.va}?resource=${id}`)).status).toBe(404);
      }
      const listing = await second.send('GET', `/v1/vaults/${vault}`);
      expect(listing.status).toBe(500);
      expect(listing.text).not.toContain('VALUE-MARKER');
      // Logged as a value that does not open where it is stored, naming the row, not the value.
      const log = second.logger.lines.join('\n');
      expect(log).toContain(`resource_versions.value row ${res.secret}:2 does not open there`);
      expect(log).toContain('tampered, moved or corrupt');
      expect(log).not.toContain('VALUE-MARKER');
      await stop(second);

      // Moved back, the same bytes open again: the binding refused them, nothing was damaged.
      tamper(temp.path, (db) => {
        for (const id of Object.values(res)) {
          db.query('UPDATE resources SET vault_id = ?, project_id = ? WHERE id = ?').run(
            ids.va,
            ids.a,
            id,
          );
        }
      });
      const third = start(temp.path, token);
      for (const [name, id] of Object.entries(res)) {
        expect((await third.send('GET', `/v1/resources/${id}`)).json.value).toBe(values[name]);
      }
    }, 30_000);
  }
});

describe('a webhook moved to another project with raw SQL', () => {
  test('no longer opens its URL or signing secret; a move through the API re-seals them', async () => {
    using temp = tempDir('secryn-bind-');
    const token: { value?: string } = {};
    const first = start(temp.path, token, true);
    const { ids } = await populate(first);
    const created = await first.send('POST', '/v1/webhooks', {
      url: 'https://hooks.example.test/T0KEN-MARKER',
      events: ['*'],
      project_id: ids.a,
    });
    expect(created.status).toBe(201);
    const hook = created.json.id as string;
    // Moved by the API (to b, then to every project): still readable, still signing.
    for (const project_id of [ids.b, null]) {
      expect((await first.send('PUT', `/v1/webhooks/${hook}`, { project_id })).status).toBe(200);
      const read = await first.send('GET', `/v1/webhooks/${hook}`);
      expect(read.json).toMatchObject({
        project_id,
        url: 'https://hooks.example.test/T0KEN-MARKER',
      });
      expect(
        signingSecrets(first.instance.db, first.instance.keyring, hook, clock.now()),
      ).toHaveLength(1);
    }
    await stop(first);

    tamper(temp.path, (db) => {
      db.query('UPDATE webhooks SET project_id = ? WHERE id = ?').run(ids.a, hook);
    });
    const second = start(temp.path, token);
    const read = await second.send('GET', `/v1/webhooks/${hook}`);
    expect(read.status).toBe(500);
    expect(read.text).not.toContain('T0KEN-MARKER');
    expect(() =>
      signingSecrets(second.instance.db, second.instance.keyring, hook, clock.now()),
    ).toThrow(/webhook_secrets\.secret row whs_\w+ does not open there/);
    expect(second.logger.lines.join('\n')).toContain(
      `webhooks.url row ${hook} does not open there`,
    );
  }, 30_000);
});

/** The unwrapped data keys of the stopped instance in `dir` (the test plays an older build). */
function dataKeys(dir: string): Map<number, DataKey> {
  const master = readKeyFile(`${dir}/master.key`)!.key;
  const keys = new Map<number, DataKey>();
  tamper(dir, (db) => {
    for (const row of db
      .query<
        { version: number; wrapped: Uint8Array },
        []
      >('SELECT version, wrapped_key AS wrapped FROM keyring_data_keys')
      .all()) {
      keys.set(row.version, {
        version: row.version,
        key: unwrapDataKey(master, row.version, row.wrapped),
      });
    }
  });
  return keys;
}

/** Rewrites every stored value as an instance from before the binding stored it. */
function downgrade(dir: string): void {
  const keys = dataKeys(dir);
  tamper(dir, (db) => {
    for (const column of encryptedColumns()) {
      const rows = db.query<ValueRow, []>(selectValueRows(column)).all();
      for (const row of rows) {
        const where = column.at(row.id, row.version ?? undefined, row);
        const key = keys.get(new DataView(row.value.buffer, row.value.byteOffset).getUint32(1))!;
        const plaintext = openValue(key, row.value, where);
        db.query(
          `UPDATE "${column.tableName}" SET "${column.columnName}" = ? WHERE "${column.idColumnName}" = ?`,
        ).run(sealLegacyValue(key, plaintext, where), row.id);
      }
    }
    db.run('UPDATE keyring_state SET value_format = 1');
  });
}

/** How many values of `table`.`column` are in each envelope format. */
function formats(dir: string, table = 'resource_versions', column = 'value') {
  const out: Record<number, number> = {};
  tamper(dir, (db) => {
    const sql = `SELECT unicode(substr(CAST("${column}" AS TEXT), 1, 1)) AS format, count(*) AS n
      FROM "${table}" GROUP BY 1`;
    for (const { format, n } of db.query<{ format: number; n: number }, []>(sql).all()) {
      out[format] = n;
    }
  });
  return out;
}

describe('migration of values sealed before the binding', () => {
  test('re-seals them at the first start (resumably), then refuses a format-1 value', async () => {
    using temp = tempDir('secryn-bind-');
    const token: { value?: string } = {};
    const first = start(temp.path, token, true);
    const { res, values, ids } = await populate(first);
    const hook = (
      await first.send('POST', '/v1/webhooks', {
        url: 'https://hooks.example.test/T0KEN-MARKER',
        events: ['*'],
        project_id: ids.a,
      })
    ).json.id;
    await stop(first);
    downgrade(temp.path);
    expect(formats(temp.path)).toEqual({ 1: 4 });
    expect(formats(temp.path, 'webhooks', 'url')).toEqual({ 1: 1 });
    expect(formats(temp.path, 'webhook_secrets', 'secret')).toEqual({ 1: 1 });

    // Interrupted after its first batch: that batch stays done, the rest is left for later.
    const partial = openForMigration(temp.path);
    let sealed = 0;
    const failing = {
      ...partial.keyring,
      decrypt: partial.keyring.decrypt.bind(partial.keyring),
      encrypt: (
        plaintext: Uint8Array | string,
        where: Parameters<typeof partial.keyring.encrypt>[1],
      ) => {
        if (++sealed > 1) throw new Error('simulated crash');
        return partial.keyring.encrypt(plaintext, where);
      },
    } as typeof partial.keyring;
    expect(() =>
      bindValueLocations(
        { sqlite: partial.sqlite, keyring: failing, logger: partial.logger },
        { batchSize: 1 },
      ),
    ).toThrow('simulated crash');
    await partial.close();
    expect(formats(temp.path)).toEqual({ 1: 3, 2: 1 });

    const second = start(temp.path, token);
    expect(formats(temp.path)).toEqual({ 2: 4 });
    expect(formats(temp.path, 'webhooks', 'url')).toEqual({ 2: 1 });
    expect(formats(temp.path, 'webhook_secrets', 'secret')).toEqual({ 2: 1 });
    expect(second.logger.lines.join('\n')).toContain('"resealed":5');
    expect((await second.send('GET', `/v1/webhooks/${hook}`)).json.url).toBe(
      'https://hooks.example.test/T0KEN-MARKER',
    );
    for (const [name, id] of Object.entries(res)) {
      expect((await second.send('GET', `/v1/resources/${id}`)).json.value).toBe(values[name]);
    }
    expect((await second.send('GET', `/v1/resources/${res.secret}/versions/1`)).json.value).toBe(
      'VALUE-MARKER-bind-1',
    );
    await stop(second);

    // An old-format value planted afterwards (here: the right bytes for its own row, moved
    // into another project) is refused, not re-sealed: the migration has finished for good.
    const keys = dataKeys(temp.path);
    const key = keys.get(Math.max(...keys.keys()))!;
    tamper(temp.path, (db) => {
      const where = resourceValueColumn.at(`${res.secret}:2`, 2, {
        parentId: res.secret,
        vaultId: ids.va,
        projectId: ids.a,
      });
      db.query('UPDATE resource_versions SET value = ? WHERE id = ?').run(
        sealLegacyValue(key, 'VALUE-MARKER-planted', where),
        `${res.secret}:2`,
      );
      db.query('UPDATE resources SET vault_id = ?, project_id = ? WHERE id = ?').run(
        ids.vb,
        ids.b,
        res.secret,
      );
    });
    const third = start(temp.path, token);
    expect(formats(temp.path)).toEqual({ 1: 1, 2: 3 });
    const reply = await third.send('GET', `/v1/resources/${res.secret}`);
    expect(reply.status).toBe(500);
    expect(reply.text).not.toContain('VALUE-MARKER');
    expect(third.logger.lines.join('\n')).toContain('does not open there');
  }, 30_000);
});

/** The instance in `dir` opened without running the migration (to drive it by hand). */
function openForMigration(dir: string) {
  const logger = memoryLogger();
  const db = new Database(`${dir}/secryn.db`);
  const format = db.query<{ f: number }, []>('SELECT value_format AS f FROM keyring_state').get()!
    .f;
  // Opening runs the migration; mark it finished for the open and restore the mark after.
  db.run('UPDATE keyring_state SET value_format = 2');
  db.close();
  const instance = openInstance(testConfig(dir), logger, { clock });
  instance.sqlite.query('UPDATE keyring_state SET value_format = ?').run(format);
  sealIntegrityState(instance.sqlite); // the format is MACed: renew it as an old instance had it
  return {
    sqlite: instance.sqlite,
    keyring: instance.keyring,
    logger,
    close: () => instance.close(),
  };
}
