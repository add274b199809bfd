/**
 * Turns validated request bodies into what the store writes: the rules that depend on the
 * resource type, the value size limit (413 before anything is written), times, tags, and the
 * key and certificate material. Every refusal names the offending field and never echoes it.
 */
import { ConflictError, InvalidRequestError, PayloadTooLargeError } from '../errors.ts';
import {
  assertPrivateKeyMatchesCertificate,
  generateKeyMaterial,
  parseCertificateChain,
  parsePrivateKeyPem,
  type KeyAlgorithm,
} from './material.ts';
import { normalizeTags } from '../http/names.ts';
import { parseTimestamp } from '../http/fields.ts';
import {
  DEFAULT_CONTENT_TYPE,
  type CreateResourceInput,
  type UpdateResourceInput,
} from './schemas.ts';
import type { ResourceRow, ResourceType } from '../db/schema/resources.ts';

/** Limits from the configuration. */
export type ValueLimits = { maxValueBytes: number };

/** Metadata of a key or certificate, as stored in its resource row. */
export type MaterialColumns = {
  algorithm: KeyAlgorithm | null;
  publicKey: string | null;
  subject: string | null;
  issuer: string | null;
  serialNumber: string | null;
  notBefore: number | null;
  notAfter: number | null;
  fingerprintSha256: string | null;
  hasPrivateKey: boolean | null;
};

/** A new resource, ready to be inserted (its vault already checked by the caller). */
export type PreparedResource = MaterialColumns & {
  type: ResourceType;
  name: string;
  description: string | null;
  tags: string[];
  enabled: boolean;
  activatesAt: number | null;
  expiresAt: number | null;
  contentType: string | null;
  /** The plaintext of version 1. */
  value: string;
};

const NO_MATERIAL: MaterialColumns = {
  algorithm: null,
  publicKey: null,
  subject: null,
  issuer: null,
  serialNumber: null,
  notBefore: null,
  notAfter: null,
  fingerprintSha256: null,
  hasPrivateKey: null,
};

/** @throws PayloadTooLargeError (413, naming the field) when `text` exceeds the limit. */
export function assertValueSize(text: string, field: string, limits: ValueLimits): void {
  // Cheap bound first: a UTF-16 string of n units is at most 3n UTF-8 bytes.
  if (text.length * 3 <= limits.maxValueBytes) return;
  if (Buffer.byteLength(text, 'utf8') > limits.maxValueBytes) {
    throw new PayloadTooLargeError(limits.maxValueBytes, field);
  }
}

/** @throws InvalidRequestError when `text` has unpaired surrogates (it would not survive UTF-8). */
function assertWellFormed(text: string, field: string): void {
  if (!text.isWellFormed()) {
    throw new InvalidRequestError(field, 'Must be valid Unicode text (no unpaired surrogates)');
  }
}

function refuse(field: string, reason: string): never {
  throw new InvalidRequestError(field, reason);
}

/** Epoch ms of an optional, nullable timestamp field. */
function readTime(text: string | null | undefined, field: string): number | null | undefined {
  if (text === undefined) return undefined;
  if (text === null) return null;
  return parseTimestamp(text, field);
}

/** @throws InvalidRequestError (field `expires_at`) unless expiry comes after activation. */
function assertWindow(activatesAt: number | null, expiresAt: number | null): void {
  if (activatesAt !== null && expiresAt !== null && expiresAt <= activatesAt) {
    refuse('expires_at', 'Must be later than activates_at');
  }
}

/**
 * Checks a create body against its type's rules, enforces the value size limit and builds the
 * key or certificate material (generating a key may take a second or more for RSA-4096; it runs
 * off the event loop). Nothing is written here.
 */
