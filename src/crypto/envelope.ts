/**
 * Column-value encryption: AES-256-GCM (node:crypto) under a data key, bound to where the value
 * is stored. Layout of a sealed value:
 *
 *   [format = 2 : 1 byte][data-key version : uint32 BE][nonce : 12][ciphertext : n][tag : 16]
 *
 * The associated data is an unambiguous length-prefixed encoding of a domain label, the 5 header
 * bytes and the {@link ValueLocation} including its owner (parent row, project, vault), so a
 * sealed value copied to another table, column, row or version, a row moved to another vault or
 * project, or any header bit changed, fails authentication.
 *
 * Format 1 (domain `secryn/v1/value`) bound no owner. It is opened only when the caller asks
 * for it explicitly ({@link ValueLocation.legacyFormat}), which only the one-time migration of
 * src/keyring/bind-locations.ts does; every other read refuses it.
 */
import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto';
import { DecryptionError } from './errors.ts';

/**
 * Who a sealed value belongs to, beyond its row: the parent row it hangs off, its project and its
 * vault. Absent or null parts are bound as empty (ids are never empty), so a value of a
 * project-scoped row does not open once the row claims another project, or none.
 */
export type ValueOwner = {
  parentId?: string | null;
  projectId?: string | null;
  vaultId?: string | null;
};

/** Where a sealed value lives; part of the associated data. `version` is a secret's version. */
export type ValueLocation = {
  table: string;
  column: string;
  rowId: string;
  version?: number;
  owner?: ValueOwner;
  /**
   * Also open a format-1 value (sealed before owners were bound, so `owner` is not checked for
   * it). Only for the migration that re-seals such values; never set on a request path.
   */
  legacyFormat?: boolean;
};

/** An unwrapped data key: 32 bytes plus its version number (1 ≤ version ≤ 2^32 − 1). */
export type DataKey = { version: number; key: Uint8Array };

/** Format version byte written by {@link sealValue}. */
export const VALUE_FORMAT_VERSION = 2;
/** The format before owners were bound; readable only with {@link ValueLocation.legacyFormat}. */
export const LEGACY_VALUE_FORMAT_VERSION = 1;

const CIPHER = 'aes-256-gcm';
const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + 4;
const PREFIX_BYTES = HEADER_BYTES + NONCE_BYTES;
/** Smallest well-formed sealed value: header, nonce and tag around an empty plaintext. */
export const MIN_SEALED_BYTES = PREFIX_BYTES + TAG_BYTES;
const MAX_DATA_KEY_VERSION = 0xffff_ffff;
const VALUE_DOMAIN = 'secryn/v2/value';
const LEGACY_VALUE_DOMAIN = 'secryn/v1/value';

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Throws unless `version` can be stored in the uint32 header and is not the zero sentinel. */
export function assertDataKeyVersion(version: number): void {
  if (!Number.isInteger(version) || version < 1 || version > MAX_DATA_KEY_VERSION) {
    throw new RangeError('data key version must be an integer in 1..4294967295');
  }
}

/** Throws unless `key` is exactly 32 bytes. Never echoes the key. */
export function assertKey256(key: Uint8Array, what = 'key'): void {
  if (!(key instanceof Uint8Array) || key.byteLength !== KEY_BYTES) {
    throw new RangeError(`${what} must be exactly 32 bytes`);
  }
}

/**
 * Encodes `fields` as a sequence of [uint32 BE length][bytes], so no two different field lists
 * share an encoding. Used for every associated-data string in the crypto layer.
 */
export function encodeFields(fields: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const field of fields) total += 4 + field.byteLength;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const field of fields) {
    view.setUint32(offset, field.byteLength);
    out.set(field, offset + 4);
    offset += 4 + field.byteLength;
  }
  return out;
}

const DOMAIN_FIELD = encodeFields([utf8.encode(VALUE_DOMAIN)]);
const LEGACY_DOMAIN_FIELD = encodeFields([utf8.encode(LEGACY_VALUE_DOMAIN)]);
// Reused AAD buffer: node:crypto copies it in setAAD, which runs synchronously right after.
let aadScratch = new Uint8Array(256);
let aadView = new DataView(aadScratch.buffer);

function requireName(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '') throw new TypeError(`where.${field} is required`);
  return value;
}

function ownerPart(value: unknown, field: string): string {
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string' || value === '') {
    throw new TypeError(`where.owner.${field} must be a non-empty string or null`);
  }
  return value;
}

/**
 * AAD = fields(domain, header, table, column, rowId, version, parentId, projectId, vaultId) in
 * {@link encodeFields} form (format 1: without the three owner fields, under its own domain).
 * An absent version is an empty field and a present one 8 bytes, so the two never collide; an
 * absent owner part is an empty field, and ids are never empty. `sealed` starts with the 5
 * header bytes. The result aliases a shared scratch buffer and must be consumed before the next
 * call. Built without intermediate arrays or views: it runs once per value opened (50 times in
 * a vault read).
 */
