/**
 * The integrity root key and the MAC keys derived from it. The root key is random (made at init
 * or by the migration that introduced it), stored only wrapped under the master key like the data
 * keys, and never used directly: HKDF-SHA256 derives one subkey per purpose (API key MACs, the
 * audit chain, the integrity record itself), so a MAC for one purpose is never valid for another.
 * A master-key rotation re-wraps the root key and changes no MAC.
 */
import { hkdfSync, randomBytes } from 'node:crypto';
import { constantTimeEqual } from './constant-time.ts';
import { assertKey256, encodeFields } from './envelope.ts';
import { unwrapKeyWithAad, wrapKeyWithAad } from './keyring.ts';

const KEY_BYTES = 32;
const WRAP_DOMAIN = 'secryn/v1/integrity-root-key-wrap';

/** HKDF `info` labels: one per purpose (documented in docs/audit.md for external verifiers). */
export const INTEGRITY_LABELS = {
  apiKeyMac: 'secryn/v1/api-key-mac',
  auditChain: 'secryn/v1/audit-chain',
  state: 'secryn/v1/integrity-state',
} as const;

/** The subkeys an open instance holds in memory. */
export type IntegrityKeys = {
  /** HMAC-SHA256 key of the API key rows' MACs. */
  apiKeyMac: Uint8Array;
  /** HMAC-SHA256 key of the audit chain's keyed entries. */
  auditChain: Uint8Array;
  /** HMAC-SHA256 key of the integrity record (where the keyed chain starts). */
  state: Uint8Array;
};

const utf8 = new TextEncoder();
const WRAP_AAD = encodeFields([utf8.encode(WRAP_DOMAIN)]);

/** 32 fresh random bytes for a new integrity root key. */
export function generateIntegrityRootKey(): Uint8Array {
  return new Uint8Array(randomBytes(KEY_BYTES));
}

/** The root key wrapped under `masterKey` (AES-256-GCM, bound to its purpose). */
export function wrapIntegrityRootKey(masterKey: Uint8Array, root: Uint8Array): Uint8Array {
  return wrapKeyWithAad(masterKey, WRAP_AAD, root);
}

/**
 * Reverses {@link wrapIntegrityRootKey}; undefined when the blob does not open under
 * `masterKey` (altered, or wrapped by another key). Throws DecryptionError for a malformed blob.
 */
export function unwrapIntegrityRootKey(
  masterKey: Uint8Array,
  wrapped: Uint8Array,
): Uint8Array | undefined {
  return unwrapKeyWithAad(masterKey, WRAP_AAD, wrapped);
}

/** HKDF-SHA256(root, salt = empty, info = label) → 32 bytes. */
export function deriveIntegrityKey(root: Uint8Array, label: string): Uint8Array {
  assertKey256(root, 'integrity root key');
  return new Uint8Array(hkdfSync('sha256', root, new Uint8Array(0), label, KEY_BYTES));
}

/** Every subkey of `root` (the caller zeroes `root`). */
export function deriveIntegrityKeys(root: Uint8Array): IntegrityKeys {
  return {
    apiKeyMac: deriveIntegrityKey(root, INTEGRITY_LABELS.apiKeyMac),
    auditChain: deriveIntegrityKey(root, INTEGRITY_LABELS.auditChain),
    state: deriveIntegrityKey(root, INTEGRITY_LABELS.state),
  };
}

/** Lowercase hex HMAC-SHA256 of the UTF-8 `message` under `key`. */
export function hmacHex(key: Uint8Array, message: string): string {
  // Bun's hasher: 1.3 µs for an audit entry against 1.9 µs with node:crypto's createHmac.
  return new Bun.CryptoHasher('sha256', key).update(message).digest('hex');
}

/** Whether `mac` (hex, possibly null or garbage) is the HMAC of `message` under `key`. */
export function hmacHexMatches(key: Uint8Array, message: string, mac: string | null): boolean {
  return typeof mac === 'string' && constantTimeEqual(hmacHex(key, message), mac);
}
