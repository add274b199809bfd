/**
 * What a feature's route module is made of. A feature has `routes.ts` (its Elysia instance: one
 * line per route, like a table of contents), `handlers.ts` (named handlers, typed from the
 * route's TypeBox schemas with `RouteContext`) and `spec.ts` (each route's schemas and OpenAPI
 * text, with `docsFor`).
 */
import type { Static, TSchema } from '@sinclair/typebox';

/** The response headers and status a handler may set (Elysia's `set`). */
export type ResponseSet = { status?: number | string; headers: Record<string, unknown> };

/** The schemas a route declares; each names the static type of one part of its context. */
type RouteSchemas = { params?: TSchema; query?: TSchema; body?: TSchema };

type StaticOf<S extends TSchema | undefined> = S extends TSchema ? Static<S> : unknown;

/**
 * The part of Elysia's context a named handler reads, typed from the same TypeBox schemas the
 * route validates with (so a handler cannot drift from its route's schemas):
 * `RouteContext<{ params: typeof ProjectParams }>`.
 */
export type RouteContext<S extends RouteSchemas = Record<never, never>> = {
  request: Request;
  set: ResponseSet;
  params: StaticOf<S['params']>;
  query: StaticOf<S['query']>;
  body: StaticOf<S['body']>;
};

/** The OpenAPI `detail` of a route under one tag: `docs('List projects', 'Newest first.')`. */
export function docsFor(tag: string) {
  return (summary: string, description: string) => ({ summary, description, tags: [tag] });
}
