/**
 * Lists (docs/api.md §1): `?page=` (≥ 1, default 1) and `?limit=` (1..100, default 50), answered as
 * `{data, pagination: {total, page, limit}}` with an RFC 8288 `Link` header (`next`/`prev`).
 * Every list endpoint uses these so that they all behave alike:
 *
 * ```ts
 * .get('/v1/things', ({ query, request, set }) => {
 *   const page = readPage(query);
 *   const { rows, total } = service.list(page.offset, page.limit);
 *   return listResponse(request, set, page, total, rows.map(toObject));
 * }, { query: t.Object({ ...paginationQuery, name: t.Optional(t.String()) }),
 *      response: { 200: listSchema(Thing) } })
 * ```
 */
import { t, type TSchema } from 'elysia';
import { jsonText } from './fields.ts';
import { ResponseInteger } from './schemas.ts';

/** Page size when `limit` is absent. */
export const DEFAULT_LIMIT = 50;
/** Largest page size a client may ask for. */
export const MAX_LIMIT = 100;

/**
 * The query fields of every list, to spread into its query schema. They are strings with a
 * pattern (rather than coerced numbers) so that a bad value names its field in the 400.
 */
export const paginationQuery = {
  page: t.Optional(
    t.String({
      pattern: '^[1-9][0-9]{0,8}$',
      error: 'Must be an integer ≥ 1',
      description: 'Page number, from 1 (default 1)',
      examples: ['1'],
    }),
  ),
  limit: t.Optional(
    t.String({
      pattern: '^(100|[1-9][0-9]?)$',
      error: `Must be an integer from 1 to ${MAX_LIMIT}`,
      description: `Items per page, 1 to ${MAX_LIMIT} (default ${DEFAULT_LIMIT})`,
      examples: [String(DEFAULT_LIMIT)],
    }),
  ),
};

/** A validated page request. */
export type PageRequest = { page: number; limit: number; offset: number };

/** The page asked for by a query validated against {@link paginationQuery}. */
export function readPage(query: { page?: string; limit?: string }): PageRequest {
  const page = query.page === undefined ? 1 : Number(query.page);
  const limit = query.limit === undefined ? DEFAULT_LIMIT : Number(query.limit);
  return { page, limit, offset: (page - 1) * limit };
}

/** The `pagination` object of a list body. */
export const PaginationSchema = t.Object({
  total: ResponseInteger({ minimum: 0, description: 'Items in the whole list' }),
  page: ResponseInteger({ minimum: 1 }),
  limit: ResponseInteger({ minimum: 1, maximum: MAX_LIMIT }),
});

/** The response schema of a list of `item`. */
export function listSchema<T extends TSchema>(item: T) {
  return t.Object({ data: t.Array(item), pagination: PaginationSchema });
}

/** A list body. */
export type ListBody<T> = {
  data: T[];
  pagination: { total: number; page: number; limit: number };
};

/**
 * Builds the list body and sets the `Link` header (relative URLs keeping the other query
 * parameters): `next` when items follow this page, `prev` when the page is past the first.
 */
export function listResponse<T>(
  request: Request,
  set: { headers: Record<string, unknown> },
  page: PageRequest,
  total: number,
  data: T[],
  linkParams: Record<string, string> = {},
): ListBody<T> {
  const link = linkHeader(request.url, page, total, linkParams);
  if (link) set.headers['link'] = link;
  return { data, pagination: { total, page: page.page, limit: page.limit } };
}

/**
 * {@link listResponse} for data already serialised as a JSON array: the same bytes
 * `Response.json(listResponse(…))` sends, for routes whose schema is a documented response (see
 * fields.ts `builtJson`).
 */
export function listResponseJson(
  request: Request,
  set: { headers: Record<string, unknown> },
  page: PageRequest,
  total: number,
  dataJson: string,
): Response {
  const link = linkHeader(request.url, page, total);
  if (link) set.headers['link'] = link;
  const pagination = JSON.stringify({ total, page: page.page, limit: page.limit });
  return jsonText(`{"data":${dataJson},"pagination":${pagination}}`);
}

/**
 * The RFC 8288 `Link` header value for a page, or undefined when there is no neighbour.
 * `linkParams` are set on both links (e.g. the snapshot a walk through the pages keeps).
 */
export function linkHeader(
  url: string,
  page: PageRequest,
  total: number,
  linkParams: Record<string, string> = {},
): string | undefined {
  const parsed = new URL(url);
  const at = (n: number) => {
    const params = new URLSearchParams(parsed.search);
    for (const [name, value] of Object.entries(linkParams)) params.set(name, value);
    params.set('page', String(n));
    params.set('limit', String(page.limit));
    return `<${parsed.pathname}?${params.toString()}>`;
  };
  const links: string[] = [];
  const lastPage = Math.max(1, Math.ceil(total / page.limit));
  if (page.page * page.limit < total) links.push(`${at(page.page + 1)}; rel="next"`);
  if (page.page > 1) links.push(`${at(Math.min(page.page - 1, lastPage))}; rel="prev"`);
  return links.length > 0 ? links.join(', ') : undefined;
}