function locationAad(sealed: Uint8Array, where: ValueLocation): Uint8Array {
  const table = requireName(where.table, 'table');
  const column = requireName(where.column, 'column');
  const rowId = requireName(where.rowId, 'rowId');
  const { version } = where;
  if (version !== undefined && (!Number.isSafeInteger(version) || version < 0)) {
    throw new RangeError('where.version must be a non-negative safe integer');
  }
  const legacy = sealed[0] === LEGACY_VALUE_FORMAT_VERSION;
  const domain = legacy ? LEGACY_DOMAIN_FIELD : DOMAIN_FIELD;
  const parentId = legacy ? '' : ownerPart(where.owner?.parentId, 'parentId');
  const projectId = legacy ? '' : ownerPart(where.owner?.projectId, 'projectId');
  const vaultId = legacy ? '' : ownerPart(where.owner?.vaultId, 'vaultId');
  // UTF-8 needs at most 3 bytes per UTF-16 code unit.
  const bound =
    domain.byteLength +
    4 * 8 +
    HEADER_BYTES +
    8 +
    3 *
      (table.length +
        column.length +
        rowId.length +
        parentId.length +
        projectId.length +
        vaultId.length);
  if (bound > aadScratch.byteLength) {
    aadScratch = new Uint8Array(bound * 2);
    aadView = new DataView(aadScratch.buffer);
  }
  aadScratch.set(domain);
  let offset = domain.byteLength;
  aadView.setUint32(offset, HEADER_BYTES);
  offset += 4;
  for (let i = 0; i < HEADER_BYTES; i++) aadScratch[offset + i] = sealed[i]!;
  offset += HEADER_BYTES;
  offset = writeTextField(table, offset);
  offset = writeTextField(column, offset);
  offset = writeTextField(rowId, offset);
  if (version === undefined) {
    aadView.setUint32(offset, 0);
    offset += 4;
  } else {
    aadView.setUint32(offset, 8);
    aadView.setUint32(offset + 4, Math.floor(version / 0x1_0000_0000));
    aadView.setUint32(offset + 8, version >>> 0);
    offset += 12;
  }
  if (!legacy) {
    offset = writeTextField(parentId, offset);
    offset = writeTextField(projectId, offset);
    offset = writeTextField(vaultId, offset);
  }
  return aadScratch.subarray(0, offset);
}

/**
 * AADs kept for frozen locations (a caller that keeps one location per stored value, as the
 * vault read does for its cached rows), with the header bytes each was built for: a value
 * re-sealed with another header gets its AAD built again. Associated data is public metadata;
 * an entry goes when its location does.
 */
const keptAads = new WeakMap<ValueLocation, { header: Uint8Array; aad: Uint8Array }>();

/** {@link locationAad}, kept for a location that can no longer change (frozen, owner too). */
function aadFor(sealed: Uint8Array, where: ValueLocation): Uint8Array {
  if (!Object.isFrozen(where) || (where.owner !== undefined && !Object.isFrozen(where.owner))) {
    return locationAad(sealed, where);
  }
  const kept = keptAads.get(where);
  if (kept && sameHeader(kept.header, sealed)) return kept.aad;
  const aad = locationAad(sealed, where).slice();
  keptAads.set(where, { header: sealed.slice(0, HEADER_BYTES), aad });
  return aad;
}

function sameHeader(header: Uint8Array, sealed: Uint8Array): boolean {
  for (let i = 0; i < HEADER_BYTES; i++) if (header[i] !== sealed[i]) return false;
  return true;
}

/**
 * Writes `text` as [uint32 BE length][UTF-8] at `offset` of the scratch buffer (which
 * {@link locationAad} has sized) and returns the offset after it. Names and ids are ASCII,
 * copied byte by byte; anything else goes through the encoder.
 */
function writeTextField(text: string, offset: number): number {
  const start = offset + 4;
  let written = 0;
  for (; written < text.length; written++) {
    const code = text.charCodeAt(written);
    if (code >= 0x80) break;
    aadScratch[start + written] = code;
  }
  if (written < text.length) written = utf8.encodeInto(text, aadScratch.subarray(start)).written;
  aadView.setUint32(offset, written);
  return start + written;
}

/**
 * Encrypts `plaintext` under `dataKey` with a fresh random nonce, bound to `where`.
 * Throws RangeError/TypeError on a bad key, version or location (programming errors).
 */
