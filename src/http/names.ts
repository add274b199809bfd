/**
 * Input rules for resource names and tags, shared by every resource route (as TypeBox schemas
 * for Elysia) and by code outside HTTP (as plain validators). Both forms use the same regular
 * expression source, so they cannot disagree.
 *
 * Decisions:
 * - "Characters" are Unicode code points: a name of 255 emoji is allowed (510 UTF-16 units).
 *   The length bound therefore lives in the pattern (a surrogate pair counts once), not in
 *   `maxLength`, which TypeBox counts in UTF-16 units.
 * - "Printable" refuses what breaks terminals, logs, JSON consumers or lets one name pass for
 *   another: C0/C1 controls and DEL, U+2028/U+2029, bidirectional controls (U+061C,
 *   U+200E/F, U+202A–U+202E, U+2066–U+2069, the "Trojan Source" set), invisible U+200B and
 *   U+2060–U+2064, U+FEFF, U+FFF9–U+FFFB, the noncharacters U+FFFE/U+FFFF and unpaired
 *   surrogates. ZWJ/ZWNJ (U+200C/U+200D) stay allowed: scripts and emoji sequences need them.
 * - No leading or trailing whitespace (any Unicode space): "db" and "db " must not be two
 *   different names. Inner spaces are fine.
 * - Names refuse "/" (names appear in URL paths: `/v1/vaults/:id/secrets/:name`).
 * - Tags refuse "," (so a comma-separated tag list is never ambiguous) but allow "/" and "="
 *   (`team/payments`, `env=prod`). Tags compare exactly (case-sensitive); duplicates are
 *   dropped by {@link normalizeTags}, keeping the first occurrence's position.
 * - Names and tags are stored and compared in Unicode NFC: "café" typed as e + combining acute
 *   (macOS input, some editors) is the same name as the precomposed "café", not a second,
 *   identical-looking one. The schemas normalise after validating; the rare input that NFC
 *   lengthens past the limit (a few scripts' composition exclusions) is refused like any other
 *   over-long name.
 *
 * The patterns carry no flags (TypeBox compiles `new RegExp(pattern)`), so they are written
 * over UTF-16 code units.
 */
import { t } from 'elysia';
import { InvalidRequestError } from '../errors.ts';

/** Longest resource name, in code points. */
export const RESOURCE_NAME_MAX_LENGTH = 255;
/** Longest tag, in code points. */
export const TAG_MAX_LENGTH = 64;
/** Most tags one resource may carry. */
export const MAX_TAGS = 32;

/** Code units that are never allowed in a name or tag (lone surrogates handled separately). */
const REFUSED_UNITS =
  '\\x00-\\x1F\\x7F-\\x9F\\u061C\\u200B\\u200E\\u200F\\u2028-\\u202E\\u2060-\\u2064' +
  '\\u2066-\\u2069\\uFEFF\\uFFF9-\\uFFFB\\uFFFE\\uFFFF\\uD800-\\uDFFF';

/**
 * Anchored, flag-free pattern: 1..max code points, none of `extra` or the refused set,
 * no whitespace at either end. Linear time on any input (the alternatives are disjoint).
 */
function printablePattern(maxLength: number, extra: string): string {
  const codePoint = `(?:[^${REFUSED_UNITS}${extra}]|[\\uD800-\\uDBFF][\\uDC00-\\uDFFF])`;
  return `^(?!\\s)(?=[\\s\\S]*\\S$)${codePoint}{1,${maxLength}}$`;
}

/** Regular expression source (no flags) of a valid resource name. */
export const RESOURCE_NAME_PATTERN = printablePattern(RESOURCE_NAME_MAX_LENGTH, '/');
/** Regular expression source (no flags) of a valid tag. */
export const TAG_PATTERN = printablePattern(TAG_MAX_LENGTH, ',');

/** Safe reason for an invalid name (never contains the input). */
export const RESOURCE_NAME_RULE =
  'Must be 1–255 printable characters without "/" and without leading or trailing spaces';
