/**
 * Errors of the keyring service. Messages are one line, safe to print and log: they name files,
 * fingerprints and fixes, never key material. The CLI maps each to its own exit code
 * (src/cli/run.ts); the crypto layer's MasterKeyError covers missing, unreadable, invalid and
 * too-open key sources.
 */

/** The configured master key is not the one the database's keyring was sealed with. */
export class MasterKeyMismatchError extends Error {
  override name = 'MasterKeyMismatchError';

  constructor(
    message: string,
    readonly expectedFingerprint: string,
    readonly actualFingerprint: string,
  ) {
    super(message);
  }
}

/** Why the keyring cannot be used or changed. */
export type KeyringFailure =
  | 'not_initialized' // the database has no keyring (created before encryption existed)
  | 'damaged' // the fingerprint matches but a wrapped data key does not open: altered database
  | 'conflict' // another process changed the keyring during this operation; rerun
  | 'usage'; // the operation cannot work with this key source (e.g. env key without --new-key-file)

/** The keyring stored in the database cannot be used or changed; `message` says why and what to do. */
export class KeyringError extends Error {
  override name = 'KeyringError';

  constructor(
    readonly reason: KeyringFailure,
    message: string,
  ) {
    super(message);
  }
}
