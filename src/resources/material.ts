/**
 * Key and certificate material for `key` and `certificate` resources: generation, strict PEM
 * parsing and normalisation, certificate metadata. Pure functions over `node:crypto`; every
 * refusal is an `InvalidRequestError(field, reason)` whose reason never contains the input.
 *
 * Formats (the API's stored values and metadata):
 * - Private keys are stored as unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), public
 *   keys as SPKI PEM (`-----BEGIN PUBLIC KEY-----`), whatever form was uploaded.
 * - AES-256 keys have no standard PEM form. Secryn stores them as the 32 raw key bytes, base64,
 *   in a `-----BEGIN SECRYN AES KEY-----` block: it downloads as `application/x-pem-file` like
 *   the other keys, the product-specific label says it is not an interoperable format, and
 *   `grep -v -- ----- key.pem | base64 -d | xxd -p -c 32` gives the hex that
 *   `openssl enc -K` wants. The same block is accepted on upload.
 * - `serial_number`: uppercase hex without separators, exactly as `openssl x509 -serial`.
 * - `fingerprint_sha256`: SHA-256 of the DER certificate, uppercase hex pairs joined by ":",
 *   exactly as `openssl x509 -fingerprint -sha256` and browsers show it.
 * - `subject`/`issuer`: RDNs most-significant first, joined by ", ", RFC 2253 escaping, UTF-8;
 *   identical to `openssl x509 -nameopt utf8,sep_comma_plus_space,esc_2253,esc_ctrl`.
 * - `not_before`/`not_after`: RFC 3339 UTC, seconds precision (`2024-01-15T10:30:00Z`).
 *
 * PEM input rules: at most {@link MAX_PEM_BYTES} bytes; only PEM blocks and blank lines (no text
 * before, between or after them, no RFC 1421 headers); CRLF and indented lines are tolerated;
 * every block's base64 and outer DER length must be exact (so truncated and padded blocks are
 * refused). Stored output is re-encoded from what was parsed, never the input text.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  generateKeySync,
  type KeyObject,
  X509Certificate,
} from 'node:crypto';
import { InvalidRequestError } from '../errors.ts';
import {
  armour,
  isSingleDerSequence,
  MAX_PEM_BYTES,
  oidHex,
  PEM_REASON,
  readChildren,
  readPemBlocks,
  readTlv,
} from './pem.ts';

export { MAX_PEM_BYTES };

/** Algorithms of `key` resources, as named in the API (`generate.algorithm`, `algorithm`). */
export const KEY_ALGORITHMS = [
  'rsa-2048',
  'rsa-4096',
  'ec-p256',
  'ec-p384',
  'ed25519',
  'aes-256',
] as const;

/** One of {@link KEY_ALGORITHMS}. */
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

/** Most certificates accepted in one chain. */
export const MAX_CHAIN_CERTIFICATES = 10;

/** PEM label of Secryn's AES-256 key block (see the module comment). */
export const AES_KEY_PEM_LABEL = 'SECRYN AES KEY';

/** A key as stored: normalised private PEM and, for asymmetric keys, the SPKI public PEM. */
export type KeyMaterial = {
  algorithm: KeyAlgorithm;
  /** PKCS#8 PEM, or the {@link AES_KEY_PEM_LABEL} block for `aes-256`. Secret. */
  privatePem: string;
  /** SPKI PEM; `null` for `aes-256`. Not secret. */
  publicPem: string | null;
};

/** Metadata of a certificate, as returned on certificate resources. */
export type CertificateInfo = {
  subject: string;
  issuer: string;
  serial_number: string;
  not_before: string;
  not_after: string;
  fingerprint_sha256: string;
};

/** A validated certificate chain. */
export type CertificateChain = {
  /** Metadata of the first certificate. */
  leaf: CertificateInfo;
  /** The certificates re-encoded as PEM, leaf first, each issued by the one after it. */
  chain: string;
  count: number;
};

const AES_KEY_BYTES = 32;

