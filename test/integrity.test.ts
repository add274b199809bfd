/**
 * Authorization data at rest is integrity-protected: API key rows planted or edited with raw
 * SQL in a stopped instance's database file are refused (401) and reported as tampering; a
 * backup with such rows or an edited audit log is refused by `restore` before anything is
 * replaced; and an instance from before integrity protection gets its keys and MACs on first
 * open and keeps working.
 */
import { Database } from 'bun:sqlite';
import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { entryHash, type ChainFields } from '../src/ledger/audit-chain.ts';
import { verifyChain } from '../src/audit/verify.ts';
import { loadConfig } from '../src/config/load.ts';
import { generateApiToken, hashApiToken } from '../src/crypto/api-token.ts';
import { createInstance, openInstance, type Instance } from '../src/instance.ts';
import { KeyringError } from '../src/keyring/errors.ts';
import { insertApiKey, newApiKeyId, revokeApiKey, type NewApiKey } from '../src/keys/service.ts';
import { buildApp } from '../src/server.ts';
import { buildFeatures } from '../src/features.ts';
import { call, memoryLogger, runCli, tempDir, testConfig, writeConfig } from './harness.ts';

const READER: NewApiKey = {
  name: 'reader',
  role: 'reader',
  projectIds: [],
  vaultIds: [],
  scopes: null,
  expiresAt: null,
};

/** A stopped instance with a reader key, an expiring key, a scoped key and a revoked key. */
function stoppedInstance(dir: string) {
  const config = testConfig(dir);
  const logger = memoryLogger();
  const instance = createInstance(config, logger);
  const now = instance.clock.now();
  const make = (over: Partial<NewApiKey>) =>
    instance.sqlite
      .transaction(() => insertApiKey(instance.db, newApiKeyId(), { ...READER, ...over }, 't', now))
      .immediate();
  const reader = make({});
  const expiring = make({ name: 'expiring', expiresAt: now + 3_600_000 });
  const scoped = make({ name: 'scoped', scopes: ['projects:read'] });
  const revoked = make({ name: 'revoked' });
  instance.sqlite.transaction(() => revokeApiKey(instance.db, revoked.row.id, now)).immediate();
  return { config, instance, reader, expiring, scoped, revoked };
}

async function withStarted<T>(
  config: ReturnType<typeof testConfig>,
  fn: (instance: Instance, app: ReturnType<typeof buildApp>) => Promise<T>,
) {
  const logger = memoryLogger();
  const instance = openInstance(config, logger);
  try {
    const features = buildFeatures(instance);
    const app = buildApp(instance, {
      features: features.features,
      recordOutcome: features.recordOutcome,
    });
    return await fn(instance, app);
  } finally {
    await instance.close();
  }
}

const get = (app: ReturnType<typeof buildApp>, token: string, path = '/v1/api-keys') =>
  call(app, 'GET', path, { headers: { authorization: `Bearer ${token}` } });

