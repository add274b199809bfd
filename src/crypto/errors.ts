/**
 * Typed errors of the crypto layer. Messages are safe to log: they never contain key material,
 * plaintext, ciphertext bytes or file contents. No HTTP knowledge lives here; the HTTP layer maps
 * every {@link CryptoError} to a generic 500/503 without echoing the message to clients.
 */

/** Base class of every error thrown deliberately by `src/crypto`. */
export class CryptoError extends Error {
  override name = 'CryptoError';
}

/** Why a ciphertext could not be opened (for logs and metrics; never includes data). */
export type DecryptionFailure =
  | 'malformed' // too short, or a header field out of range
  | 'unsupported_format' // format version byte is not one we can read
  | 'key_mismatch' // the header names a different data-key version than the key supplied
  | 'authentication_failed' // GCM tag did not verify: tampered, wrong key, or wrong location
  | 'invalid_utf8'; // authenticated bytes are not valid UTF-8 where a string was required

/**
 * A ciphertext is malformed, truncated, tampered with, bound to another location, or sealed
 * under another key. Callers must treat every reason alike towards clients (no oracle).
 */
export class DecryptionError extends CryptoError {
  override name = 'DecryptionError';
  readonly reason: DecryptionFailure;

  constructor(reason: DecryptionFailure, message = 'value could not be decrypted') {
    super(`${message} (${reason})`);
    this.reason = reason;
  }
}

/**
 * The ciphertext header names a data-key version the keyring does not hold. The caller may
 * reload the keyring from storage (another process may have rotated) and retry once.
 */
export class UnknownDataKeyError extends CryptoError {
  override name = 'UnknownDataKeyError';
  readonly version: number;

  constructor(version: number) {
    super(`data key version ${version} is not loaded in the keyring`);
    this.version = version;
  }
}

/** The keyring has no current data key, so nothing can be encrypted yet. */
export class NoCurrentDataKeyError extends CryptoError {
  override name = 'NoCurrentDataKeyError';

  constructor() {
    super('keyring has no current data key');
  }
}

/**
 * A wrapped data key did not authenticate under the given master key: the master key is not the
 * one that wrapped it (or the stored wrapped key / its version number was altered).
 */
export class WrongMasterKeyError extends CryptoError {
  override name = 'WrongMasterKeyError';
  readonly dataKeyVersion: number;

  constructor(dataKeyVersion: number) {
    super(
      `data key version ${dataKeyVersion} could not be unwrapped: wrong master key, ` +
        'or the stored wrapped key was altered',
    );
    this.dataKeyVersion = dataKeyVersion;
  }
}

/** Why the master key could not be loaded or written. */
export type MasterKeyFailure =
  | 'missing' // no source provided a key
  | 'invalid' // content is not base64 of exactly 32 bytes
  | 'bad_permissions' // key file is readable or writable by group/other
  | 'unreadable' // exists but cannot be read (EACCES, not a regular file, I/O error)
  | 'exists'; // refusing to overwrite an existing key file

/** Loading or creating the master key failed; `message` says where and how to fix it. */
export class MasterKeyError extends CryptoError {
  override name = 'MasterKeyError';
  readonly reason: MasterKeyFailure;

  constructor(reason: MasterKeyFailure, message: string) {
    super(message);
    this.reason = reason;
  }
}