const REASON = {
  ...PEM_REASON,
  encrypted:
    'Encrypted private keys are not supported; decrypt it first (for example: openssl pkey -in key.pem -out plain.pem)',
  noPrivateKey: 'Expected a private key PEM block (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)',
  severalKeys: 'Expected exactly one private key, found several',
  extraBlocks:
    'Expected only the private key: remove the other PEM blocks (certificates, public keys)',
  certificateNotKey: 'This is a certificate, not a private key',
  publicNotPrivate: 'This is a public key; the private key is required',
  csrNotKey: 'This is a certificate signing request, not a private key',
  openSsh:
    'OpenSSH private keys are not supported; convert it to PKCS#8 first (ssh-keygen -p -m PKCS8 -f <file>)',
  corruptKey: 'The private key could not be parsed (corrupted or truncated)',
  keyType:
    'Unsupported key type; supported: RSA (2048 or 4096 bits), EC (P-256 or P-384), Ed25519, AES-256',
  curve: 'Unsupported elliptic curve; supported: P-256 (prime256v1), P-384 (secp384r1)',
  rsaSize: 'Unsupported RSA key size; supported: 2048 or 4096 bits',
  rsaExponent: 'Unsupported RSA public exponent; it must be at least 65537',
  aesLength: 'An AES key must be exactly 32 bytes (AES-256)',
  algorithm: `Unsupported algorithm; supported: ${KEY_ALGORITHMS.join(', ')}`,
  keyInChain:
    'Contains a private key; only certificates belong here (send the private key separately)',
  onlyCertificates: 'Only CERTIFICATE PEM blocks are allowed',
  tooManyCertificates: `At most ${MAX_CHAIN_CERTIFICATES} certificates are allowed`,
  reversedChain: 'The chain is in reverse order: list the leaf certificate first, then each issuer',
  keyMismatch: "The private key does not match the certificate's public key",
  symmetricWithCertificate: 'An AES key cannot belong to a certificate',
} as const;

/** Whether `value` names a supported key algorithm. */
export function isKeyAlgorithm(value: unknown): value is KeyAlgorithm {
  return typeof value === 'string' && (KEY_ALGORITHMS as readonly string[]).includes(value);
}

/**
 * Generates new key material. RSA runs on libuv's thread pool (the async `generateKeyPair`)
 * because RSA-4096 takes about 1.5 s (up to several seconds) and must not stall the event
 * loop; EC, Ed25519 and AES take well under a millisecond. An unknown algorithm is an
 * `InvalidRequestError(field)`.
 */
export async function generateKeyMaterial(
  algorithm: KeyAlgorithm,
  field = 'generate.algorithm',
): Promise<KeyMaterial> {
  switch (algorithm) {
    case 'rsa-2048':
    case 'rsa-4096': {
      const modulusLength = algorithm === 'rsa-2048' ? 2048 : 4096;
      return asymmetricMaterial(
        algorithm,
        await new Promise<KeyObject>((resolve, reject) =>
          generateKeyPair('rsa', { modulusLength, publicExponent: 65537 }, (error, _, key) =>
            error ? reject(error) : resolve(key),
          ),
        ),
      );
    }
    case 'ec-p256':
    case 'ec-p384': {
      const namedCurve = algorithm === 'ec-p256' ? 'P-256' : 'P-384';
      return asymmetricMaterial(
        algorithm,
        await new Promise<KeyObject>((resolve, reject) =>
          generateKeyPair('ec', { namedCurve }, (error, _, key) =>
            error ? reject(error) : resolve(key),
          ),
        ),
      );
    }
    case 'ed25519':
      return asymmetricMaterial(
        algorithm,
        await new Promise<KeyObject>((resolve, reject) =>
          generateKeyPair('ed25519', {}, (error, _, key) => (error ? reject(error) : resolve(key))),
        ),
      );
    case 'aes-256':
      return aesMaterial(generateKeySync('aes', { length: 256 }).export());
    default:
      throw new InvalidRequestError(field, REASON.algorithm);
  }
}

/**
 * Parses one uploaded, unencrypted private key: PKCS#8 (`PRIVATE KEY`), PKCS#1
 * (`RSA PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`, optionally preceded by the `EC PARAMETERS` block
 * that `openssl ecparam -genkey` writes) or Secryn's AES block. The algorithm is read from the
 * parsed key, never from the label. Returns it normalised to PKCS#8 with its public key.
 * Refuses encrypted keys, unsupported types, curves and sizes, several keys, certificates,
 * public keys, junk and oversize input, naming `field`.
 */
