/**
 * API bearer tokens: generation, offline validation, and storage hashing.
 *
 * Layout (65 ASCII characters, fixed):
 *
 * ```
 * scr_ LLLLLLLLLLLL SSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSS CCCCCC
 *  4        12                        43                         6
 * ```
 *
 * - `scr_`: fixed prefix so humans and scanners recognise the token.
 * - `L`: lookup id, 12 uniform base62 characters (≈ 71.4 bits). Public: stored in plaintext
 *   in an indexed (unique) column so authentication is a point read, never a table scan.
 * - `S`: secret part, 32 bytes from `crypto.randomBytes` read as one 256-bit big-endian
 *   integer and written as exactly 43 base62 digits (zero-padded). 62^43 ≈ 2^256.03 > 2^256,
 *   so the encoding is injective and the secret carries exactly 256 bits of entropy.
 * - `C`: standard CRC-32 (IEEE 802.3 / zlib: reflected polynomial 0xEDB88320, init and
 *   final XOR 0xFFFFFFFF) of the ASCII bytes of everything before it (`scr_` + L + S),
 *   written as 6 base62 digits (62^6 > 2^32), zero-padded. It is a typo and scanner
 *   false-positive filter, not an authenticator: anyone can compute it.
 *
 * Base62 alphabet, in digit order: `0-9`, `A-Z`, `a-z`.
 *
 * Secret scanners match tokens with `\bscr_[0-9A-Za-z]{61}\b` and may confirm a hit offline
 * by recomputing the CRC-32 of the first 59 characters.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';

/** Fixed prefix of every Secryn API token. */
export const API_TOKEN_PREFIX = 'scr_';

/** Total length of an API token, prefix included (4 + 12 + 43 + 6). */
export const API_TOKEN_LENGTH = 65;

/**
 * Whole-string shape of an API token (prefix, fixed length, base62 alphabet); anchored, no
 * flags, so it is safe to share. It does not check the checksum: use `parseApiToken`.
 * For scanning free text use the unanchored form `\bscr_[0-9A-Za-z]{61}\b`.
 */
export const API_TOKEN_PATTERN = /^scr_[0-9A-Za-z]{61}$/;

const BASE62_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const LOOKUP_ID_LENGTH = 12;
const SECRET_LENGTH = 43;
const SECRET_BYTES = 32;
const CHECKSUM_LENGTH = 6;
const CHECKED_LENGTH = API_TOKEN_LENGTH - CHECKSUM_LENGTH;
const SHA256_BYTES = 32;

const CRC32_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 over the char codes of an ASCII string (callers guarantee ASCII). */
function crc32Ascii(text: string): number {
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++) {
    crc = CRC32_TABLE[(crc ^ text.charCodeAt(i)) & 0xff]! ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function checksumOf(checkedPart: string): string {
  let value = crc32Ascii(checkedPart);
  let digits = '';
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    digits = BASE62_ALPHABET[value % 62]! + digits;
    value = Math.floor(value / 62);
  }
  return digits;
}

function encodeSecret(bytes: Uint8Array): string {
  let value = BigInt('0x' + Buffer.from(bytes).toString('hex'));
  let digits = '';
  for (let i = 0; i < SECRET_LENGTH; i++) {
    digits = BASE62_ALPHABET[Number(value % 62n)]! + digits;
    value /= 62n;
  }
  return digits;
}

/** Uniform base62 string by rejection sampling: bytes ≥ 248 (= 4 × 62) would bias `% 62`. */
function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248) out += BASE62_ALPHABET[byte % 62]!;
      if (out.length === length) break;
    }
  }
  return out;
}

/** A freshly minted token and the parts the server keeps in plaintext. */
export interface GeneratedApiToken {
  /** The bearer token; show it once, store only `hashApiToken(token)`. */
  token: string;
  /** 12-char public lookup id; store in a unique indexed column. */
  lookupId: string;
  /** `scr_` + lookup id: safe to display and store in plaintext (the API's `prefix`). */
  displayPrefix: string;
}

/**
 * Mints a new API token with a 256-bit secret (see the module comment for the layout).
 * The lookup id is random, not checked for uniqueness: the caller's unique index rejects the
 * (≈ n²/2^72.4) collision and the caller retries with a new token.
 */
export function generateApiToken(): GeneratedApiToken {
  const lookupId = randomBase62(LOOKUP_ID_LENGTH);
  const checkedPart = API_TOKEN_PREFIX + lookupId + encodeSecret(randomBytes(SECRET_BYTES));
  return {
    token: checkedPart + checksumOf(checkedPart),
    lookupId,
    displayPrefix: API_TOKEN_PREFIX + lookupId,
  };
}

/**
 * Validates a candidate token offline — prefix, exact length, base62 alphabet and CRC-32 —
 * and returns its lookup id, or `null` if any check fails. Run it before any database work
 * so malformed or mistyped bearer values cost no I/O. A non-null result says nothing about
 * whether the token exists or is authentic: look the row up by `lookupId`, then compare
 * with `apiTokenHashMatches`.
 */
export function parseApiToken(candidate: string): { lookupId: string } | null {
  const lookupId = apiTokenLookupId(candidate);
  if (lookupId === null || !apiTokenChecksumMatches(candidate)) return null;
  return { lookupId };
}

/**
 * The lookup id of a candidate of the right shape (prefix, exact length, base62 alphabet), or
 * `null`; the checksum is not checked. For callers that look the id up in memory first and
 * call {@link apiTokenChecksumMatches} before any database work.
 */
export function apiTokenLookupId(candidate: string): string | null {
  if (typeof candidate !== 'string' || candidate.length !== API_TOKEN_LENGTH) return null;
  if (!API_TOKEN_PATTERN.test(candidate)) return null;
  return candidate.slice(API_TOKEN_PREFIX.length, API_TOKEN_PREFIX.length + LOOKUP_ID_LENGTH);
}

/** True when a candidate of the right shape carries a valid CRC-32 checksum. */
export function apiTokenChecksumMatches(candidate: string): boolean {
  return checksumOf(candidate.slice(0, CHECKED_LENGTH)) === candidate.slice(CHECKED_LENGTH);
}

/**
 * SHA-256 of the whole token (UTF-8), 32 bytes, for storage. A fast unsalted hash is the
 * right tool here: the secret has 256 bits of entropy, so brute force and rainbow tables
 * are hopeless, and a slow KDF (argon2/bcrypt) per request would cap throughput at tens of
 * requests per second.
 */
export function hashApiToken(token: string): Uint8Array {
  // Bun's one-shot SHA-256: a quarter of node:crypto's createHash, on every request.
  return Bun.SHA256.hash(token) as Uint8Array;
}

/**
 * True when `token` hashes to `storedHash`, compared in constant time. A stored hash of the
 * wrong length (not 32 bytes) never matches; its length is not secret.
 */
export function apiTokenHashMatches(token: string, storedHash: Uint8Array): boolean {
  if (storedHash.byteLength !== SHA256_BYTES) return false;
  return timingSafeEqual(hashApiToken(token), storedHash);
}
