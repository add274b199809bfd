/**
 * TypeBox building blocks shared by every feature's request schemas, so that the same field is
 * validated (and explained in the 400) the same way everywhere.
 */
import {
  Type,
  type IntegerOptions,
  type TInteger,
  type TLiteral,
  type TProperties,
  type TUnion,
} from '@sinclair/typebox';
import { t } from 'elysia';
import { InvalidRequestError } from '../errors.ts';

/**
 * An object schema that rejects unknown fields with a 400 naming the field. (Elysia's
 * `normalize` silently strips them under `additionalProperties: false`; a `Never` schema for
 * additional properties is checked instead of stripped.)
 */
export function strictObject<T extends TProperties>(properties: T, description?: string) {
  return t.Object(properties, {
    additionalProperties: t.Never({ error: 'Unknown field' }),
    ...(description ? { description } : {}),
  });
}

const TYPEID_SUFFIX = '[0-7][0-9a-hjkmnp-tv-z]{25}';

/** A project id: `prj_` + a TypeID suffix. */
export const PROJECT_ID_PATTERN = new RegExp(`^prj_${TYPEID_SUFFIX}$`);
/** A vault id: `vlt_` + a TypeID suffix. */
export const VAULT_ID_PATTERN = new RegExp(`^vlt_${TYPEID_SUFFIX}$`);

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

const TIME_TEXT =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:[Zz]|[+-](\d{2}):(\d{2})))?$/;

/**
 * Epoch ms of an RFC 3339 timestamp (`2030-01-15T10:30:00Z`, offsets and fractions allowed) or,
 * with `dateOnly`, also of a `YYYY-MM-DD` date (midnight UTC); undefined for anything else,
 * including impossible calendar values (February 30, hour 24, minute 60), which `Date.parse`
 * would silently roll over into another day.
 */
export function timestampMs(
  text: string,
  options: { dateOnly?: boolean } = {},
): number | undefined {
  const parts = TIME_TEXT.exec(text);
  if (!parts) return undefined;
  const [year, month, day, hour, minute, second, offsetHour, offsetMinute] = parts
    .slice(1)
    .map((part) => (part === undefined ? 0 : Number(part))) as number[];
  if (parts[4] === undefined && !options.dateOnly) return undefined;
  const daysInMonth = new Date(Date.UTC(year!, month!, 0)).getUTCDate();
  if (month! < 1 || month! > 12 || day! < 1 || day! > daysInMonth) return undefined;
  if (hour! > 23 || minute! > 59 || second! > 59 || offsetHour! > 23 || offsetMinute! > 59) {
    return undefined;
  }
  const ms = Date.parse(parts[4] === undefined ? `${text}T00:00:00Z` : text.replace(' ', 'T'));
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * Epoch ms of a timestamp field already shaped by {@link Timestamp}.
 * @throws InvalidRequestError naming `field` for an impossible date (e.g. February 30).
 */
export function parseTimestamp(text: string, field: string): number {
  const ms = timestampMs(text);
  if (ms === undefined) throw new InvalidRequestError(field, 'Must be a valid date and time');
  return ms;
}

/**
 * The latest time the API stores and shows: {@link Timestamp} has a four-digit year, and
 * `toRfc3339` renders years up to 9999 (beyond, `toISOString` switches to `+010000-…`).
 */
export const LATEST_TIMESTAMP_MS = Date.UTC(9999, 11, 31, 23, 59, 59);

/** An RFC 3339 timestamp with a zone, e.g. `2030-01-15T10:30:00Z`. */
export const Timestamp = t.String({
  pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})$',
  error: 'Must be an RFC 3339 timestamp such as 2030-01-15T10:30:00Z',
  examples: ['2030-01-15T10:30:00Z'],
});

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

/**
 * An integer field of a response. TypeBox's own `Integer`, not Elysia's `t.Integer` (a
 * string-or-number transform made for query strings): one transform anywhere in a response
 * schema makes Elysia run TypeBox's `Encode` on every response of the route instead of its
 * compiled `Check`, a few microseconds per request on the hottest reads.
 */
export function ResponseInteger(options?: IntegerOptions): TInteger {
  return Type.Integer(options);
}