export function parsePrivateKeyPem(pem: string, field = 'value'): KeyMaterial {
  const blocks = readPemBlocks(pem, field);
  if (blocks.some((block) => block.encrypted || block.label === 'ENCRYPTED PRIVATE KEY'))
    throw new InvalidRequestError(field, REASON.encrypted);
  const unsupportedKey = blocks.find(
    (block) => block.label.endsWith('PRIVATE KEY') && !PRIVATE_KEY_FORMATS.has(block.label),
  );
  if (unsupportedKey) throw new InvalidRequestError(field, wrongBlockReason(unsupportedKey.label));
  const keyBlocks = blocks.filter((block) => PRIVATE_KEY_FORMATS.has(block.label));
  const [block] = keyBlocks;
  if (!block) throw new InvalidRequestError(field, wrongBlockReason(blocks[0]!.label));
  if (keyBlocks.length > 1) throw new InvalidRequestError(field, REASON.severalKeys);
  const format = PRIVATE_KEY_FORMATS.get(block.label);
  if (!format) throw new InvalidRequestError(field, wrongBlockReason(block.label));
  if (format === 'aes') {
    if (block.der.length !== AES_KEY_BYTES) throw new InvalidRequestError(field, REASON.aesLength);
    return aesMaterial(block.der);
  }
  if (!isSingleDerSequence(block.der)) throw new InvalidRequestError(field, REASON.corruptKey);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: block.der, format: 'der', type: format });
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw new InvalidRequestError(
      field,
      code === 'ERR_MISSING_PASSPHRASE'
        ? REASON.encrypted
        : explainUnparsableKey(block.der, format),
    );
  }
  const algorithm = classifyKey(key, field);
  // Checked after the key so that an unsupported key says so even with its parameters block.
  // `openssl ecparam -genkey` writes the curve as its own block before an EC PRIVATE KEY.
  const extraBlocks = blocks.filter(
    (other) =>
      other !== block && !(other.label === 'EC PARAMETERS' && block.label === 'EC PRIVATE KEY'),
  );
  if (extraBlocks.length > 0) throw new InvalidRequestError(field, REASON.extraBlocks);
  return asymmetricMaterial(algorithm, key);
}

/**
 * Parses an uploaded certificate chain: one or more `CERTIFICATE` blocks, leaf first, each
 * issued (name match and valid signature) by the next, at most {@link MAX_CHAIN_CERTIFICATES},
 * no duplicates. Refuses private keys pasted into the chain (with a reason saying so), other
 * PEM blocks, junk and oversize input, naming `field`. Validity dates are not judged here: an
 * expired certificate is a valid upload (the resource then answers 410).
 */
export function parseCertificateChain(pem: string, field = 'value'): CertificateChain {
  const blocks = readPemBlocks(pem, field);
  if (blocks.some((block) => block.label.includes('PRIVATE KEY') || block.encrypted))
    throw new InvalidRequestError(field, REASON.keyInChain);
  const foreign = blocks.find((block) => block.label !== 'CERTIFICATE');
  if (foreign)
    throw new InvalidRequestError(
      field,
      foreign.label === AES_KEY_PEM_LABEL ? REASON.keyInChain : REASON.onlyCertificates,
    );
  if (blocks.length > MAX_CHAIN_CERTIFICATES)
    throw new InvalidRequestError(field, REASON.tooManyCertificates);

  const certificates = blocks.map((block, index) => {
    const unreadable = `Certificate ${index + 1} could not be parsed as X.509 (corrupted or truncated)`;
    if (!isSingleDerSequence(block.der)) throw new InvalidRequestError(field, unreadable);
    try {
      return new X509Certificate(block.der);
    } catch {
      throw new InvalidRequestError(field, unreadable);
    }
  });
  const seen = new Set<string>();
  certificates.forEach((certificate, index) => {
    const fingerprint = sha256Fingerprint(certificate);
    if (seen.has(fingerprint))
      throw new InvalidRequestError(field, `Certificate ${index + 1} appears more than once`);
    seen.add(fingerprint);
  });
  const brokenLink = firstBrokenLink(certificates);
  if (brokenLink !== -1) {
    if (firstBrokenLink([...certificates].reverse()) === -1)
      throw new InvalidRequestError(field, REASON.reversedChain);
    throw new InvalidRequestError(
      field,
      `Certificate ${brokenLink + 1} was not issued by certificate ${brokenLink + 2}; ` +
        'list the leaf certificate first, then each issuer in order',
    );
  }
  return {
    leaf: describeCertificate(certificates[0]!, field),
    chain: certificates.map((certificate) => armour('CERTIFICATE', certificate.raw)).join(''),
    count: certificates.length,
  };
}

