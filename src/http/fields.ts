/**
 * Field schemas and small helpers shared by projects, vaults and resources: descriptions,
 * timestamps, ids, booleans in query strings, and the rendering of stored times.
 */
import { t, type TSchema } from 'elysia';
import { InvalidRequestError } from '../errors.ts';
export {
  oneOf,
  parseTimestamp,
  ProjectId,
  QueryBoolean,
  queryEnum,
  strictObject,
  Timestamp,
  VaultId,
} from './schemas.ts';

/** Longest description, in UTF-16 code units. */
export const DESCRIPTION_MAX_LENGTH = 1000;

/** A free-text description: newlines and tabs allowed, other control characters (C0, DEL, C1) not. */
export const Description = t.String({
  maxLength: DESCRIPTION_MAX_LENGTH,
  pattern: '^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$',
  error: `Must be at most ${DESCRIPTION_MAX_LENGTH} characters without control characters`,
});

/** A path id: anything short; an unknown id is simply not found. */
export const IdParam = t.String({ maxLength: 64, error: 'Must be an id' });

/** `{id, deleted: true}`: the answer of every delete (docs/api.md §1). */
export const Deleted = t.Object({ id: t.String(), deleted: t.Literal(true) });

/**
 * A response schema that is documented (OpenAPI) and still cleaned of undeclared fields, but not
 * re-checked at run time. For lists and vault reads only: Elysia's response check costs about
 * 2 µs per item (≈ 100 µs for a page of 50, more than the queries), and these bodies are built
 * by typed functions (`typeof Schema.static`) from database rows, so the check finds nothing.
 */
export function documentedResponse<T extends TSchema>(schema: T): T {
  return { ...schema, noValidate: true };
}

/**
 * A documented body answered as it was built: as a `Response`, which Elysia sends without its
 * response cleaner (exact-mirror copies every object of the body, ~10 µs for a page of 50 or a
 * 50-secret vault read, and is not switched off by `additionalProperties: true` under AOT
 * compilation). For routes whose schema is a {@link documentedResponse} only, and bodies whose
 * every object is written field by field by a typed `to*Object` function (never a spread row),
 * so the cleaner had nothing undeclared to remove.
 */
export function builtJson<T>(body: T): Response {
  return jsonText(JSON.stringify(body));
}

/**
 * Bodies at least this long leave as a one-chunk stream (see {@link jsonText}): Bun's cork
 * buffer is 16 KiB, and the status line and headers share it.
 */
const STREAMED_BODY_CHARS = 12 * 1024;

/**
 * A JSON body already serialised, as a `Response`. Every Secryn response is written after an
 * `await` (its audit entry must be durable first), and Bun 1.4 writes such a response
 * uncorked when it does not fit its 16 KiB cork buffer: one `send()` per fragment of the status
 * line and of each header (oven-sh/bun#41341, open). A 15 KB list page took 44 syscalls and
 * ~300 µs of CPU more than an 11 KB one (bench/README.md). A stream body is written through
 * the corked path (one send for the head, one for the body, chunked transfer encoding), so
 * large bodies take it; small ones keep a plain body and its Content-Length.
 */
export function jsonText(text: string): Response {
  const headers = { 'content-type': 'application/json;charset=utf-8' };
  if (text.length < STREAMED_BODY_CHARS) return new Response(text, { headers });
  const body = new ReadableStream<string>({
    start(controller) {
      controller.enqueue(text);
      controller.close();
    },
  });
  return new Response(body, { headers });
}
