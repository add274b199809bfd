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