/**
 * Checks that an uploaded private key belongs to the leaf certificate and returns the key's
 * normalised material. `privatePem` is validated like {@link parsePrivateKeyPem} (errors name
 * `field`); `leafPem` is trusted output of {@link parseCertificateChain} (its first
 * certificate is used, so its `chain` works as is).
 */
export function assertPrivateKeyMatchesCertificate(
  privatePem: string,
  leafPem: string,
  field = 'private_key',
): KeyMaterial {
  const material = parsePrivateKeyPem(privatePem, field);
  if (material.publicPem === null)
    throw new InvalidRequestError(field, REASON.symmetricWithCertificate);
  const certificate = new X509Certificate(leafPem);
  let matches = false;
  try {
    matches = certificate.checkPrivateKey(createPrivateKey(material.privatePem));
  } catch {
    // A key of another type than the certificate's cannot match it.
  }
  if (!matches) throw new InvalidRequestError(field, REASON.keyMismatch);
  return material;
}

// --- keys -------------------------------------------------------------------------------

type PrivateKeyFormat = 'pkcs8' | 'pkcs1' | 'sec1' | 'aes';

const PRIVATE_KEY_FORMATS = new Map<string, PrivateKeyFormat>([
  ['PRIVATE KEY', 'pkcs8'],
  ['RSA PRIVATE KEY', 'pkcs1'],
  ['EC PRIVATE KEY', 'sec1'],
  [AES_KEY_PEM_LABEL, 'aes'],
]);

/** Reason for a PEM block that is not a private key we read; labels are never echoed. */
function wrongBlockReason(label: string): string {
  switch (label) {
    case 'CERTIFICATE':
    case 'TRUSTED CERTIFICATE':
      return REASON.certificateNotKey;
    case 'PUBLIC KEY':
    case 'RSA PUBLIC KEY':
      return REASON.publicNotPrivate;
    case 'CERTIFICATE REQUEST':
    case 'NEW CERTIFICATE REQUEST':
      return REASON.csrNotKey;
    case 'OPENSSH PRIVATE KEY':
      return REASON.openSsh;
    default:
      // Other "... PRIVATE KEY" labels are key types we do not support (DSA, ...).
      return label.endsWith('PRIVATE KEY') ? REASON.keyType : REASON.noPrivateKey;
  }
}

/** The API algorithm of a parsed key, or a refusal naming what is supported. */
function classifyKey(key: KeyObject, field: string): KeyAlgorithm {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
      if ((details.publicExponent ?? 0n) < 65537n)
        throw new InvalidRequestError(field, REASON.rsaExponent);
      if (details.modulusLength === 2048) return 'rsa-2048';
      if (details.modulusLength === 4096) return 'rsa-4096';
      throw new InvalidRequestError(field, REASON.rsaSize);
    case 'ec':
      if (details.namedCurve === 'prime256v1' || details.namedCurve === 'P-256') return 'ec-p256';
      if (details.namedCurve === 'secp384r1' || details.namedCurve === 'P-384') return 'ec-p384';
      throw new InvalidRequestError(field, REASON.curve);
    case 'ed25519':
      return 'ed25519';
    default:
      throw new InvalidRequestError(field, REASON.keyType);
  }
}

function asymmetricMaterial(algorithm: KeyAlgorithm, privateKey: KeyObject): KeyMaterial {
  return {
    algorithm,
    privatePem: String(privateKey.export({ type: 'pkcs8', format: 'pem' })),
    publicPem: String(createPublicKey(privateKey).export({ type: 'spki', format: 'pem' })),
  };
}

