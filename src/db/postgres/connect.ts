/**
 * The `Bun.sql` connection options for PostgreSQL storage, built from `[storage]`: URL, password,
 * TLS with the configured CA (verify-full) and the pool size. Password sources, first match
 * wins (the same order and names as the master key's, src/crypto/master-key.ts):
 *   1. systemd credential `$CREDENTIALS_DIRECTORY/secryn-db-password` (if that file exists),
 *   2. env `SECRYN_DB_PASSWORD`,
 *   3. the configured `storage.password_file`,
 * and none at all when none is set (for `trust`, `peer` or certificate authentication).
 * Errors are ConfigErrors (exit 78) naming the key and the file, never the password.
 */
import { SQL } from 'bun';
import { closeSync, constants, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../config/load.ts';
import type { Config } from '../../config/schema.ts';

/** File name of the systemd credential (`LoadCredential=secryn-db-password:/path`). */
export const DB_PASSWORD_CREDENTIAL_NAME = 'secryn-db-password';
/** Environment variable holding the database password. */
export const DB_PASSWORD_ENV_VAR = 'SECRYN_DB_PASSWORD';

// A password file is one line; anything much longer is the wrong file.
const MAX_PASSWORD_FILE_BYTES = 4096;
// PostgreSQL's own limit on a CA bundle is none; a bounded read keeps a wrong path harmless.
const MAX_CA_FILE_BYTES = 1024 * 1024;

type Env = Record<string, string | undefined>;

/** Where the password came from; `path` is set for file-based sources. */
export type DatabasePassword = {
  password: string;
  source: 'credential' | 'env' | 'file';
  path?: string;
};

/** The password from the first source that has one (see module doc), or undefined. */
export function loadDatabasePassword(
  storage: Pick<Config['storage'], 'password_file'>,
  env: Env,
): DatabasePassword | undefined {
  const credentialsDir = env.CREDENTIALS_DIRECTORY;
  const credentialPath = credentialsDir ? join(credentialsDir, DB_PASSWORD_CREDENTIAL_NAME) : '';
  if (credentialPath && existsSync(credentialPath)) {
    const password = readSecretLine(credentialPath, `systemd credential ${credentialPath}`, false);
    return { password, source: 'credential', path: credentialPath };
  }
  const fromEnv = env[DB_PASSWORD_ENV_VAR];
  if (fromEnv !== undefined && fromEnv !== '') return { password: fromEnv, source: 'env' };
  const path = storage.password_file;
  if (path === undefined) return undefined;
  return {
    password: readSecretLine(path, `storage.password_file: ${path}`, true),
    source: 'file',
    path,
  };
}

/**
 * The options for `new SQL(…)`. `url` must already have passed the config checks (no password
 * in it); options given here take priority over anything the URL or the environment says.
 */
export function postgresOptions(
  storage: Pick<Config['storage'], 'url' | 'password_file' | 'ca_file' | 'pool_size'>,
  env: Env,
): Bun.SQL.PostgresOrMySQLOptions {
  if (!storage.url)
    throw new ConfigError(['storage.url: required when storage.backend = "postgres"']);
  const password = loadDatabasePassword(storage, env)?.password;
  return {
    adapter: 'postgres',
    url: storage.url,
    ...(password === undefined ? {} : { password }),
    // With a CA: verify the chain and the host name (verify-full). Without one, what the URL's
    // sslmode asks for (Bun.sql's default is no TLS): for a database on the same host.
    ...(storage.ca_file === undefined
      ? {}
      : { tls: { ca: readCaFile(storage.ca_file), rejectUnauthorized: true } }),
    max: storage.pool_size,
    connection: { application_name: 'secryn' },
  };
}

/** A pooled `Bun.sql` client for the configured PostgreSQL storage. */
export function connectPostgres(
  storage: Pick<Config['storage'], 'url' | 'password_file' | 'ca_file' | 'pool_size'>,
  env: Env,
): SQL {
  return new SQL(postgresOptions(storage, env));
}

/**
 * The first line of a small secret file, read through one descriptor (so the mode checked is
 * the mode of the file read). `requirePrivate` refuses any group/other permission bit.
 */
function readSecretLine(path: string, label: string, requirePrivate: boolean): string {
  const text = readBounded(path, label, MAX_PASSWORD_FILE_BYTES, (mode) => {
    if (requirePrivate && (mode & 0o077) !== 0) {
      throw new ConfigError([
        `${label} has mode 0${(mode & 0o777).toString(8)}; it must not be accessible to group or others (fix: chmod 600 ${path})`,
      ]);
    }
  });
  const line = text.replace(/\r?\n$/, '');
  if (line === '' || /[\r\n]/.test(line)) {
    throw new ConfigError([`${label} must hold the password on one line`]);
  }
  return line;
}

function readCaFile(path: string): string {
  const label = `storage.ca_file: ${path}`;
  const text = readBounded(path, label, MAX_CA_FILE_BYTES, () => {});
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    throw new ConfigError([`${label} is not a PEM certificate`]);
  }
  return text;
}

function readBounded(
  path: string,
  label: string,
  maxBytes: number,
  checkMode: (mode: number) => void,
): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError([
      code === 'ENOENT' ? `${label} does not exist` : `${label} cannot be opened (${code})`,
    ]);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new ConfigError([`${label} is not a regular file`]);
    checkMode(stat.mode);
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    for (;;) {
      const read = readSync(fd, buffer, length, buffer.byteLength - length, null);
      if (read === 0) break;
      length += read;
      if (length === buffer.byteLength) {
        buffer.fill(0);
        throw new ConfigError([`${label} is larger than ${maxBytes} bytes`]);
      }
    }
    const text = buffer.toString('utf8', 0, length);
    buffer.fill(0);
    return text;
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError([`${label} cannot be read (${(error as NodeJS.ErrnoException).code})`]);
  } finally {
    closeSync(fd);
  }
}
