/**
 * The encrypted-column registry is complete: every BLOB column of the migrated schema that holds
 * values sealed by the keyring is declared next to its table (src/db/schema/), and a
 * `rotate --reencrypt` run walks every declared column, re-sealing a real value in each.
 */
import { describe, expect, test } from 'bun:test';
import { readDataKeyVersion } from '../src/crypto/envelope.ts';
import { declaredEncryptedColumns, encryptedColumns } from '../src/db/schema/encrypted-columns.ts';
import { openDatabase } from '../src/db/client.ts';
import { runMigrations } from '../src/db/migrate.ts';
import { buildFeatures } from '../src/features.ts';
import { createInstance } from '../src/instance.ts';
import { reencryptValues } from '../src/keyring/reencrypt.ts';
import { rotateDataKey } from '../src/keyring/rotate.ts';
import { quoteIdentifier } from '../src/keyring/value-census.ts';
import { insertApiKey, newApiKeyId } from '../src/keys/service.ts';
import { buildApp } from '../src/server.ts';
import { manualClock } from '../src/clock.ts';
import { call, memoryLogger, tempDir, testConfig } from './harness.ts';

/**
 * BLOB columns that hold no keyring-sealed value, each with the reason. Anything else that is
 * a BLOB must be a declared encrypted column.
 */
const NOT_SEALED_BY_THE_KEYRING: Record<string, string> = {
  'keyring_data_keys.wrapped_key': 'data keys, wrapped under the master key',
  'keyring_integrity.wrapped_key': 'the integrity root key, wrapped under the master key',
  'api_keys.token_hash': 'a SHA-256 of the token, not a sealed value',
  'console_sessions.token_hash': 'a SHA-256 of the session token, not a sealed value',
};

function blobColumnsOfTheMigratedSchema(): string[] {
  const sqlite = openDatabase(':memory:', { synchronous: 'normal', busyTimeoutMs: 0 });
  try {
    runMigrations(sqlite);
    const tables = sqlite
      .query<{ name: string }, []>(
        `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
           AND name NOT LIKE '\\_\\_%' ESCAPE '\\'`,
      )
      .all();
    const found: string[] = [];
    for (const { name } of tables) {
      const columns = sqlite
        .query<{ name: string; type: string }, []>(`PRAGMA table_info(${quoteIdentifier(name)})`)
        .all();
      for (const column of columns) {
        if (column.type.toUpperCase() === 'BLOB') found.push(`${name}.${column.name}`);
      }
    }
    return found.sort();
  } finally {
    sqlite.close();
  }
}

describe('the encrypted-column registry', () => {
  test('every BLOB column of the schema is a declared encrypted column or a listed exception', () => {
    // (Other test files of this process may register columns of their own test tables.)
    const declared = declaredEncryptedColumns().map((c) => `${c.tableName}.${c.columnName}`);
    const registered = new Set(encryptedColumns().map((c) => `${c.tableName}.${c.columnName}`));
    for (const name of declared) expect(registered.has(name)).toBe(true);
    expect(declared).toEqual([
      'idempotency_keys.response_body',
      'resource_versions.value',
      'webhook_secrets.secret',
      'webhooks.url',
    ]);
    const blobs = blobColumnsOfTheMigratedSchema();
    for (const exception of Object.keys(NOT_SEALED_BY_THE_KEYRING)) {
      expect(blobs).toContain(exception);
    }
    expect(blobs.filter((name) => !(name in NOT_SEALED_BY_THE_KEYRING))).toEqual(declared);
  });

  test('a re-encryption run re-seals a value in every declared column', async () => {
    using dir = tempDir();
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const config = testConfig(dir.path, {
      rate_limit: { burst: 1_000_000, requests_per_minute: 1_000_000 },
      webhooks: { allowed_cidrs: ['127.0.0.0/8'] },
    });
    const instance = createInstance(config, memoryLogger(), undefined, { clock });
    try {
      const token = insertApiKey(
        instance.db,
        newApiKeyId(),
        {
          name: 'admin',
          role: 'admin',
          projectIds: [],
          vaultIds: [],
          scopes: null,
          expiresAt: null,
        },
        'test',
        clock.now(),
      ).token;
      const features = buildFeatures(instance);
      const app = buildApp(instance, {
        features: features.features,
        recordOutcome: features.recordOutcome,
      });
      const send = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
        const response = await call(app, 'POST', path, {
          body,
          headers: { authorization: `Bearer ${token}`, ...headers },
        });
        expect(response.status).toBe(201);
        return (await response.json()) as { id: string };
      };
      const project = await send('/v1/projects', { name: 'p' });
      const vault = await send('/v1/vaults', { project_id: project.id, name: 'v' });
      // An Idempotency-Key stores the sealed response (idempotency_keys.response_body).
      await send(
        '/v1/resources',
        { vault_id: vault.id, type: 'secret', name: 'S', value: 'v1' },
        { 'idempotency-key': 'walk-every-column' },
      );
      await send('/v1/webhooks', { url: 'http://127.0.0.1:9/hook', events: ['*'] });

      const columns = declaredEncryptedColumns();
      const versionsIn = (version: number) =>
        columns.map((column) => {
          const rows = instance.sqlite
            .query<
              { v: Uint8Array },
              []
            >(`SELECT ${quoteIdentifier(column.columnName)} AS v FROM ${quoteIdentifier(column.tableName)}`)
            .all();
          return {
            column: `${column.tableName}.${column.columnName}`,
            rows: rows.length > 0,
            all: rows.every(({ v }) => readDataKeyVersion(v) === version),
          };
        });
      expect(versionsIn(1).every((c) => c.rows && c.all)).toBe(true);

      const ctx = {
        sqlite: instance.sqlite,
        config: instance.config,
        env: {},
        clock: instance.clock,
        logger: instance.logger,
        keyring: instance.keyring,
      };
      const rotation = rotateDataKey(ctx, { actor: 'test' });
      const walked = new Set<string>();
      // Every declared column, as the CLI walks them (the default adds only test tables).
      const result = await reencryptValues(ctx, rotation.id, {
        columns: encryptedColumns().filter((c) => columns.includes(c)),
        sweepGraceMs: 0,
        onProgress: (p) => walked.add(`${p.table}.${p.column}`),
      });
      expect(result).toMatchObject({ dataKeyVersion: 2, remaining: 0, undecryptable: 0 });
      expect([...walked].sort()).toEqual(columns.map((c) => `${c.tableName}.${c.columnName}`));
      expect(versionsIn(2)).toEqual(
        columns.map((c) => ({ column: `${c.tableName}.${c.columnName}`, rows: true, all: true })),
      );
    } finally {
      await instance.close();
    }
  });
});
