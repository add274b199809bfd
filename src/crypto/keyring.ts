/**
 * Data keys (DEKs) and the keyring that holds them unwrapped in memory. DEKs are stored only
 * wrapped under the master key (KEK); rotating the master key rewraps DEKs without touching any
 * column value.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { constantTimeEqual } from './constant-time.ts';
import {
  assertDataKeyVersion,
  assertKey256,
  encodeFields,
  openValue,
  openValueText,
  readDataKeyVersion,
  sealValue,
  type DataKey,
  type ValueLocation,
} from './envelope.ts';
import {
  DecryptionError,
  NoCurrentDataKeyError,
  UnknownDataKeyError,
  WrongMasterKeyError,
} from './errors.ts';

const WRAP_FORMAT_VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
/** Length of a wrapped data key: [format 1][nonce 12][encrypted key 32][tag 16]. */
export const WRAPPED_DATA_KEY_BYTES = 1 + NONCE_BYTES + KEY_BYTES + TAG_BYTES;
const WRAP_DOMAIN = 'secryn/v1/data-key-wrap';
const FINGERPRINT_LABEL = 'secryn/v1/master-key-fingerprint';

const utf8 = new TextEncoder();

function wrapAad(version: number): Uint8Array {
  const versionBytes = new Uint8Array(4);
  new DataView(versionBytes.buffer).setUint32(0, version);
  return encodeFields([
    utf8.encode(WRAP_DOMAIN),
    new Uint8Array([WRAP_FORMAT_VERSION]),
    versionBytes,
  ]);
}

/** Returns 32 fresh random bytes for a new data key. */
export function generateDataKey(): Uint8Array {
  return new Uint8Array(randomBytes(KEY_BYTES));
}

/**
 * Encrypts `dek` under `masterKey` (AES-256-GCM, random nonce) with associated data naming the
 * purpose and `version`, so a wrapped key cannot be presented as another version.
 * Returns {@link WRAPPED_DATA_KEY_BYTES} bytes: [format 1][nonce 12][encrypted key 32][tag 16].
 */
export function wrapDataKey(masterKey: Uint8Array, version: number, dek: Uint8Array): Uint8Array {
  assertKey256(masterKey, 'master key');
  assertKey256(dek, 'data key');
  assertDataKeyVersion(version);
  return wrapKeyWithAad(masterKey, wrapAad(version), dek);
}

/**
 * Reverses {@link wrapDataKey}. A blob of the wrong length or format throws DecryptionError;
 * one that does not authenticate under `masterKey` for `version` throws WrongMasterKeyError.
 */
export function unwrapDataKey(
  masterKey: Uint8Array,
  version: number,
  wrapped: Uint8Array,
): Uint8Array {
  assertKey256(masterKey, 'master key');
  assertDataKeyVersion(version);
  const dek = unwrapKeyWithAad(masterKey, wrapAad(version), wrapped);
  if (!dek) throw new WrongMasterKeyError(version);
  return dek;
}

/**
 * Encrypts a 256-bit `key` under `masterKey` (AES-256-GCM, random nonce) bound to `aad`, which
 * must name the key's purpose so that one wrapped key cannot stand in for another. Same layout
 * as a wrapped data key.
 */
export function wrapKeyWithAad(
  masterKey: Uint8Array,
  aad: Uint8Array,
  key: Uint8Array,
): Uint8Array {
  assertKey256(masterKey, 'master key');
  assertKey256(key, 'key');
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', masterKey, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const body = cipher.update(key);
  cipher.final();
  const out = new Uint8Array(WRAPPED_DATA_KEY_BYTES);
  out[0] = WRAP_FORMAT_VERSION;
  out.set(nonce, 1);
  out.set(body, 1 + NONCE_BYTES);
  out.set(cipher.getAuthTag(), 1 + NONCE_BYTES + KEY_BYTES);
  body.fill(0);
  return out;
}

/**
 * Reverses {@link wrapKeyWithAad}: the key, or undefined when the blob does not authenticate
 * under `masterKey` and `aad`. A blob of the wrong length or format throws DecryptionError.
 */
