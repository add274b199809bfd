/**
 * The master key (KEK): where it comes from, how it is encoded, and how a new one is written.
 * Sources, first match wins:
 *   1. systemd credential `$CREDENTIALS_DIRECTORY/secryn-master-key` (if that file exists),
 *   2. env `SECRYN_MASTER_KEY`,
 *   3. the configured `encryption.master_key_file`.
 * Every source holds base64 of exactly 32 bytes, optionally followed by one newline.
 * Error messages name the source and the fix, never key material or file contents.
 */
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  constants,
  existsSync,
  fchmodSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readSync,
  unlinkSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fsyncDirectory, writeAllSync } from './atomic-file.ts';
import { assertKey256 } from './envelope.ts';
import { MasterKeyError } from './errors.ts';

/** File name of the systemd credential (`LoadCredential=secryn-master-key:/path`). */
export const MASTER_KEY_CREDENTIAL_NAME = 'secryn-master-key';
/** Environment variable holding the base64 master key. */
export const MASTER_KEY_ENV_VAR = 'SECRYN_MASTER_KEY';

const KEY_BYTES = 32;
// base64 of 32 bytes is 44 chars; anything much longer is not a key file.
const MAX_KEY_FILE_BYTES = 1024;
const BASE64_32_BYTES = /^[A-Za-z0-9+/]{43}=$/;

/** Where the loaded key came from; `path` is set for file-based sources. */
export type LoadedMasterKey = {
  key: Uint8Array;
  source: 'credential' | 'env' | 'file';
  path?: string;
};

/** Returns 32 fresh random bytes for a new master key. */
export function generateMasterKey(): Uint8Array {
  return new Uint8Array(randomBytes(KEY_BYTES));
}

/** Encodes a 32-byte master key as standard padded base64 (44 chars, no newline). */
export function encodeMasterKey(key: Uint8Array): string {
  assertKey256(key, 'master key');
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64');
}

/**
 * Decodes base64 of exactly 32 bytes, tolerating one trailing `\n` or `\r\n`. Anything else
 * throws MasterKeyError('invalid') naming `sourceLabel` (e.g. "file /etc/secryn/master.key").
 */
export function decodeMasterKey(text: string, sourceLabel: string): Uint8Array {
  const trimmed = text.endsWith('\r\n')
    ? text.slice(0, -2)
    : text.endsWith('\n')
      ? text.slice(0, -1)
      : text;
  if (BASE64_32_BYTES.test(trimmed)) {
    const decoded = Buffer.from(trimmed, 'base64');
    // Canonical check: unused low bits of the last char must be zero, else two texts map to one key.
    if (decoded.byteLength === KEY_BYTES && decoded.toString('base64') === trimmed) {
      const key = new Uint8Array(decoded);
      decoded.fill(0);
      return key;
    }
    decoded.fill(0);
  }
  throw new MasterKeyError(
    'invalid',
    `master key in ${sourceLabel} is truncated or not base64 of 32 bytes ` +
      '(generate one with: openssl rand -base64 32)',
  );
}

function octal(mode: number): string {
  return '0' + (mode & 0o777).toString(8).padStart(3, '0');
}

/**
 * Reads a key file through one descriptor (so the mode checked is the mode of the file read).
 * `requirePrivate` refuses any group/other permission bit.
 */
function readKeyFile(path: string, sourceLabel: string, requirePrivate: boolean): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new MasterKeyError('missing', `master key ${sourceLabel} does not exist`);
    }
    // EACCES/EPERM: the file is there but not for this user (a root-only key file read by a
    // command run as the service user); say so rather than leave the errno to be decoded.
    const hint =
      code === 'EACCES' || code === 'EPERM'
        ? ': this user may not read it (run the command as the user that owns it, e.g. root)'
        : '';
    throw new MasterKeyError(
      'unreadable',
      `cannot open master key ${sourceLabel} (${code})${hint}`,
    );
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) {
      throw new MasterKeyError('unreadable', `master key ${sourceLabel} is not a regular file`);
    }
    if (requirePrivate && process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
      throw new MasterKeyError(
        'bad_permissions',
        `master key ${sourceLabel} has mode ${octal(stat.mode)}; it must not be accessible to ` +
          `group or others (fix: chmod 600 ${path})`,
      );
    }
    const buffer = new Uint8Array(MAX_KEY_FILE_BYTES + 1);
    let length = 0;
    for (;;) {
      const read = readSync(fd, buffer, length, buffer.byteLength - length, null);
      if (read === 0) break;
      length += read;
      if (length === buffer.byteLength) break;
    }
    try {
      return decodeMasterKey(new TextDecoder().decode(buffer.subarray(0, length)), sourceLabel);
    } finally {
      buffer.fill(0);
    }
  } catch (error) {
    if (error instanceof MasterKeyError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new MasterKeyError('unreadable', `cannot read master key ${sourceLabel} (${code})`);
  } finally {
    closeSync(fd);
  }
}

