/** Reads request bodies: size limits, content type, bounded JSON parsing. */
import { InvalidRequestError, PayloadTooLargeError, AppError } from '../errors.ts';

/** Refuses a request whose declared Content-Length exceeds the limit, before reading it. */
export function checkDeclaredLength(request: Request, maxBytes: number): void {
  const declared = request.headers.get('content-length');
  if (declared !== null && Number(declared) > maxBytes) throw new PayloadTooLargeError(maxBytes);
}

/**
 * Reads a JSON request body with a hard byte limit (also for chunked bodies without a
 * Content-Length) and parses it. Only `application/json` (optionally `+json` and with
 * parameters) is accepted. Errors never quote the body.
 * @returns undefined for an empty body, so that schema validation reports the missing fields.
 */
export async function readJsonBody(request: Request, maxBytes: number): Promise<unknown> {
  const contentType = request.headers.get('content-type');
  const bytes = await readLimited(request, maxBytes);
  if (bytes.byteLength === 0) return undefined;
  if (!contentType || !isJsonMediaType(contentType)) {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'Unsupported media type', {
      reason: 'Send the body as application/json',
    });
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new InvalidRequestError(
      undefined,
      'The body is not valid UTF-8',
      'Malformed request body',
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidRequestError(
      undefined,
      'The body is not valid JSON',
      'Malformed request body',
    );
  }
  // Every Secryn body is an object. Elysia's normalisation turned `42`, `true` or `[]` into an
  // empty object (a PUT then answered 200 having changed nothing) and `"x"` into {"0": "x"}.
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidRequestError('body', 'Must be a JSON object');
  }
  if (nestedDeeperThan(value, MAX_JSON_DEPTH)) {
    throw new InvalidRequestError(
      undefined,
      `The body nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels`,
      'Malformed request body',
    );
  }
  return value;
}

/**
 * Deepest nesting of arrays and objects a body may have. Secryn's bodies nest a few levels;
 * validating and reporting on a value thousands of levels deep overflows the stack in the
 * schema checker (a 10 KB body of brackets was enough).
 */
export const MAX_JSON_DEPTH = 32;

/** Whether `value` nests arrays/objects more than `limit` levels; stops at the first such path. */
function nestedDeeperThan(value: unknown, limit: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (limit === 0) return true;
  for (const child of Array.isArray(value) ? value : Object.values(value)) {
    if (nestedDeeperThan(child, limit - 1)) return true;
  }
  return false;
}

/** True for `application/json` and `application/*+json`, with or without parameters. */
export function isJsonMediaType(contentType: string): boolean {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

async function readLimited(request: Request, maxBytes: number): Promise<Uint8Array> {
  if (!request.body) return new Uint8Array(0);
  // A body with a valid Content-Length within the limit (checkDeclaredLength refused a larger
  // one) is read whole by Bun, which holds the connection to exactly that many bytes: the
  // stream reader below cost ~15 % of a secret update's CPU in its promise machinery
  // (bench/resources.ts profile). Chunked bodies, with no length to trust, keep the running
  // limit.
  const declared = request.headers.get('content-length');
  if (declared !== null && /^\d{1,15}$/.test(declared) && Number(declared) <= maxBytes) {
    const bytes = new Uint8Array(await request.arrayBuffer());
    if (bytes.byteLength > maxBytes) throw new PayloadTooLargeError(maxBytes);
    return bytes;
  }
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw new PayloadTooLargeError(maxBytes);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
