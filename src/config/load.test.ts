import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig, parseConfigText, validateConfig } from './load.ts';
import { ConfigSchema } from './schema.ts';

const EXAMPLE = join(import.meta.dir, '../../config/secryn.example.toml');

function errorLines(text: string): string[] {
  try {
    parseConfigText(text, 'f.toml');
  } catch (error) {
    if (error instanceof ConfigError) return error.lines;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  test('the example file documents every key, with the defaults as values', () => {
    const text = readFileSync(EXAMPLE, 'utf8');
    expect(parseConfigText(text)).toEqual(validateConfig({}));
    for (const [section, schema] of Object.entries(ConfigSchema.properties)) {
      expect(text).toContain(`[${section}]`);
      for (const [key, inner] of Object.entries((schema as { properties: object }).properties)) {
        // A nested section ([audit.ship]) is documented as its own table.
        const nested = (inner as { properties?: object }).properties;
        if (nested) {
          expect(text).toContain(`[${section}.${key}]`);
          for (const leaf of Object.keys(nested))
            expect(text).toMatch(new RegExp(`^#? ?${leaf}\\s*=`, 'm'));
          continue;
        }
        expect(text).toMatch(new RegExp(`^#? ?${key}\\s*=`, 'm'));
      }
    }
  });

  test('docs/api.md §8 keys keep their spelling and defaults', () => {
    const config = validateConfig({});
    expect(config.server).toMatchObject({ host: '127.0.0.1', port: 8420 });
    expect(config.storage.path).toBe('./data/secryn.db');
    expect(config.encryption.master_key_file).toBe('./data/master.key');
    expect(config.rate_limit).toMatchObject({ requests_per_minute: 600, burst: 100 });
    expect(config.webhooks).toMatchObject({ timeout_ms: 10000, max_attempts: 10 });
    expect(config.log).toEqual({ level: 'info', format: 'pretty' });
  });

  test('a TOML syntax error names line and column', () => {
    expect(errorLines('[server]\nport = 8420\nhost = = "x"\n')).toEqual([
      expect.stringMatching(/^f\.toml:3:\d+: /),
    ]);
    expect(errorLines('[server\n')[0]).toMatch(/^f\.toml:1:\d+: /);
  });

  test('schema errors name every bad key by dotted path, unknown keys too', () => {
    const lines = errorLines(
      '[server]\nport = "eighty"\nprot = 1\n[log]\nlevel = "loud"\n[webhooks]\nallowed_cidrs = [1]\n[nonsense]\nx = 1\n',
    );
    expect(lines).toContain('f.toml: server.port: expected integer');
    expect(lines).toContain('f.toml: server.prot: unknown key');
    expect(lines).toContain('f.toml: nonsense: unknown key');
    expect(lines).toContain('f.toml: webhooks.allowed_cidrs.0: expected string');
    expect(lines.find((l) => l.startsWith('f.toml: log.level:'))).toContain('"debug"');
    expect(lines).toHaveLength(5);
  });

  test('range and cross-field rules', () => {
    expect(errorLines('[server]\nport = 70000\n')).toEqual([
      expect.stringMatching(/^f\.toml: server\.port: /),
    ]);
    expect(errorLines('[server]\ntls_cert_file = "c.pem"\n')).toEqual([
      'f.toml: server.tls_key_file: required when server.tls_cert_file is set',
    ]);
  });

  test('relative paths resolve against the config file; defaults against the working directory', () => {
    const fromDefaults = loadConfig({ env: {}, cwd: '/srv/app' });
    expect(fromDefaults.source).toEqual({ kind: 'defaults' });
    expect(fromDefaults.config.storage.path).toBe('/srv/app/data/secryn.db');
    const fromFile = loadConfig({ path: EXAMPLE, env: {}, cwd: '/' });
    expect(fromFile.config.storage.path).toBe(join(import.meta.dir, '../../config/data/secryn.db'));
  });

  test('--config wins over SECRYN_CONFIG, which wins over the defaults', () => {
    const viaEnv = loadConfig({ env: { SECRYN_CONFIG: EXAMPLE }, cwd: '/' });
    expect(viaEnv.source).toEqual({ kind: 'file', path: EXAMPLE });
    expect(() =>
      loadConfig({ path: '/nonexistent.toml', env: { SECRYN_CONFIG: EXAMPLE } }),
    ).toThrow(/nonexistent\.toml: not found/);
  });
});