/**
 * Loads the master key from the first available source (see module doc). `env` is passed in
 * (normally `process.env`) so callers and tests control it. The systemd credential is used only if
 * its file exists; its permissions are systemd's to enforce, so only the configured key file is
 * held to mode 0600 or stricter. Throws MasterKeyError: 'missing' (message lists every place
 * looked), 'invalid', 'bad_permissions' or 'unreadable'.
 */
export function loadMasterKey(opts: {
  env: Record<string, string | undefined>;
  filePath: string;
}): LoadedMasterKey {
  const { env, filePath } = opts;

  const credentialsDir = env.CREDENTIALS_DIRECTORY;
  const credentialPath = credentialsDir ? join(credentialsDir, MASTER_KEY_CREDENTIAL_NAME) : '';
  if (credentialPath && existsSync(credentialPath)) {
    const key = readKeyFile(credentialPath, `systemd credential ${credentialPath}`, false);
    return { key, source: 'credential', path: credentialPath };
  }

  const fromEnv = env[MASTER_KEY_ENV_VAR];
  if (fromEnv !== undefined && fromEnv !== '') {
    return {
      key: decodeMasterKey(fromEnv, `environment variable ${MASTER_KEY_ENV_VAR}`),
      source: 'env',
    };
  }

  const path = resolve(filePath);
  try {
    return { key: readKeyFile(path, `file ${path}`, true), source: 'file', path };
  } catch (error) {
    if (error instanceof MasterKeyError && error.reason === 'missing') {
      const looked = [
        credentialPath
          ? `systemd credential ${credentialPath}`
          : 'systemd credential (CREDENTIALS_DIRECTORY not set)',
        `environment variable ${MASTER_KEY_ENV_VAR} (not set)`,
        `file ${path}`,
      ];
      throw new MasterKeyError(
        'missing',
        `no master key found; looked in: ${looked.join(', ')} ` +
          '(run `secryn init` or set encryption.master_key_file)',
      );
    }
    throw error;
  }
}

/**
 * Creates a new master key file holding `encodeMasterKey(key)` plus a newline, mode 0600.
 * Creates the parent directory (mode 0700) if absent. Refuses to overwrite an existing file
 * (O_EXCL → MasterKeyError('exists')). Fsyncs the file and its directory (and the directory's
 * parent when the directory was just created). A failed write leaves no partial file behind.
 */
export function writeNewMasterKeyFile(path: string, key: Uint8Array): void {
  const content = new TextEncoder().encode(encodeMasterKey(key) + '\n');
  const target = resolve(path);
  const dir = dirname(target);
  if (!existsSync(dir)) {
    const firstCreated = mkdirSync(dir, { recursive: true, mode: 0o700 }) ?? dir;
    chmodSync(dir, 0o700); // exact mode whatever the umask
    // Make every new directory entry durable, from the first one created down to `dir`.
    for (let created = dir; ; created = dirname(created)) {
      fsyncDirectory(dirname(created));
      if (created === firstCreated || dirname(created) === created) break;
    }
  }
  let fd: number;
  try {
    fd = openSync(target, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new MasterKeyError(
        'exists',
        `refusing to overwrite existing master key file ${target}`,
      );
    }
    throw error;
  }
  try {
    try {
      fchmodSync(fd, 0o600);
      writeAllSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
      content.fill(0);
    }
  } catch (error) {
    try {
      unlinkSync(target);
    } catch {
      // nothing to clean up
    }
    throw error;
  }
  fsyncDirectory(dir);
}