function aesMaterial(rawKey: Uint8Array): KeyMaterial {
  return { algorithm: 'aes-256', privatePem: armour(AES_KEY_PEM_LABEL, rawKey), publicPem: null };
}

// DER contents (after tag and length) of the object identifiers the refusal reasons need.
const OID_RSA = '2a864886f70d010101';
const OID_EC_PUBLIC_KEY = '2a8648ce3d0201';
const OID_ED25519 = '2b6570';
const OID_P256 = '2a8648ce3d030107';
const OID_P384 = '2b81040022';

/**
 * Why a key the crypto library would not load was refused. The runtime's errors do not say
 * (BoringSSL reports an unknown curve, Ed448, RSA-PSS and DH all as "unsupported algorithm"),
 * so read the algorithm and curve identifiers from the DER structure.
 */
function explainUnparsableKey(der: Uint8Array, format: 'pkcs8' | 'pkcs1' | 'sec1'): string {
  const { algorithm, curve } = sniffKeyAlgorithm(der, format);
  if (algorithm === undefined) return REASON.corruptKey;
  if (algorithm === OID_EC_PUBLIC_KEY && curve !== OID_P256 && curve !== OID_P384)
    return REASON.curve;
  if (algorithm !== OID_RSA && algorithm !== OID_EC_PUBLIC_KEY && algorithm !== OID_ED25519)
    return REASON.keyType;
  return REASON.corruptKey;
}

/**
 * Algorithm and (for EC) curve identifiers of a private key structure, as hex of the OID
 * contents. `curve` is undefined for explicit curve parameters or when absent.
 */
function sniffKeyAlgorithm(
  der: Uint8Array,
  format: 'pkcs8' | 'pkcs1' | 'sec1',
): { algorithm?: string; curve?: string } {
  const top = readChildren(der, readTlv(der, 0));
  if (!top) return {};
  if (format === 'pkcs1') return { algorithm: OID_RSA };
  if (format === 'sec1') {
    // ECPrivateKey ::= SEQUENCE { version, privateKey OCTET STRING, [0] parameters, [1] publicKey }
    const parameters = top.find((child) => child.tag === 0xa0);
    const curve = parameters && readChildren(der, parameters)?.[0];
    return { algorithm: OID_EC_PUBLIC_KEY, curve: curve && oidHex(der, curve) };
  }
  // PrivateKeyInfo ::= SEQUENCE { version, AlgorithmIdentifier, privateKey OCTET STRING, ... }
  const identifier = top[1]?.tag === 0x30 ? readChildren(der, top[1]) : undefined;
  const [algorithm, parameters] = identifier ?? [];
  return {
    algorithm: algorithm && oidHex(der, algorithm),
    curve: parameters && oidHex(der, parameters),
  };
}

// --- certificates -----------------------------------------------------------------------

/** Index of the first certificate not issued by the one after it, or -1. */
function firstBrokenLink(certificates: X509Certificate[]): number {
  for (let index = 0; index + 1 < certificates.length; index++) {
    const child = certificates[index]!;
    const issuer = certificates[index + 1]!;
    let issued = false;
    try {
      issued = child.checkIssued(issuer) && child.verify(issuer.publicKey);
    } catch {
      // An issuer key the library cannot use for verification did not issue this certificate.
    }
    if (!issued) return index;
  }
  return -1;
}

function describeCertificate(certificate: X509Certificate, field: string): CertificateInfo {
  return {
    subject: certificate.subject.split('\n').join(', '),
    issuer: certificate.issuer.split('\n').join(', '),
    serial_number: certificate.serialNumber.toUpperCase(),
    not_before: rfc3339Seconds(certificate.validFromDate, field),
    not_after: rfc3339Seconds(certificate.validToDate, field),
    fingerprint_sha256: sha256Fingerprint(certificate),
  };
}

function sha256Fingerprint(certificate: X509Certificate): string {
  const hex = createHash('sha256').update(certificate.raw).digest('hex').toUpperCase();
  return hex.replace(/(..)(?!$)/g, '$1:');
}

function rfc3339Seconds(date: Date, field: string): string {
  if (Number.isNaN(date.getTime()))
    throw new InvalidRequestError(field, 'The certificate validity dates could not be read');
  return date.toISOString().slice(0, 19) + 'Z';
}
