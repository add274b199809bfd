/** The [storage] section's rules beyond the schema: the PostgreSQL URL, and which backend serves. */
import type { Config } from './schema.ts';

/** Where the PostgreSQL password may come from, for messages (src/db/postgres/connect.ts). */
export const DB_PASSWORD_SOURCES =
  'storage.password_file, SECRYN_DB_PASSWORD or the systemd credential secryn-db-password';

/**
 * One line per problem in `storage` (dotted key, then why), never echoing the URL: a URL
 * refused for holding a password must not print it to a terminal or a journal.
 */
export function storageErrors(storage: Config['storage']): string[] {
  if (storage.backend === 'sqlite') {
    return (['url', 'password_file', 'ca_file'] as const)
      .filter((key) => storage[key] !== undefined)
      .map((key) => `storage.${key}: only used with storage.backend = "postgres"`);
  }
  if (storage.url === undefined) return ['storage.url: required when storage.backend = "postgres"'];
  const problem = postgresUrlProblem(storage.url);
  return problem ? [`storage.url: ${problem}`] : [];
}

function postgresUrlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'not a valid URL (e.g. postgres://secryn@db.internal:5432/secryn)';
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    return 'must start with postgres:// or postgresql://';
  }
  const passwordParameter = [...url.searchParams.keys()].some(
    (key) => key.toLowerCase() === 'password',
  );
  if (url.password !== '' || passwordParameter) {
    return `must not contain a password (give it through ${DB_PASSWORD_SOURCES})`;
  }
  if (url.hostname === '') return 'must name the database host';
  if (url.username === '') return 'must name the database user (postgres://USER@host/database)';
  return undefined;
}

/**
 * Why this build cannot run on the configured storage, or undefined when it can. Serving from
 * PostgreSQL needs the asynchronous data path that is the next step of issue 20; until then
 * every command that opens the instance's storage refuses it (exit 78) rather than quietly
 * falling back to a SQLite file.
 */
export function unavailableStorageBackend(config: Config): string | undefined {
  if (config.storage.backend === 'sqlite') return undefined;
  return (
    'storage.backend: serving from PostgreSQL is not available in this version yet (with ' +
    'backend = "postgres" it runs migrate, migrate-storage, backup and restore: see ' +
    'docs/postgres.md); use backend = "sqlite"'
  );
}
