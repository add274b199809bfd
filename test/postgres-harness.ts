/**
 * PostgreSQL for tests: each test file gets its own fresh database (`secryn_test_<random>`) on the
 * cluster named by SECRYN_TEST_POSTGRES_URL, dropped after the file. Without that variable the
 * suites skip with a visible reason, except under CI=true, where .ci/run starts a throwaway
 * cluster and a missing one must fail the run rather than pass it silently.
 */
import { afterAll, beforeAll, describe, test } from 'bun:test';
import { Database } from 'bun:sqlite';
import { randomBytes } from 'node:crypto';
import { SQL } from 'bun';
import { schemaTableSpecs } from '../src/db/postgres/copy.ts';

/** The administrative URL of the test cluster (a superuser on its `postgres` database). */
export const TEST_POSTGRES_URL = process.env.SECRYN_TEST_POSTGRES_URL || undefined;

/** One database of its own on the test cluster; `create()` before use, `drop()` after. */
export class TestDatabase {
  readonly name = `secryn_test_${randomBytes(8).toString('hex')}`;
  readonly url: string;
  #sql: SQL | undefined;

  constructor(adminUrl: string = requireUrl()) {
    const url = new URL(adminUrl);
    url.pathname = `/${this.name}`;
    this.url = url.toString();
  }

  /** A pooled connection to this database, made on first use and closed by `drop()`. */
  get sql(): SQL {
    this.#sql ??= new SQL({ url: this.url, max: 4 });
    return this.#sql;
  }

  async create(): Promise<void> {
    await withAdmin((admin) => admin.unsafe(`CREATE DATABASE ${this.name}`));
  }

  /** Closes this harness's connections and drops the database, whoever is still connected. */
  async drop(): Promise<void> {
    await this.#sql?.close({ timeout: 1 });
    this.#sql = undefined;
    await withAdmin((admin) => admin.unsafe(`DROP DATABASE IF EXISTS ${this.name} WITH (FORCE)`));
  }
}

/**
 * `describe` with a fresh database for the suite. `body` receives it (usable inside tests and
 * hooks, not while the suite is being declared).
 */
export function describePostgres(title: string, body: (db: TestDatabase) => void): void {
  if (!TEST_POSTGRES_URL) {
    if (process.env.CI === 'true') {
      test(`${title}: PostgreSQL is available (CI)`, () => {
        throw new Error(
          'SECRYN_TEST_POSTGRES_URL is not set: .ci/run starts a throwaway PostgreSQL cluster for these tests',
        );
      });
      return;
    }
    console.warn(
      `skipping "${title}": SECRYN_TEST_POSTGRES_URL is not set (README, Development: a throwaway PostgreSQL cluster)`,
    );
    describe.skip(title, () => body(undefined as unknown as TestDatabase));
    return;
  }
  describe(title, () => {
    const db = new TestDatabase(TEST_POSTGRES_URL);
    beforeAll(() => db.create());
    afterAll(() => db.drop());
    body(db);
  });
}

/** Whether a database of that name exists on the test cluster. */
export async function databaseExists(name: string): Promise<boolean> {
  return withAdmin(async (admin) => {
    const rows = await admin`SELECT 1 FROM pg_database WHERE datname = ${name}`;
    return rows.length === 1;
  });
}

async function withAdmin<T>(run: (admin: SQL) => Promise<T>): Promise<T> {
  const admin = new SQL({ url: requireUrl(), max: 1 });
  try {
    return await run(admin);
  } finally {
    await admin.close();
  }
}

function requireUrl(): string {
  if (!TEST_POSTGRES_URL) throw new Error('SECRYN_TEST_POSTGRES_URL is not set');
  return TEST_POSTGRES_URL;
}

/** Rows per schema table of a SQLite instance file, opened read-only. */
export function sqliteCounts(path: string): Record<string, number> {
  const sqlite = new Database(path, { readonly: true });
  try {
    return Object.fromEntries(
      schemaTableSpecs().map((t) => [
        t.name,
        (sqlite.query(`SELECT count(*) AS n FROM "${t.name}"`).get() as { n: number }).n,
      ]),
    );
  } finally {
    sqlite.close();
  }
}

/** Rows per schema table of a test database, counted on PostgreSQL's side. */
export async function postgresCounts(db: TestDatabase): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const t of schemaTableSpecs()) {
    const [row] = await db.sql.unsafe(`SELECT count(*)::int AS n FROM "${t.name}"`);
    counts[t.name] = row.n;
  }
  return counts;
}
