/** Constant-time comparison of secrets, MACs and tokens. */
import { timingSafeEqual } from 'node:crypto';

const utf8 = new TextEncoder();

function toBytes(value: Uint8Array | string): Uint8Array {
  return typeof value === 'string' ? utf8.encode(value) : value;
}

/**
 * Compares two byte strings (strings as UTF-8) in time that depends only on their lengths, never
 * on where they differ. Inputs of different lengths are compared after zero-padding to the longer
 * length, so a length mismatch still costs a full comparison and cannot short-circuit on content.
 * Use for tokens, MACs, checksums and any secret-derived value.
 */
export function constantTimeEqual(a: Uint8Array | string, b: Uint8Array | string): boolean {
  const left = toBytes(a);
  const right = toBytes(b);
  if (left.byteLength === right.byteLength) return timingSafeEqual(left, right);
  const length = Math.max(left.byteLength, right.byteLength);
  const paddedLeft = new Uint8Array(length);
  const paddedRight = new Uint8Array(length);
  paddedLeft.set(left);
  paddedRight.set(right);
  timingSafeEqual(paddedLeft, paddedRight); // same work as the equal-length case
  return false;
}
