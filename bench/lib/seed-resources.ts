/**
 * Seeds a Secryn instance for the resources benches: one project, `vaults` vaults (vault 0 holds
 * exactly `smallVault` secrets, the others share the rest), `secrets` secrets with ~60-byte values
 * sealed by the real keyring at their real location, an admin and an access key. Written through
 * prepared statements in large transactions (the query builder would make 100 000 rows take
 * minutes), then checkpointed, analysed and closed, so that a server can open it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateConfig } from '../../src/config/load.ts';
import { createInstance } from '../../src/instance.ts';
import { insertApiKey, newApiKeyId } from '../../src/keys/service.ts';
import { createLogger } from '../../src/log/logger.ts';
import { insertProject, newProjectId } from '../../src/projects/service.ts';
import { newResourceId } from '../../src/resources/store.ts';
import { resourceValueColumn, versionRowId } from '../../src/db/schema/resources.ts';
import { insertVault, newVaultId } from '../../src/vaults/service.ts';
import { freePort } from './load.ts';

export type SeedOptions = { work: string; secrets: number; vaults: number; smallVault: number };

export type Seeded = {
  config: string;
  port: number;
  adminToken: string;
  accessToken: string;
  /** Sample secrets: id, vault and name. */
  sample: { id: string; vaultId: string; name: string }[];
  smallVault: string;
  seedSeconds: number;
};

/** Creates the instance in `work` and seeds it. */
export async function seedResources(options: SeedOptions): Promise<Seeded> {
  const {
    work,
    secrets: secretCount,
    vaults: vaultCount,
    smallVault: SMALL_VAULT_SECRETS,
  } = options;
  const port = await freePort();
  const config = join(work, 'secryn.toml');
  const toml = [
    '[server]',
    'host = "127.0.0.1"',
    `port = ${port}`,
    '[storage]',
    `path = "${join(work, 'data/secryn.db')}"`,
    '[encryption]',
    `master_key_file = "${join(work, 'data/master.key')}"`,
    '[rate_limit]',
    'requests_per_minute = 10000000',
    'burst = 10000000',
    '[log]',
    'level = "warn"',
    'format = "json"',
    '',
  ].join('\n');
  writeFileSync(config, toml);
  const parsed = validateConfig(Bun.TOML.parse(toml) as Record<string, unknown>);
  const logger = createLogger({ level: 'warn', format: 'json', color: false });
  const started = performance.now();
  let adminToken = '';
  let accessToken = '';
  const instance = createInstance(parsed, logger, (db) => {
    const key = (role: 'admin' | 'access') =>
      insertApiKey(
        db,
        newApiKeyId(),
        {
          name: `bench ${role}`,
          role,
          projectIds: [],
          vaultIds: [],
          scopes: null,
          expiresAt: null,
        },
        'bench',
        Date.now(),
      ).token;
    adminToken = key('admin');
    accessToken = key('access');
  });
  const { db, keyring, sqlite } = instance;
  const now = Date.now();
  const projectId = newProjectId();
  const vaultIds: string[] = [];
  sqlite.transaction(() => {
    insertProject(db, { id: projectId, name: 'bench', description: null, createdBy: 'bench' }, now);
    for (let v = 0; v < vaultCount; v++) {
      const id = newVaultId();
      insertVault(
        db,
        {
          id,
          projectId,
          name: `vault-${v}`,
          description: null,
          restricted: false,
          createdBy: 'bench',
        },
        now,
      );
      vaultIds.push(id);
    }
  })();
  const sample: Seeded['sample'] = [];
  // Rows as `insertResource` writes them, through prepared statements (the query builder would
  // make seeding take minutes); values sealed by the real keyring at their real location.
  const insertRow = sqlite.prepare(
    `INSERT INTO resources (id, vault_id, project_id, type, name, description, tags, enabled,
       content_type, current_version, created_at, updated_at, created_by)
     VALUES (?, ?, ?, 'secret', ?, NULL, ?, 1, 'text/plain', 1, ?, ?, 'bench')`,
  );
  const insertVersion = sqlite.prepare(
    `INSERT INTO resource_versions (id, resource_id, version, value, created_at, created_by)
     VALUES (?, ?, 1, ?, ?, 'bench')`,
  );
  const batch = 10_000;
  for (let start = 0; start < secretCount; start += batch) {
    sqlite.transaction(() => {
      for (let i = start; i < Math.min(start + batch, secretCount); i++) {
        // Vault 0 gets exactly SMALL_VAULT_SECRETS; the others share the rest evenly.
        const vaultIndex =
          i < SMALL_VAULT_SECRETS ? 0 : 1 + ((i - SMALL_VAULT_SECRETS) % (vaultCount - 1));
        const id = newResourceId();
        const name = `SECRET_${i}`;
        const at = now + i; // distinct creation times: a realistic newest-first order
        insertRow.run(
          id,
          vaultIds[vaultIndex]!,
          projectId,
          name,
          i % 10 === 0 ? '["db"]' : '[]',
          at,
          at,
        );
        // ~60-byte values, like a connection string or an API token.
        const value = `postgres://app:${crypto.randomUUID()}@db-${i}.internal:5432/app`;
        const rowId = versionRowId(id, 1);
        const where = resourceValueColumn.at(rowId, 1, {
          parentId: id,
          vaultId: vaultIds[vaultIndex]!,
          projectId,
        });
        insertVersion.run(rowId, id, keyring.encrypt(value, where), at);
        if (i >= SMALL_VAULT_SECRETS && i % 97 === 0 && sample.length < 1000) {
          sample.push({ id, vaultId: vaultIds[vaultIndex]!, name });
        }
      }
    })();
  }
  sqlite.run('PRAGMA wal_checkpoint(TRUNCATE)');
  sqlite.run('ANALYZE');
  await instance.close();
  return {
    config,
    port,
    adminToken,
    accessToken,
    sample,
    smallVault: vaultIds[0]!,
    seedSeconds: (performance.now() - started) / 1000,
  };
}