export async function prepareNewResource(
  body: CreateResourceInput,
  limits: ValueLimits,
): Promise<PreparedResource> {
  const { type } = body;
  // Sizes first: an oversize value is a 413 whatever else is wrong with it.
  if (body.value !== undefined) assertValueSize(body.value, 'value', limits);
  if (body.private_key !== undefined) assertValueSize(body.private_key, 'private_key', limits);
  if (body.generate !== undefined && type !== 'key')
    refuse('generate', 'Only keys can be generated');
  if (body.private_key !== undefined && type !== 'certificate') {
    refuse(
      'private_key',
      type === 'key'
        ? 'Send the private key of a key resource as value'
        : 'Only certificates take a private_key',
    );
  }
  if (body.content_type !== undefined && type !== 'secret') {
    refuse('content_type', 'Only secrets have a content type');
  }
  const activatesAt = readTime(body.activates_at, 'activates_at') ?? null;
  let expiresAt = readTime(body.expires_at, 'expires_at') ?? null;
  const common = {
    type,
    name: body.name,
    description: body.description ?? null,
    tags: normalizeTags(body.tags ?? []),
    enabled: body.enabled ?? true,
    activatesAt,
  };
  switch (type) {
    case 'secret': {
      if (body.value === undefined) refuse('value', 'Missing required field');
      assertWellFormed(body.value, 'value');
      assertWindow(activatesAt, expiresAt);
      return {
        ...common,
        ...NO_MATERIAL,
        expiresAt,
        contentType: body.content_type ?? DEFAULT_CONTENT_TYPE,
        value: body.value,
      };
    }
    case 'key': {
      if (body.generate !== undefined && body.value !== undefined) {
        refuse('value', 'Send either generate or value, not both');
      }
      if (body.generate === undefined && body.value === undefined) {
        refuse('value', 'Send the private key PEM as value, or generate: {algorithm}');
      }
      assertWindow(activatesAt, expiresAt);
      const material =
        body.generate !== undefined
          ? await generateKeyMaterial(body.generate.algorithm, 'generate.algorithm')
          : parsePrivateKeyPem(body.value!, 'value');
      return {
        ...common,
        ...NO_MATERIAL,
        expiresAt,
        contentType: null,
        algorithm: material.algorithm,
        publicKey: material.publicPem,
        value: material.privatePem,
      };
    }
    case 'certificate': {
      if (body.value === undefined) refuse('value', 'Missing required field (the PEM chain)');
      if (body.expires_at !== undefined) {
        refuse('expires_at', "A certificate expires at its leaf's not_after");
      }
      const chain = parseCertificateChain(body.value, 'value');
      const privatePem =
        body.private_key === undefined
          ? null
          : assertPrivateKeyMatchesCertificate(body.private_key, chain.chain, 'private_key')
              .privatePem;
      const { leaf } = chain;
      expiresAt = Date.parse(leaf.not_after);
      assertWindow(activatesAt, expiresAt);
      return {
        ...common,
        ...NO_MATERIAL,
        expiresAt,
        contentType: null,
        subject: leaf.subject,
        issuer: leaf.issuer,
        serialNumber: leaf.serial_number,
        notBefore: Date.parse(leaf.not_before),
        notAfter: expiresAt,
        fingerprintSha256: leaf.fingerprint_sha256,
        hasPrivateKey: privatePem !== null,
        value: privatePem === null ? chain.chain : chain.chain + privatePem,
      };
    }
  }
}

/** The metadata changes of a `PUT`; only fields that were sent. */
export type MetadataChanges = {
  name?: string;
  description?: string | null;
  tags?: string[];
  enabled?: boolean;
  activatesAt?: number | null;
  expiresAt?: number | null;
  contentType?: string;
};

/** A `PUT` checked against the resource's type: metadata changes and, for secrets, a value. */
export type PreparedUpdate = { metadata: MetadataChanges; value?: string };

/**
 * Checks an update body against the resource it changes. Keys and certificates are immutable:
 * a `value` is a 409 with a reason. The size limit is enforced here (413), before anything is
 * written; the activation window is checked against the merged result.
 */
export function prepareUpdate(
  current: Pick<ResourceRow, 'type' | 'activatesAt' | 'expiresAt'>,
  body: UpdateResourceInput,
  limits: ValueLimits,
): PreparedUpdate {
  if (body.value !== undefined) {
    if (current.type !== 'secret') {
      throw new ConflictError(
        current.type === 'key'
          ? 'Keys are immutable: create a new key resource to change the key'
          : 'Certificates are immutable: upload the new certificate as a new resource',
        'value',
      );
    }
    assertValueSize(body.value, 'value', limits);
    assertWellFormed(body.value, 'value');
  }
  if (body.content_type !== undefined && current.type !== 'secret') {
    refuse('content_type', 'Only secrets have a content type');
  }
  if (body.expires_at !== undefined && current.type === 'certificate') {
    refuse('expires_at', "A certificate expires at its leaf's not_after");
  }
  const metadata: MetadataChanges = {};
  if (body.name !== undefined) metadata.name = body.name;
  if (body.description !== undefined) metadata.description = body.description;
  if (body.tags !== undefined) metadata.tags = normalizeTags(body.tags);
  if (body.enabled !== undefined) metadata.enabled = body.enabled;
  if (body.content_type !== undefined) metadata.contentType = body.content_type;
  const activatesAt = readTime(body.activates_at, 'activates_at');
  const expiresAt = readTime(body.expires_at, 'expires_at');
  if (activatesAt !== undefined) metadata.activatesAt = activatesAt;
  if (expiresAt !== undefined) metadata.expiresAt = expiresAt;
  assertWindow(
    activatesAt === undefined ? current.activatesAt : activatesAt,
    expiresAt === undefined ? current.expiresAt : expiresAt,
  );
  return body.value === undefined ? { metadata } : { metadata, value: body.value };
}

const IF_MATCH = /^\s*(?:W\/)?"?([1-9][0-9]{0,8})"?\s*$/;

/**
 * The version an `If-Match` header expects (`3`, `"3"` or `W/"3"`); undefined without the
 * header or for `*` (any current version).
 * @throws InvalidRequestError (field `If-Match`) for anything else.
 */
export function parseIfMatch(header: string | null): number | undefined {
  if (header === null || header.trim() === '*') return undefined;
  const match = IF_MATCH.exec(header);
  if (!match) throw new InvalidRequestError('If-Match', 'Must be a version number, e.g. 3');
  return Number(match[1]);
}