const SECRET = 'hunter2-do-not-print';

const pg = (extra = '') =>
  `[storage]\nbackend = "postgres"\nurl = "postgres://secryn@db.internal:5432/secryn"\n${extra}`;

describe('[storage] (PostgreSQL, issue 20)', () => {
  test('defaults: SQLite, and a pool of 4 for PostgreSQL', () => {
    const { storage } = validateConfig({});
    expect(storage.backend).toBe('sqlite');
    expect(storage.pool_size).toBe(4);
    expect(storage.url).toBeUndefined();
    const config = parseConfigText(pg('pool_size = 12\n'));
    expect(config.storage).toMatchObject({ backend: 'postgres', pool_size: 12 });
  });

  test('a URL with a password is refused by key, the password never echoed', () => {
    for (const url of [
      `postgres://secryn:${SECRET}@db.internal/secryn`,
      `postgresql://secryn@db.internal/secryn?sslmode=require&PassWord=${SECRET}`,
    ]) {
      const lines = errorLines(`[storage]\nbackend = "postgres"\nurl = "${url}"\n`);
      expect(lines).toEqual([
        'f.toml: storage.url: must not contain a password (give it through storage.password_file, SECRYN_DB_PASSWORD or the systemd credential secryn-db-password)',
      ]);
      expect(lines.join('\n')).not.toContain(SECRET);
    }
  });

  test('other bad URLs, a missing URL, unknown keys and wrong types', () => {
    expect(errorLines('[storage]\nbackend = "postgres"\n')).toEqual([
      'f.toml: storage.url: required when storage.backend = "postgres"',
    ]);
    expect(errorLines(`[storage]\nbackend = "postgres"\nurl = "mysql://u@h/d"\n`)).toEqual([
      'f.toml: storage.url: must start with postgres:// or postgresql://',
    ]);
    expect(errorLines(`[storage]\nbackend = "postgres"\nurl = "postgres://db/secryn"\n`)).toEqual([
      'f.toml: storage.url: must name the database user (postgres://USER@host/database)',
    ]);
    expect(errorLines(`[storage]\nbackend = "postgres"\nurl = "not a url ${SECRET}"\n`)).toEqual([
      'f.toml: storage.url: not a valid URL (e.g. postgres://secryn@db.internal:5432/secryn)',
    ]);
    expect(errorLines('[storage]\nbackend = "mongo"\n')).toEqual([
      'f.toml: storage.backend: must be one of "sqlite", "postgres"',
    ]);
    const lines = errorLines(pg('poolsize = 4\npool_size = "4"\nca_file = 3\n'));
    expect(lines).toContain('f.toml: storage.poolsize: unknown key');
    expect(lines).toContain('f.toml: storage.pool_size: expected integer');
    expect(lines).toContain('f.toml: storage.ca_file: expected string');
    expect(errorLines(pg('pool_size = 0\n'))[0]).toMatch(/^f\.toml: storage\.pool_size: /);
  });

  test('PostgreSQL keys are refused with the SQLite backend', () => {
    expect(
      errorLines('[storage]\nurl = "postgres://u@h/d"\npassword_file = "p"\nca_file = "c"\n'),
    ).toEqual([
      'f.toml: storage.url: only used with storage.backend = "postgres"',
      'f.toml: storage.password_file: only used with storage.backend = "postgres"',
      'f.toml: storage.ca_file: only used with storage.backend = "postgres"',
    ]);
  });
});