describe('API key rows edited in the database file', () => {
  test('a planted admin key with a known token hash is refused 401 and audited as tampering', async () => {
    using dir = tempDir();
    const { config, instance } = stoppedInstance(dir.path);
    await instance.close();
    const planted = generateApiToken();
    const db = new Database(config.storage.path);
    db.query(
      `INSERT INTO api_keys (id, name, role, lookup_id, token_hash, project_ids, vault_ids,
         created_at, created_by) VALUES ('key_planted', 'p', 'admin', ?, ?, '[]', '[]', 1, 'x')`,
    ).run(planted.lookupId, Buffer.from(hashApiToken(planted.token)));
    db.close();
    await withStarted(config, async (started, app) => {
      const response = await get(app, planted.token);
      expect(response.status).toBe(401);
      const secrets = await get(app, planted.token, '/v1/projects');
      expect(secrets.status).toBe(401);
      await Bun.sleep(20);
      const tampered = started.sqlite
        .query<
          { n: number },
          []
        >("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'api_key.tampered' AND target_id = 'key_planted'")
        .get()!;
      expect(tampered.n).toBeGreaterThanOrEqual(1);
      const lines = (started.logger as ReturnType<typeof memoryLogger>).lines.join('\n');
      expect(lines).toContain('integrity check');
      expect(lines).not.toContain(planted.token);
    });
  });

  test("UPDATE role='admin' on a reader: 401, not admin", async () => {
    using dir = tempDir();
    const { config, instance, reader } = stoppedInstance(dir.path);
    await instance.close();
    // The reader works before the edit.
    await withStarted(config, async (_, app) => {
      expect((await get(app, reader.token, '/v1/projects')).status).toBe(200);
    });
    const db = new Database(config.storage.path);
    db.query("UPDATE api_keys SET role = 'admin' WHERE id = ?").run(reader.row.id);
    db.close();
    await withStarted(config, async (_, app) => {
      expect((await get(app, reader.token)).status).toBe(401);
      expect((await get(app, reader.token, '/v1/projects')).status).toBe(401);
    });
  });

  test('altered scopes, a cleared revocation, an extended expiry: each refused', async () => {
    using dir = tempDir();
    const { config, instance, expiring, scoped, revoked } = stoppedInstance(dir.path);
    await instance.close();
    const db = new Database(config.storage.path);
    db.query('UPDATE api_keys SET scopes = NULL WHERE id = ?').run(scoped.row.id);
    db.query('UPDATE api_keys SET revoked_at = NULL WHERE id = ?').run(revoked.row.id);
    db.query('UPDATE api_keys SET expires_at = NULL WHERE id = ?').run(expiring.row.id);
    db.close();
    await withStarted(config, async (_, app) => {
      for (const key of [scoped, revoked, expiring]) {
        expect((await get(app, key.token, '/v1/projects')).status).toBe(401);
      }
    });
  });
});

describe('restore refuses a tampered backup and replaces nothing', () => {
  const setup = async (dir: string) => {
    const config = writeConfig(dir);
    const init = await runCli(['init', '--config', config, '--json']);
    expect(init.exitCode).toBe(0);
    const created = await runCli([
      'keys',
      'create',
      '--config',
      config,
      '--name',
      'r',
      '--role',
      'reader',
      '--json',
    ]);
    expect(created.exitCode).toBe(0);
    const backup = join(dir, 'backup.db');
    expect((await runCli(['backup', backup, '--config', config])).exitCode).toBe(0);
    return { config, backup, live: join(dir, 'data/secryn.db') };
  };

  const tampers: [string, (db: Database) => void, string][] = [
    [
      'a planted admin key',
      (db) => {
        const planted = generateApiToken();
        db.query(
          `INSERT INTO api_keys (id, name, role, lookup_id, token_hash, project_ids, vault_ids,
             created_at, created_by) VALUES ('key_planted', 'p', 'admin', ?, ?, '[]', '[]', 1, 'x')`,
        ).run(planted.lookupId, Buffer.from(hashApiToken(planted.token)));
      },
      'API key',
    ],
    [
      'a reader promoted to admin',
      (db) => db.run("UPDATE api_keys SET role = 'admin' WHERE role = 'reader'"),
      'API key',
    ],
    [
      'an audit entry edited and the chain re-hashed the unkeyed way',
      (db) => {
        db.run("UPDATE audit_log SET actor_name = 'someone else' WHERE seq = 1");
        rehashUnkeyed(db, 1);
      },
      'audit log',
    ],
  ];

  for (const [name, tamper, named] of tampers) {
    test(name, async () => {
      using dir = tempDir();
      const { config, backup, live } = await setup(dir.path);
      const before = readFileSync(live);
      const db = new Database(backup);
      tamper(db);
      db.close();
      const result = await runCli(['restore', backup, '--config', config]);
      expect(result.exitCode).toBe(65);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toContain('backup refused, nothing was replaced');
      expect(result.stderr).toContain(named);
      expect(readFileSync(live).equals(before)).toBe(true);
    });
  }

  test('an untampered backup is restored', async () => {
    using dir = tempDir();
    const { config, backup } = await setup(dir.path);
    const result = await runCli(['restore', backup, '--config', config]);
    expect(result.exitCode).toBe(0);
  });
});

