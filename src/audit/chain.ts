/** `prev_hash` of the very first entry of an instance. */
export const GENESIS_HASH = '0'.repeat(64);

/** Version tag hashed into every entry, so that a future encoding cannot collide with this one. */
export const CHAIN_FORMAT = 'secryn.audit.v1';

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
export function canonicalEncoding(entry: ChainFields): string {
  const fields: (string | number | null)[] = [
    CHAIN_FORMAT,
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
  if (entry.details !== null) fields.push(entry.details);
  return JSON.stringify(fields);
}

/** An entry's hash: lowercase hex SHA-256 of its canonical encoding (which includes `prev_hash`). */
export function entryHash(entry: ChainFields): string {
  // Bun's one-shot SHA-256: half the cost of node:crypto's createHash on this hot path.
  return Bun.SHA256.hash(canonicalEncoding(entry), 'hex');
}