export function unwrapKeyWithAad(
  masterKey: Uint8Array,
  aad: Uint8Array,
  wrapped: Uint8Array,
): Uint8Array | undefined {
  assertKey256(masterKey, 'master key');
  if (!(wrapped instanceof Uint8Array) || wrapped.byteLength !== WRAPPED_DATA_KEY_BYTES) {
    throw new DecryptionError('malformed', 'wrapped key could not be read');
  }
  if (wrapped[0] !== WRAP_FORMAT_VERSION) {
    throw new DecryptionError('unsupported_format', 'wrapped key could not be read');
  }
  let unverified: Uint8Array | undefined;
  try {
    const nonce = wrapped.subarray(1, 1 + NONCE_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', masterKey, nonce, {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(aad);
    decipher.setAuthTag(wrapped.subarray(1 + NONCE_BYTES + KEY_BYTES));
    unverified = decipher.update(wrapped.subarray(1 + NONCE_BYTES, 1 + NONCE_BYTES + KEY_BYTES));
    decipher.final();
  } catch {
    unverified?.fill(0);
    return undefined;
  }
  const key = new Uint8Array(unverified);
  unverified.fill(0);
  return key;
}

/**
 * A stable, non-secret identifier of a master key (for `master-key status`, logs, and to detect
 * that the configured key is not the one the database was sealed with): the first 32 hex chars
 * of HMAC-SHA256(masterKey, fixed label). Reveals nothing usable about the key.
 */
export function masterKeyFingerprint(masterKey: Uint8Array): string {
  assertKey256(masterKey, 'master key');
  return createHmac('sha256', masterKey).update(FINGERPRINT_LABEL).digest('hex').slice(0, 32);
}

/**
 * Unwrapped data keys by version plus the current (encrypting) version. Decrypts with whatever
 * version a ciphertext names; encrypts with the current one. Not persisted: build it at startup
 * from the wrapped keys in the database and rebuild on {@link UnknownDataKeyError}.
 */
export class Keyring {
  readonly #keys = new Map<number, DataKey>();
  #current: DataKey | undefined;

  /**
   * Optionally preloads `dataKeys`; `currentVersion` (default: the highest version given)
   * becomes the encrypting key. Key bytes are copied.
   */
  constructor(dataKeys: readonly DataKey[] = [], currentVersion?: number) {
    for (const dataKey of dataKeys) this.add(dataKey, false);
    const current =
      currentVersion ?? (dataKeys.length ? Math.max(...this.#keys.keys()) : undefined);
    if (current !== undefined) {
      const dataKey = this.#keys.get(current);
      if (!dataKey) throw new RangeError(`current data key version ${current} was not provided`);
      this.#current = dataKey;
    }
  }

  /** Version used by {@link encrypt}; undefined while the keyring is empty. */
  get currentVersion(): number | undefined {
    return this.#current?.version;
  }

  /** True when the keyring can encrypt (health checks report 503 otherwise). */
  get isReady(): boolean {
    return this.#current !== undefined;
  }

  /** Whether data key `version` is loaded. */
  has(version: number): boolean {
    return this.#keys.has(version);
  }

  /** Loaded versions, ascending. */
  versions(): number[] {
    return [...this.#keys.keys()].sort((a, b) => a - b);
  }

  /**
   * Loads a data key (bytes are copied) and optionally makes it current. Re-adding a version
   * with the same bytes is a no-op; with different bytes it throws (two keys, one version).
   */
  add(dataKey: DataKey, makeCurrent: boolean): void {
    assertDataKeyVersion(dataKey.version);
    assertKey256(dataKey.key, 'data key');
    let stored = this.#keys.get(dataKey.version);
    if (stored) {
      if (!constantTimeEqual(stored.key, dataKey.key)) {
        throw new RangeError(
          `data key version ${dataKey.version} is already loaded with other bytes`,
        );
      }
    } else {
      stored = { version: dataKey.version, key: new Uint8Array(dataKey.key) };
      this.#keys.set(stored.version, stored);
    }
    if (makeCurrent) this.#current = stored;
  }

  /**
   * Seals `plaintext` (strings as UTF-8) at `where` under the current data key.
   * Throws NoCurrentDataKeyError if the keyring is empty.
   */
  encrypt(plaintext: Uint8Array | string, where: ValueLocation): Uint8Array {
    if (!this.#current) throw new NoCurrentDataKeyError();
    const bytes = typeof plaintext === 'string' ? utf8.encode(plaintext) : plaintext;
    return sealValue(this.#current, bytes, where);
  }

  /**
   * Opens a sealed value with the data key its header names. Throws UnknownDataKeyError
   * (with `.version`) if that key is not loaded, DecryptionError for anything else wrong.
   */
  decrypt(ciphertext: Uint8Array, where: ValueLocation): Uint8Array {
    const version = readDataKeyVersion(ciphertext);
    const dataKey = this.#keys.get(version);
    if (!dataKey) throw new UnknownDataKeyError(version);
    return openValue(dataKey, ciphertext, where);
  }

  /**
   * {@link decrypt} then strict UTF-8 decoding (a leading BOM is preserved, not stripped).
   * Invalid UTF-8 throws DecryptionError('invalid_utf8').
   */
  decryptString(ciphertext: Uint8Array, where: ValueLocation): string {
    const version = readDataKeyVersion(ciphertext);
    const dataKey = this.#keys.get(version);
    if (!dataKey) throw new UnknownDataKeyError(version);
    return openValueText(dataKey, ciphertext, where);
  }
}