/** Safe reason for an invalid tag. */
export const TAG_RULE =
  'Must be 1–64 printable characters without "," and without leading or trailing spaces';
/** Safe reason for a tag list that is not an array of at most {@link MAX_TAGS} tags. */
export const TAGS_RULE = 'Must be a list of at most 32 tags';

const resourceNameRegExp = new RegExp(RESOURCE_NAME_PATTERN);
const tagRegExp = new RegExp(TAG_PATTERN);

/**
 * `value` (already valid) in NFC, or `InvalidRequestError(field, rule)` when NFC makes it
 * invalid. Thrown from a schema's decode step, the error reaches the error funnel as it is.
 */
function toNfc(value: string, pattern: RegExp, field: string, rule: string): string {
  const normalized = value.normalize('NFC');
  if (normalized !== value && !pattern.test(normalized)) {
    throw new InvalidRequestError(field, rule);
  }
  return normalized;
}

/**
 * TypeBox schema of a resource name, decoded to NFC. Its `error` string is what the HTTP error
 * funnel reports as `details.reason`. Every field it is used for is called `name`.
 */
export const ResourceName = t
  .Transform(
    t.String({
      minLength: 1,
      pattern: RESOURCE_NAME_PATTERN,
      description:
        '1–255 printable Unicode characters; no "/", no leading or trailing whitespace. ' +
        'Stored in Unicode NFC.',
      error: RESOURCE_NAME_RULE,
    }),
  )
  .Decode((value) => toNfc(value, resourceNameRegExp, 'name', RESOURCE_NAME_RULE))
  .Encode((value) => value);

const TagString = t.String({
  minLength: 1,
  pattern: TAG_PATTERN,
  description:
    '1–64 printable Unicode characters; no ",", no leading or trailing whitespace. ' +
    'Stored in Unicode NFC.',
  error: TAG_RULE,
});

/** TypeBox schema of the `tag` filter of a list, decoded to NFC. */
export const Tag = t
  .Transform(TagString)
  .Decode((value) => toNfc(value, tagRegExp, 'tag', TAG_RULE))
  .Encode((value) => value);

/**
 * TypeBox schema of a tag list (at most {@link MAX_TAGS} entries). It neither normalises nor
 * de-duplicates: pass the validated list through {@link normalizeTags} before storing it, which
 * does both and names a tag that NFC makes too long by its index (`tags.3`).
 */
export const Tags = t.Array(TagString, { maxItems: MAX_TAGS, error: TAGS_RULE });

/** Whether `value` is a valid resource name. */
export function isResourceName(value: unknown): value is string {
  return typeof value === 'string' && resourceNameRegExp.test(value);
}

/** Whether `value` is a valid tag. */
export function isTag(value: unknown): value is string {
  return typeof value === 'string' && tagRegExp.test(value);
}

/**
 * `value` in NFC if it is a valid resource name (before and after normalising); otherwise
 * throws `InvalidRequestError(field)`.
 */
export function assertResourceName(value: unknown, field = 'name'): string {
  if (!isResourceName(value)) throw new InvalidRequestError(field, RESOURCE_NAME_RULE);
  return toNfc(value, resourceNameRegExp, field, RESOURCE_NAME_RULE);
}

/**
 * Validates a tag list and returns it in NFC without duplicates, in first-seen order. Throws
 * `InvalidRequestError` naming `field` (or `field.<index>` for a bad tag) otherwise. The
 * count limit applies to the list as given, as in the {@link Tags} schema.
 */
export function normalizeTags(value: unknown, field = 'tags'): string[] {
  if (!Array.isArray(value) || value.length > MAX_TAGS)
    throw new InvalidRequestError(field, TAGS_RULE);
  const tags = new Set<string>();
  value.forEach((tag: unknown, index) => {
    if (!isTag(tag)) throw new InvalidRequestError(`${field}.${index}`, TAG_RULE);
    tags.add(toNfc(tag, tagRegExp, `${field}.${index}`, TAG_RULE));
  });
  return [...tags];
}
