/** Prefixed, time-ordered ids (TypeID over UUIDv7) and pooled randomness for them. */
import { randomFillSync } from 'node:crypto';
import { fromUUIDBytes } from 'typeid-js';

/** Random bytes drawn a page at a time: one getrandom call per few hundred ids. */
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

/**
 * `count` random bytes (at most 64) from the shared pool. The result is a view into the pool:
 * use it before the next call (encode or copy it), never keep it.
 */
export function pooledRandomBytes(count: number): Buffer {
  if (count > 64) throw new RangeError('pooledRandomBytes: at most 64 bytes');
  if (poolOffset + count > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const bytes = pool.subarray(poolOffset, poolOffset + count);
  poolOffset += count;
  return bytes;
}

/** The last id's time and random field, so that ids made within one millisecond still increase. */
let lastMs = -1;
const last = new Uint8Array(16);

/**
 * A new TypeID, `<prefix>_` + 26 base32 characters, over a UUIDv7 (RFC 9562): 48 bits of Unix
 * time in ms, then 74 random bits. Within one millisecond (or if the clock steps back) the
 * random field of the previous id is incremented instead (the RFC's "monotonic random"), so ids
 * of one process sort in creation order. typeid-js encodes; its own `typeid()` also re-validates
 * and re-parses what it has just made, which costs twice the rest on the audit log's hot path.
 */
export function newTypeId(prefix: string, nowMs: number = Date.now()): string {
  const bytes = new Uint8Array(16);
  if (nowMs > lastMs) {
    lastMs = nowMs;
    last.set(pooledRandomBytes(10), 6);
    last[6]! &= 0x0f; // the version nibble and the variant bits are set below
    last[8]! &= 0x3f;
  } else {
    incrementRandomField(last);
  }
  writeUuidV7Time(bytes, lastMs);
  bytes.set(last.subarray(6), 6);
  bytes[6] = 0x70 | bytes[6]!;
  bytes[8] = 0x80 | bytes[8]!;
  return fromUUIDBytes(prefix, bytes);
}

/** Writes `ms` (a 48-bit Unix time in milliseconds) big-endian into bytes 0–5 of a UUIDv7. */
export function writeUuidV7Time(bytes: Uint8Array, ms: number): void {
  bytes[0] = Math.floor(ms / 2 ** 40) & 0xff;
  bytes[1] = Math.floor(ms / 2 ** 32) & 0xff;
  bytes[2] = (ms >>> 24) & 0xff;
  bytes[3] = (ms >>> 16) & 0xff;
  bytes[4] = (ms >>> 8) & 0xff;
  bytes[5] = ms & 0xff;
}

/**
 * Adds one to the 74-bit random field (bytes 6–15 without the version nibble and variant bits).
 * It overflows only after 2^74 ids in one millisecond.
 */
function incrementRandomField(field: Uint8Array): void {
  for (let i = 15; i >= 6; i--) {
    if (i === 8) {
      if (field[8]! < 0x3f) {
        field[8]!++;
        return;
      }
      field[8] = 0;
      continue;
    }
    if (i === 6) {
      field[6] = (field[6]! + 1) & 0x0f;
      return;
    }
    if (field[i]! < 0xff) {
      field[i]!++;
      return;
    }
    field[i] = 0;
  }
}
