/**
 * Strict PEM reading and writing, and the few DER reads that key and certificate parsing need
 * (./material.ts): blocks and blank lines only, exact base64, definite DER lengths. Every
 * refusal is an `InvalidRequestError(field, reason)` whose reason never contains the input.
 */
import { InvalidRequestError } from '../errors.ts';

/** Largest PEM text accepted by the parsers, in UTF-8 bytes. */
export const MAX_PEM_BYTES = 64 * 1024;

/** Why PEM text is refused (the reasons material.ts shares). */
export const PEM_REASON = {
  notString: 'Must be a PEM-encoded string',
  empty: 'Must not be empty',
  tooLarge: `Must be at most ${MAX_PEM_BYTES} bytes`,
  textOutsidePem:
    'Only PEM blocks are allowed: remove any text before, between or after the -----BEGIN/-----END lines',
  unterminated: 'A PEM block is not terminated (missing or mismatched -----END line)',
  headers: 'PEM headers are not supported',
  badBase64: 'A PEM block does not contain valid base64 (corrupted or truncated)',
} as const;

export type PemBlock = { label: string; der: Buffer; encrypted: boolean };

const BEGIN_LINE = /^-----BEGIN ([A-Z0-9]+(?: [A-Z0-9]+)*)-----$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Splits PEM text into blocks, refusing anything but blocks and blank lines. A block with RFC
 * 1421 headers is returned only when they mark it encrypted (so the caller can say so); any
 * other header is refused.
 */
export function readPemBlocks(text: unknown, field: string): PemBlock[] {
  if (typeof text !== 'string') throw new InvalidRequestError(field, PEM_REASON.notString);
  if (Buffer.byteLength(text, 'utf8') > MAX_PEM_BYTES)
    throw new InvalidRequestError(field, PEM_REASON.tooLarge);
  const lines = text.split(/\r\n|\r|\n/).map((line) => line.trim());
  const blocks: PemBlock[] = [];
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    if (line === '') continue;
    const label = BEGIN_LINE.exec(line)?.[1];
    if (label === undefined) throw new InvalidRequestError(field, PEM_REASON.textOutsidePem);
    const headers: string[] = [];
    const body: string[] = [];
    let terminated = false;
    for (index++; index < lines.length; index++) {
      const inner = lines[index]!;
      if (inner.startsWith('-----')) {
        if (inner !== `-----END ${label}-----`)
          throw new InvalidRequestError(field, PEM_REASON.unterminated);
        terminated = true;
        break;
      }
      if (body.length === 0 && inner.includes(':')) headers.push(inner);
      else if (inner !== '') body.push(inner);
    }
    if (!terminated) throw new InvalidRequestError(field, PEM_REASON.unterminated);
    const encrypted = headers.some((header) => /^Proc-Type:.*ENCRYPTED/i.test(header));
    if (headers.length > 0 && !encrypted) throw new InvalidRequestError(field, PEM_REASON.headers);
    const base64 = body.join('');
    if (!encrypted && (base64 === '' || !BASE64.test(base64)))
      throw new InvalidRequestError(field, PEM_REASON.badBase64);
    blocks.push({ label, der: Buffer.from(base64, 'base64'), encrypted });
  }
  if (blocks.length === 0) throw new InvalidRequestError(field, PEM_REASON.empty);
  return blocks;
}

export function armour(label: string, der: Uint8Array): string {
  const lines =
    Buffer.from(der)
      .toString('base64')
      .match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** A DER element: its tag and the offsets of its contents. */
export type Tlv = { tag: number; start: number; end: number };

/** Reads the DER element at `offset` (definite lengths only) if it fits within `limit`. */
export function readTlv(der: Uint8Array, offset: number, limit = der.length): Tlv | undefined {
  if (offset + 2 > limit) return undefined;
  const tag = der[offset]!;
  if ((tag & 0x1f) === 0x1f) return undefined; // high tag numbers: absent from key structures
  let length = der[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const octets = length & 0x7f;
    if (octets === 0 || octets > 3 || start + octets > limit) return undefined;
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + der[start + i]!;
    start += octets;
  }
  return start + length <= limit ? { tag, start, end: start + length } : undefined;
}

/** The elements inside a constructed element, or undefined if they do not tile it exactly. */
export function readChildren(der: Uint8Array, parent: Tlv | undefined): Tlv[] | undefined {
  if (!parent || (parent.tag & 0x20) === 0) return undefined;
  const children: Tlv[] = [];
  for (let offset = parent.start; offset < parent.end; ) {
    const child = readTlv(der, offset, parent.end);
    if (!child) return undefined;
    children.push(child);
    offset = child.end;
  }
  return children;
}

export function oidHex(der: Uint8Array, tlv: Tlv): string | undefined {
  return tlv.tag === 0x06
    ? Buffer.from(der.subarray(tlv.start, tlv.end)).toString('hex')
    : undefined;
}

/** Whether `der` is exactly one SEQUENCE (no trailing bytes, not truncated). */
export function isSingleDerSequence(der: Uint8Array): boolean {
  const tlv = readTlv(der, 0);
  return tlv?.tag === 0x30 && tlv.end === der.length;
}
