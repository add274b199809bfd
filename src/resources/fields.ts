/**
 * Field schemas and small helpers shared by projects, vaults and resources: descriptions,
 * timestamps, ids, booleans in query strings, and the rendering of stored times.
 */
import type { TLiteral, TUnion } from '@sinclair/typebox';
import { t, type TSchema } from 'elysia';
import { InvalidRequestError } from '../errors.ts';
import { PROJECT_ID_PATTERN, VAULT_ID_PATTERN } from '../keys/schemas.ts';

export { strictObject } from '../keys/schemas.ts';

/** Longest description, in UTF-16 code units. */
export const DESCRIPTION_MAX_LENGTH = 1000;

/** A free-text description: newlines and tabs allowed, other control characters not. */
export const Description = t.String({
  maxLength: DESCRIPTION_MAX_LENGTH,
  pattern: '^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f]*$',
  error: `Must be at most ${DESCRIPTION_MAX_LENGTH} characters without control characters`,
});

/** An RFC 3339 timestamp with a zone, e.g. `2030-01-15T10:30:00Z`. */
export const Timestamp = t.String({
  pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})$',
  error: 'Must be an RFC 3339 timestamp such as 2030-01-15T10:30:00Z',
  examples: ['2030-01-15T10:30:00Z'],
});

/** A project id in a body or query. */
export const ProjectId = t.String({
  pattern: PROJECT_ID_PATTERN.source,
  error: 'Must be a project id (prj_...)',
});

/** A vault id in a body or query. */
export const VaultId = t.String({
  pattern: VAULT_ID_PATTERN.source,
  error: 'Must be a vault id (vlt_...)',
});

/** A path id: anything short; an unknown id is simply not found. */
export const IdParam = t.String({ maxLength: 64, error: 'Must be an id' });

/**
 * A query parameter that takes one of `values`. A pattern rather than `t.UnionEnum`: Elysia
 * fills an absent optional UnionEnum query parameter with its first member.
 */
export function queryEnum(
  values: readonly string[],
  error = `Must be one of: ${values.join(', ')}`,
) {
  return t.String({ pattern: `^(${values.join('|')})$`, error, examples: [values[0]] });
}

/**
 * One of `values`, as a union of literals. Not `t.UnionEnum`: Elysia gives that a default (its
 * first member), which it then fills into a body that omits the field instead of refusing it.
 */
export function oneOf<const T extends readonly [string, ...string[]]>(
  values: T,
  error: string,
): TUnion<Literals<T>> {
  const literals = values.map((value) => t.Literal(value)) as unknown as Literals<T>;
  return t.Union(literals, { error }) as TUnion<Literals<T>>;
}

/** The literal schemas of a tuple of strings, as a tuple (what `t.Union` wants). */
type Literals<T extends readonly string[]> = { -readonly [K in keyof T]: TLiteral<T[K]> };

/** `true`/`false` in a query string. */
export const QueryBoolean = queryEnum(['true', 'false'], 'Must be true or false');

/** `{id, deleted: true}`: the answer of every delete (API.md §1). */
export const Deleted = t.Object({ id: t.String(), deleted: t.Literal(true) });

/**
 * Epoch milliseconds of a timestamp validated by {@link Timestamp}.
 * @throws InvalidRequestError naming `field` for an impossible date (e.g. February 30).
 */
export function parseTimestamp(text: string, field: string): number {
  const ms = Date.parse(text);
  const date = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})/.exec(text);
  if (!Number.isFinite(ms) || !date || !isRealDateTime(date)) {
    throw new InvalidRequestError(field, 'Must be a valid date and time');
  }
  return ms;
}

function isRealDateTime(parts: RegExpExecArray): boolean {
  const [year, month, day, hour, minute, second] = parts.slice(1).map(Number) as number[];
  if (month! < 1 || month! > 12 || hour! > 23 || minute! > 59 || second! > 60) return false;
  const daysInMonth = new Date(Date.UTC(year!, month!, 0)).getUTCDate();
  return day! >= 1 && day! <= daysInMonth;
}

/**
 * A response schema that is documented (OpenAPI) and still cleaned of undeclared fields, but not
 * re-checked at run time. For lists and vault reads only: Elysia's response check costs about
 * 2 µs per item (≈ 100 µs for a page of 50, more than the queries), and these bodies are built
 * by typed functions (`typeof Schema.static`) from database rows, so the check finds nothing.
 */
export function documentedResponse<T extends TSchema>(schema: T): T {
  return { ...schema, noValidate: true };
}
