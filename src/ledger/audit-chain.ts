/**
 * The audit hash chain: how an entry is encoded and hashed. Entries from the integrity record's
 * `audit_keyed_from` on are keyed (HMAC-SHA256 under the audit subkey of the integrity root key),
 * so that whoever edits the file cannot recompute the chain; earlier entries, written by a
 * version before keyed chains, keep their plain SHA-256. Which rule applies is decided by the
 * position alone (never by anything stored with the entry), so a keyed entry cannot be
 * relabelled as a plain one.
 */
import { hmacHex } from '../crypto/integrity.ts';

/** `prev_hash` of the very first entry of an instance. */
export const GENESIS_HASH = '0'.repeat(64);

/** Version tag of the plain (unkeyed, pre-integrity) entries. */
export const CHAIN_FORMAT = 'secryn.audit.v1';

/** Version tag of keyed entries: a plain and a keyed entry never share an encoding. */
export const KEYED_CHAIN_FORMAT = 'secryn.audit.v2';

/** What hashing an entry needs: the audit key and the first position it applies to. */
export type ChainKey = { auditChain: Uint8Array; auditKeyedFrom: number };

/** Every stored field of an entry, as the chain sees it. */
export type ChainFields = {
  seq: number;
  id: string;
  at: number;
  actorType: string;
  actorId: string | null;
  actorName: string | null;
  action: string;
  targetType: string | null;
  targetId: string | null;
  outcome: string;
  status: number | null;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  prevHash: string;
  /** JSON object text of extra facts (e.g. a summary's count); null on ordinary entries. */
  details: string | null;
};

/**
 * The canonical encoding of an entry: a JSON array of the format tag and every field in a fixed
 * order. JSON of strings, integers and null is deterministic, escapes every separator, and is
 * trivial to reproduce in any language (see docs/audit.md), so the chain can be checked without
 * Secryn.
 */
export function canonicalEncoding(entry: ChainFields, format: string = CHAIN_FORMAT): string {
  const fields: (string | number | null)[] = [
    format,
    entry.seq,
    entry.id,
    entry.at,
    entry.actorType,
    entry.actorId,
    entry.actorName,
    entry.action,
    entry.targetType,
    entry.targetId,
    entry.outcome,
    entry.status,
    entry.ip,
    entry.userAgent,
    entry.requestId,
    entry.prevHash,
  ];
  // Appended only when present, so every entry without details encodes exactly as before.
  if (entry.details != null) fields.push(entry.details);
  return JSON.stringify(fields);
}

/**
 * A plain entry's hash: lowercase hex SHA-256 of its canonical encoding (which includes
 * `prev_hash`). Only for entries before `audit_keyed_from`.
 */
export function entryHash(entry: ChainFields): string {
  // Bun's one-shot SHA-256: half the cost of node:crypto's createHash on this hot path.
  return Bun.SHA256.hash(canonicalEncoding(entry), 'hex');
}

/** A keyed entry's hash: lowercase hex HMAC-SHA256 of its `secryn.audit.v2` encoding. */
export function keyedEntryHash(entry: ChainFields, key: Uint8Array): string {
  return hmacHex(key, canonicalEncoding(entry, KEYED_CHAIN_FORMAT));
}

/** The hash an entry must have at its position: keyed from `auditKeyedFrom` on, plain before. */
export function chainHash(entry: ChainFields, key: ChainKey): string {
  return entry.seq >= key.auditKeyedFrom ? keyedEntryHash(entry, key.auditChain) : entryHash(entry);
}
