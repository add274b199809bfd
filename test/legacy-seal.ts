/**
 * Test helper: seals a value in envelope format 1, the layout before owners (vault, project,
 * parent row) were bound into the associated data. Written out here with node:crypto, apart
 * from src/crypto/envelope.ts, so tests can build databases as an older Secryn left them.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { encodeFields, type DataKey, type ValueLocation } from '../src/crypto/envelope.ts';

const utf8 = new TextEncoder();

/** `plaintext` sealed under `dataKey` at `where` (owner ignored) as a format-1 value. */
export function sealLegacyValue(
  dataKey: DataKey,
  plaintext: Uint8Array | string,
  where: ValueLocation,
): Uint8Array {
  const bytes = typeof plaintext === 'string' ? utf8.encode(plaintext) : plaintext;
  const header = new Uint8Array(5);
  header[0] = 1;
  new DataView(header.buffer).setUint32(1, dataKey.version);
  const version = new Uint8Array(where.version === undefined ? 0 : 8);
  if (where.version !== undefined)
    new DataView(version.buffer).setBigUint64(0, BigInt(where.version));
  const aad = encodeFields([
    utf8.encode('secryn/v1/value'),
    header,
    utf8.encode(where.table),
    utf8.encode(where.column),
    utf8.encode(where.rowId),
    version,
  ]);
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', dataKey.key, nonce, { authTagLength: 16 });
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(bytes), cipher.final()]);
  return new Uint8Array(Buffer.concat([header, nonce, body, cipher.getAuthTag()]));
}
