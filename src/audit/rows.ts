/** An audit entry as stored (row and column list) and as the API returns it (schema). */
import { t, type TSchema } from 'elysia';
import { toRfc3339 } from '../db/columns.ts';
import { ResponseInteger } from '../http/schemas.ts';
import type { AuditActor } from '../http/request-meta.ts';
import type { ChainFields } from '../ledger/audit-chain.ts';

/** A stored entry with every column, named as the chain code names them. */
export type AuditRow = ChainFields & { hash: string };

/** The columns of `audit_log` aliased to {@link AuditRow}'s names, for raw prepared queries. */
export const AUDIT_ROW_COLUMNS = `seq, id, at, actor_type AS actorType, actor_id AS actorId,
  actor_name AS actorName, action, target_type AS targetType, target_id AS targetId, outcome,
  status, ip, user_agent AS userAgent, request_id AS requestId, details, prev_hash AS prevHash, hash`;

const Nullable = <T extends TSchema>(schema: T) => t.Union([schema, t.Null()]);

/** An entry as the API returns it (docs/api.md §7), field for field. */
export const AuditEntrySchema = t.Object({
  id: t.String({ description: 'aud_…' }),
  at: t.String({ description: 'RFC 3339 UTC' }),
  actor: t.Object({
    type: t.Union([
      t.Literal('api_key'),
      t.Literal('anonymous'),
      t.Literal('local_user'),
      t.Literal('system'),
    ]),
    id: Nullable(t.String()),
    name: Nullable(t.String()),
  }),
  action: t.String({ description: 'e.g. resource.reveal' }),
  target: t.Object({ type: Nullable(t.String()), id: Nullable(t.String()) }),
  outcome: t.Union([t.Literal('success'), t.Literal('denied'), t.Literal('error')]),
  status: Nullable(ResponseInteger()),
  ip: Nullable(t.String()),
  user_agent: Nullable(t.String()),
  request_id: Nullable(t.String()),
  /**
   * Only on entries that carry more than the fixed fields: a `request.rejected_summary` holds
   * its count, first/last request ids and times, and distinct user agents here (docs/audit.md).
   */
  details: t.Optional(t.Record(t.String(), t.Unknown())),
  hash: t.String({ description: 'SHA-256 (hex) over the entry and prev_hash' }),
  prev_hash: t.String(),
});

export type AuditEntryView = typeof AuditEntrySchema.static;

/**
 * Renders a stored entry in the API shape. `target` is always an object (both fields null when
 * the action had no target), so clients can read `target.id` without a null check.
 */
export function toAuditEntryView(row: AuditRow): AuditEntryView {
  return {
    id: row.id,
    at: toRfc3339(row.at),
    actor: { type: row.actorType as AuditActor['type'], id: row.actorId, name: row.actorName },
    action: row.action,
    target: { type: row.targetType, id: row.targetId },
    outcome: row.outcome as AuditEntryView['outcome'],
    status: row.status,
    ip: row.ip,
    user_agent: row.userAgent,
    request_id: row.requestId,
    ...(row.details === null ? {} : { details: parseDetails(row.details) }),
    hash: row.hash,
    prev_hash: row.prevHash,
  };
}

/** The stored details text as an object; a row edited into non-JSON still renders. */
function parseDetails(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      return value as Record<string, unknown>;
    }
  } catch {
    // Falls through: verification reports the edit; the listing still shows what is stored.
  }
  return { unparsable: text.slice(0, 256) };
}
