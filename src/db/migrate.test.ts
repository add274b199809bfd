import { describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { tempDir } from '../../test/harness.ts';
import { embeddedMigrations } from '../../migrations/index.ts';
import { openDatabase } from './client.ts';
import { IncompatibleSchemaError, pendingMigrationCount, runMigrations } from './migrate.ts';

describe('embedded migrations', () => {
  test('apply once, then are idempotent; the pragmas are set', () => {
    using dir = tempDir();
    const sqlite = openDatabase(join(dir.path, 'm.db'), {
      synchronous: 'full',
      busyTimeoutMs: 2500,
    });
    expect(embeddedMigrations.length).toBeGreaterThan(0);
    expect(pendingMigrationCount(sqlite)).toBe(embeddedMigrations.length);
    expect(runMigrations(sqlite)).toEqual(embeddedMigrations.map((m) => m.tag));
    expect(runMigrations(sqlite)).toEqual([]);
    expect(pendingMigrationCount(sqlite)).toBe(0);
    expect(sqlite.query('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
    expect(sqlite.query('PRAGMA foreign_keys').get()).toEqual({ foreign_keys: 1 });
    expect(sqlite.query('PRAGMA synchronous').get()).toEqual({ synchronous: 2 });
    expect(sqlite.query('PRAGMA busy_timeout').get()).toEqual({ timeout: 2500 });
    sqlite.close();
  });

  test('a later migration is applied on top; a failing one leaves nothing behind', () => {
    using dir = tempDir();
    const sqlite = openDatabase(join(dir.path, 'm.db'), {
      synchronous: 'normal',
      busyTimeoutMs: 100,
    });
    expect(sqlite.query('PRAGMA synchronous').get()).toEqual({ synchronous: 1 });
    runMigrations(sqlite);
    const last = embeddedMigrations.at(-1)!.createdAt;
    const next = [
      ...embeddedMigrations,
      { tag: '9999_extra', createdAt: last + 1, sql: 'CREATE TABLE extra (id INTEGER)' },
    ];
    expect(runMigrations(sqlite, next)).toEqual(['9999_extra']);
    const broken = [
      ...next,
      {
        tag: '9999_broken',
        createdAt: last + 2,
        sql: 'CREATE TABLE fine (id INTEGER);\n--> statement-breakpoint\nNOT SQL',
      },
    ];
    expect(() => runMigrations(sqlite, broken)).toThrow();
    expect(sqlite.query(`SELECT name FROM sqlite_master WHERE name = 'fine'`).get()).toBeNull();
    expect(pendingMigrationCount(sqlite, broken)).toBe(1);
    sqlite.close();
  });

  test('a history with a migration this build lacks is refused, and nothing is applied', () => {
    using dir = tempDir();
    const sqlite = openDatabase(join(dir.path, 'm.db'), {
      synchronous: 'normal',
      busyTimeoutMs: 100,
    });
    const last = embeddedMigrations.at(-1)!.createdAt;
    const newer = [
      ...embeddedMigrations,
      { tag: '9999_newer', createdAt: last + 1, sql: 'CREATE TABLE newer (id INTEGER)' },
    ];
    runMigrations(sqlite, newer);
    // An older build (the embedded list alone) meets a database a newer build migrated.
    expect(() => pendingMigrationCount(sqlite)).toThrow(IncompatibleSchemaError);
    expect(() => runMigrations(sqlite)).toThrow(IncompatibleSchemaError);
    // A pre-release build whose first migration was regenerated: same tag, other time and SQL.
    const regenerated = embeddedMigrations.map((m, i) =>
      i === 0 ? { ...m, createdAt: m.createdAt - 1, sql: `${m.sql}\n-- regenerated` } : m,
    );
    expect(() => pendingMigrationCount(sqlite, regenerated)).toThrow(IncompatibleSchemaError);
    expect(() => runMigrations(sqlite, regenerated)).toThrow(IncompatibleSchemaError);
    // Edited SQL under a known time is refused too.
    const edited = newer.map((m) => (m.tag === '9999_newer' ? { ...m, sql: `${m.sql} ` } : m));
    expect(() => pendingMigrationCount(sqlite, edited)).toThrow(IncompatibleSchemaError);
    expect(
      sqlite.query<{ n: number }, []>('SELECT count(*) AS n FROM __drizzle_migrations').get()!.n,
    ).toBe(newer.length);
    expect(pendingMigrationCount(sqlite, newer)).toBe(0);
    sqlite.close();
  });

  test('the refusal names a time it cannot render as it is stored', () => {
    expect(new IncompatibleSchemaError(4102444800000).message).toContain(
      '2100-01-01T00:00:00.000Z',
    );
    expect(new IncompatibleSchemaError(Number.NaN).message).toContain('migration of NaN is');
    expect(new IncompatibleSchemaError(1e300).message).toContain('migration of 1e+300 is');
  });
});