/** Recomputes every plain SHA-256 hash from `fromSeq` on, as the chain was before it was keyed. */
function rehashUnkeyed(db: Database, fromSeq: number) {
  const rows = db
    .query<ChainFields & { hash: string }, [number]>(
      `SELECT seq, id, at, actor_type AS actorType, actor_id AS actorId, actor_name AS actorName,
         action, target_type AS targetType, target_id AS targetId, outcome, status, ip,
         user_agent AS userAgent, request_id AS requestId, prev_hash AS prevHash, hash
       FROM audit_log WHERE seq >= ? ORDER BY seq`,
    )
    .all(fromSeq);
  let prev =
    db
      .query<{ hash: string }, [number]>('SELECT hash FROM audit_log WHERE seq = ?')
      .get(fromSeq - 1)?.hash ?? '0'.repeat(64);
  for (const row of rows) {
    const hash = entryHash({ ...row, prevHash: prev });
    db.query('UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?').run(prev, hash, row.seq);
    prev = hash;
  }
}

describe('an instance from before integrity protection', () => {
  /** Makes a database look as the previous version left it: no record, no MACs, plain chain. */
  const downgrade = (path: string) => {
    const db = new Database(path);
    db.run('DELETE FROM keyring_integrity');
    db.run('UPDATE api_keys SET mac = NULL');
    rehashUnkeyed(db, 1);
    db.close();
  };

  test('gets its integrity key and MACs on first open and keeps working', async () => {
    using dir = tempDir();
    const { config, instance, reader } = stoppedInstance(dir.path);
    await instance.close();
    downgrade(config.storage.path);
    const entries = () => {
      const db = new Database(config.storage.path);
      try {
        return db.query<{ n: number }, []>('SELECT MAX(seq) AS n FROM audit_log').get()!.n ?? 0;
      } finally {
        db.close();
      }
    };
    const old = entries();
    await withStarted(config, async (started, app) => {
      expect((await get(app, reader.token, '/v1/projects')).status).toBe(200);
      const lines = (started.logger as ReturnType<typeof memoryLogger>).lines.join('\n');
      expect(lines).toContain('integrity protection initialised');
      const result = verifyChain(started.sqlite);
      expect(result.intact).toBe(true);
      expect(result.keyedFrom).toBe(old + 1);
      expect(result.head.seq).toBeGreaterThan(old); // the request's entry, keyed
    });
    // Second start: nothing to migrate, still working.
    await withStarted(config, async (started, app) => {
      expect((await get(app, reader.token, '/v1/projects')).status).toBe(200);
      const lines = (started.logger as ReturnType<typeof memoryLogger>).lines.join('\n');
      expect(lines).not.toContain('integrity protection initialised');
      expect(verifyChain(started.sqlite).intact).toBe(true);
    });
  });

  test('removing the integrity record of a protected instance is refused, not re-initialised', async () => {
    using dir = tempDir();
    const { config, instance } = stoppedInstance(dir.path);
    await instance.close();
    const db = new Database(config.storage.path);
    db.run('DELETE FROM keyring_integrity');
    db.close();
    expect(() => openInstance(config, memoryLogger())).toThrow(KeyringError);
  });

  test('moving where the keyed chain starts is refused (the record is MACed)', async () => {
    using dir = tempDir();
    const { config, instance } = stoppedInstance(dir.path);
    await instance.close();
    const db = new Database(config.storage.path);
    db.run('UPDATE keyring_integrity SET audit_keyed_from = 1000000');
    db.close();
    expect(() => openInstance(config, memoryLogger())).toThrow(/integrity record was altered/);
  });

  test("setting the stored values' format back to 1 is refused (the record is MACed)", async () => {
    using dir = tempDir();
    const { config, instance } = stoppedInstance(dir.path);
    await instance.close();
    const db = new Database(config.storage.path);
    // Would let the owner-binding migration re-seal a format-1 value moved in from an old copy.
    db.run('UPDATE keyring_state SET value_format = 1');
    db.close();
    expect(() => openInstance(config, memoryLogger())).toThrow(/integrity record was altered/);
  });

  test('the CLI keeps working on a migrated instance (keys list, audit verify)', async () => {
    using dir = tempDir();
    const config = writeConfig(dir.path);
    expect((await runCli(['init', '--config', config])).exitCode).toBe(0);
    downgrade(join(dir.path, 'data/secryn.db'));
    const { config: loaded } = loadConfig({ path: config });
    await withStarted(loaded, async () => undefined);
    const verify = await runCli(['audit', 'verify', '--config', config]);
    expect(verify.exitCode).toBe(0);
    expect(verify.stdout).toContain('keyed from #');
  });
});
