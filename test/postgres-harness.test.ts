/** The PostgreSQL test harness: each suite gets a fresh, empty database of its own, dropped after. */
import { expect, test } from 'bun:test';
import { TestDatabase, databaseExists, describePostgres } from './postgres-harness.ts';

describePostgres('PostgreSQL test harness', (db) => {
  test('the suite database is fresh, empty and not the cluster administration database', async () => {
    const [row] = await db.sql`SELECT current_database() AS name`;
    expect(row.name).toBe(db.name);
    expect(db.name).toMatch(/^secryn_test_[0-9a-f]{16}$/);
    const tables =
      await db.sql`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`;
    expect(tables[0].n).toBe(0);
  });

  test('a database is dropped by drop(), even with a connection still open', async () => {
    const other = new TestDatabase();
    expect(other.name).not.toBe(db.name);
    await other.create();
    await other.sql`CREATE TABLE t (x int)`;
    expect(await databaseExists(other.name)).toBe(true);
    await other.drop();
    expect(await databaseExists(other.name)).toBe(false);
  });
});