export function sealValue(
  dataKey: DataKey,
  plaintext: Uint8Array,
  where: ValueLocation,
): Uint8Array {
  assertDataKeyVersion(dataKey.version);
  assertKey256(dataKey.key, 'data key');
  const out = new Uint8Array(PREFIX_BYTES + plaintext.byteLength + TAG_BYTES);
  const view = new DataView(out.buffer);
  out[0] = VALUE_FORMAT_VERSION;
  view.setUint32(1, dataKey.version);
  randomFillSync(out, HEADER_BYTES, NONCE_BYTES);
  const nonce = out.subarray(HEADER_BYTES, PREFIX_BYTES);

  const cipher = createCipheriv(CIPHER, dataKey.key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(locationAad(out, where));
  const body = cipher.update(plaintext);
  const tail = cipher.final(); // empty for GCM, kept for correctness
  out.set(body, PREFIX_BYTES);
  out.set(tail, PREFIX_BYTES + body.byteLength);
  out.set(cipher.getAuthTag(), PREFIX_BYTES + plaintext.byteLength);
  return out;
}

/**
 * Returns the data-key version named in a sealed value's header, after checking the length,
 * format byte and version range. Throws DecryptionError if the header is not well formed.
 * The version is not authenticated until {@link openValue} succeeds.
 */
export function readDataKeyVersion(ciphertext: Uint8Array): number {
  if (!(ciphertext instanceof Uint8Array) || ciphertext.byteLength < MIN_SEALED_BYTES) {
    throw new DecryptionError('malformed');
  }
  const format = ciphertext[0];
  if (format !== VALUE_FORMAT_VERSION && format !== LEGACY_VALUE_FORMAT_VERSION) {
    throw new DecryptionError('unsupported_format');
  }
  // Big-endian u32 at offset 1, without a DataView per call (this runs on every value read).
  const version =
    ((ciphertext[1]! << 24) | (ciphertext[2]! << 16) | (ciphertext[3]! << 8) | ciphertext[4]!) >>>
    0;
  if (version === 0) throw new DecryptionError('malformed');
  return version;
}

/**
 * Decrypts a value sealed by {@link sealValue} with the same key and location. Any malformed,
 * truncated, tampered or misplaced input throws DecryptionError; no partial plaintext escapes.
 * A format-1 value throws DecryptionError('unsupported_format') unless `where.legacyFormat`.
 * The error message names the location (table, column, row: never data), for the log.
 */
export function openValue(
  dataKey: DataKey,
  ciphertext: Uint8Array,
  where: ValueLocation,
): Uint8Array {
  const verified = decipherValue(dataKey, ciphertext, where);
  // Copy into a plain, exactly-sized Uint8Array (a Buffer may be a view on a shared slab).
  const plaintext = new Uint8Array(verified);
  verified.fill(0);
  return plaintext;
}

/**
 * {@link openValue} then strict UTF-8 decoding (a leading BOM is preserved, not stripped), from
 * the decipher's own output: no copy of the plaintext bytes, which are zeroed once decoded.
 * Invalid UTF-8 throws DecryptionError('invalid_utf8').
 */
export function openValueText(
  dataKey: DataKey,
  ciphertext: Uint8Array,
  where: ValueLocation,
): string {
  const verified = decipherValue(dataKey, ciphertext, where);
  try {
    return strictUtf8.decode(verified);
  } catch {
    throw new DecryptionError('invalid_utf8', 'value is not valid UTF-8');
  } finally {
    verified.fill(0);
  }
}

/** The authenticated plaintext of a sealed value, as the decipher returned it (see openValue). */
function decipherValue(dataKey: DataKey, ciphertext: Uint8Array, where: ValueLocation): Buffer {
  assertKey256(dataKey.key, 'data key');
  const version = readDataKeyVersion(ciphertext);
  if (ciphertext[0] === LEGACY_VALUE_FORMAT_VERSION && where.legacyFormat !== true) {
    throw new DecryptionError('unsupported_format', misplacedMessage(where));
  }
  if (version !== dataKey.version) throw new DecryptionError('key_mismatch');

  const nonce = ciphertext.subarray(HEADER_BYTES, PREFIX_BYTES);
  const body = ciphertext.subarray(PREFIX_BYTES, ciphertext.byteLength - TAG_BYTES);
  const tag = ciphertext.subarray(ciphertext.byteLength - TAG_BYTES);
  const aad = aadFor(ciphertext, where);
  let unverified: Buffer | undefined;
  try {
    const decipher = createDecipheriv(CIPHER, dataKey.key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    unverified = decipher.update(body);
    decipher.final(); // throws if the tag does not verify
  } catch {
    unverified?.fill(0); // unauthenticated plaintext must not linger
    throw new DecryptionError('authentication_failed', misplacedMessage(where));
  }
  return unverified;
}

/** The log line of a value that does not open where it is found: names the place, no data. */
function misplacedMessage(where: ValueLocation): string {
  const at = `${where.table}.${where.column} row ${where.rowId.slice(0, 200)}`;
  return `the value stored at ${at} does not open there (tampered, moved or corrupt)`;
}
