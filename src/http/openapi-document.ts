/**
 * Turns the route schemas into the published OpenAPI document: what `@elysiajs/openapi`
 * generates, completed from what the server itself knows, so that client generators, contract
 * tests and gateways can trust it:
 * - every operation lists the errors it can answer, each with the one shared `Error` schema
 *   (derived here, centrally, from the operation's security, path, parameters, body and method,
 *   plus any status its own description promises), not written route by route;
 * - the objects of the API are named, reusable `components.schemas` (Project, Vault, ...);
 * - the headers the server reads (`Idempotency-Key`, `If-Match`) and sends (`X-Request-Id`,
 *   `X-RateLimit-*`, `Location`, `Link`, `Retry-After`, `WWW-Authenticate`) are declared;
 * - operation ids are camelCase (`listProjects`), timestamps carry `format: date-time`, and no
 *   validator-only keyword (`error`, `noValidate`, 3.0's `nullable`, TypeBox symbols) leaks.
 * The result is plain JSON: callers serialise it once (see docs.ts), so it cannot change with
 * the requests served afterwards.
 */
import { CloneType, type TSchema } from '@sinclair/typebox';
import type { AnyElysia } from 'elysia';
import { ERROR_CODES } from './error-funnel.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** What the document says beyond the routes: title, version, licence, extra components. */
export type DocumentBase = {
  info: JsonObject;
  servers: JsonObject[];
  securitySchemes: JsonObject;
  /** Paths left out (the documentation's own routes). */
  exclude: RegExp[];
};

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

/** The body of every error (docs/api.md §1). */
const ERROR_SCHEMA: JsonObject = {
  type: 'object',
  description: 'The body of every error answer.',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: {
          type: 'string',
          description: 'Stable machine-readable code.',
          enum: [...ERROR_CODES],
        },
        message: { type: 'string', description: 'Human-readable summary; never echoes input.' },
        details: {
          type: 'object',
          description: 'The field at fault and why, when one is.',
          properties: {
            field: { type: 'string' },
            reason: { type: 'string' },
          },
        },
      },
    },
  },
};

const TAG_DESCRIPTIONS: Record<string, string> = {
  'api-keys': 'API keys: roles, scopes, project and vault limits, expiry, revocation.',
  audit: 'The hash-chained audit log of every request.',
  events: 'Events, as delivered to webhooks.',
  health: 'Liveness and readiness, without authentication.',
  projects: 'Projects: groups of vaults.',
  resources: 'Secrets, keys and certificates, with their versions.',
  vaults: 'Vaults and the vault read API.',
  webhooks: 'Standard Webhooks endpoints and their deliveries.',
};

/** What each error status means, as the response description. */
const ERROR_DESCRIPTIONS: Record<string, string> = {
  '400': 'Invalid request: a parameter, header or body field is malformed (`details.field`).',
  '401': 'Missing, malformed, unknown, expired or revoked API key.',
  '403': 'The API key lacks the permission, scope, project or vault this needs.',
  '404': 'Not found, or outside the API key’s reach.',
  '409': 'Conflict with the current state (name taken, version moved on, Idempotency-Key reused).',
  '410': 'The resource has expired.',
  '413': 'The request body exceeds server.max_body_bytes.',
  '415': 'The request body is not `application/json`.',
  '429': 'Rate limited: retry after `Retry-After` seconds.',
  '503': 'Unavailable: the database is busy or the audit entry could not be written (fail closed).',
};

const header = (description: string, schema: JsonObject = { type: 'string' }): JsonObject => ({
  description,
  schema,
});

/** Response headers, shared through `components.headers`. */
const HEADERS: Record<string, JsonObject> = {
  'X-Request-Id': header('Id of this request, as in the access and audit logs.'),
  'X-RateLimit-Limit': header('Requests allowed per window for this key (or client address).', {
    type: 'integer',
  }),
  'X-RateLimit-Remaining': header('Requests left in the current window.', { type: 'integer' }),
  'X-RateLimit-Reset': header('Unix time (seconds) at which the window is full again.', {
    type: 'integer',
  }),
  'Retry-After': header('Seconds to wait before retrying.', { type: 'integer' }),
  'WWW-Authenticate': header('The authentication scheme: `Bearer realm="secryn"`.'),
  Location: header('Path of the created object.'),
  Link: header('RFC 8288 links to the `first`, `prev`, `next` and `last` pages.'),
  'Idempotent-Replayed': header('`true` when this is the stored answer of an earlier request.'),
};

/** Request headers, shared through `components.parameters`. */
const PARAMETERS: Record<string, JsonObject> = {
  IdempotencyKey: {
    name: 'Idempotency-Key',
    in: 'header',
    required: false,
    description:
      'Makes a retried POST safe: the same key with the same request replays the stored answer ' +
      'for 24 h; with a different request it is a 409.',
    schema: { type: 'string', minLength: 1, maxLength: 255 },
  },
  IfMatch: {
    name: 'If-Match',
    in: 'header',
    required: false,
    description: 'The version the change expects (`3`, `"3"` or `W/"3"`); 409 if it moved on.',
    schema: { type: 'string' },
  },
};

/**
 * Named objects, each taken from the one operation that returns it alone; every identical schema
 * anywhere else in the document then becomes a reference to it.
 */
const NAMED_SCHEMAS: Record<string, { path: string; status: string; property?: string }> = {
  Project: { path: 'get /v1/projects/{id}', status: '200' },
  Vault: { path: 'put /v1/vaults/{id}', status: '200' },
  Resource: { path: 'put /v1/resources/{id}', status: '200' },
  SecretVersion: { path: 'get /v1/resources/{id}/versions/{n}', status: '200' },
  ApiKey: { path: 'get /v1/api-keys/{id}', status: '200' },
  Webhook: { path: 'get /v1/webhooks/{id}', status: '200' },
  Delivery: { path: 'get /v1/webhooks/{id}/deliveries/{dlv_id}', status: '200' },
  Event: { path: 'get /v1/events/{id}', status: '200' },
  AuditEntry: { path: 'get /v1/audit-logs/{id}', status: '200' },
  Pagination: { path: 'get /v1/projects', status: '200', property: 'pagination' },
};

/** What the document is generated from: the routes (and models) of an app at one moment. */
export type RouteSnapshot = {
  getGlobalRoutes(): { hooks?: Record<string, unknown> }[];
  getGlobalDefinitions(): unknown;
};

/** The route hooks that hold request and response schemas (what compiling a route may change). */
const SCHEMA_HOOKS = [
  'body',
  'headers',
  'query',
  'params',
  'cookie',
  'response',
  'standaloneValidator',
] as const;

/**
 * The routes registered in `app` now, with private copies of their schemas: Bun's route table
 * compiles a route's validators on its first request through the listener, and that changes
 * the schema objects it was given (`additionalProperties: false` appears on responses, on the
 * shared module-level schemas too; test/openapi.test.ts "through the listener"). A document
 * made later from the snapshot is the one made now, whatever traffic came in between; the
 * copy costs start-up a few milliseconds, building the document costs tens.
 */
export function snapshotRoutes(app: AnyElysia): RouteSnapshot {
  // Elysia keeps these two protected; @elysiajs/openapi calls them the same way.
  const live = app as unknown as RouteSnapshot;
  const routes = live.getGlobalRoutes().map((route) => {
    const hooks: Record<string, unknown> = { ...route.hooks };
    for (const key of SCHEMA_HOOKS) {
      if (hooks[key] !== undefined) hooks[key] = CloneType(hooks[key] as TSchema);
    }
    return { ...route, hooks };
  });
  const definitions = live.getGlobalDefinitions();
  return { getGlobalRoutes: () => routes, getGlobalDefinitions: () => definitions };
}

/** Builds the document of every route of `app` (a snapshot taken once all are registered). */
export async function buildOpenApiDocument(
  app: RouteSnapshot,
  base: DocumentBase,
): Promise<JsonObject> {
  // Loaded on the first request for the document, not with the server.
  const { toOpenAPISchema } = await import('@elysiajs/openapi');
  const generated = toOpenAPISchema(app as unknown as AnyElysia, {
    paths: base.exclude,
  }) as unknown;
  // A JSON round trip drops TypeBox's symbol keys and shares nothing with the live schemas.
  const { paths } = JSON.parse(JSON.stringify(generated)) as { paths: JsonObject };
  const schemas: JsonObject = {};
  const tags = new Set<string>();
  for (const [path, item] of Object.entries(paths)) {
    for (const method of METHODS) {
      const operation = (item as JsonObject)[method] as JsonObject | undefined;
      if (!operation) continue;
      cleanSchemas(operation);
      completeOperation(method, path, operation);
      for (const tag of (operation.tags as string[] | undefined) ?? []) tags.add(tag);
    }
  }
  for (const [name, where] of Object.entries(NAMED_SCHEMAS)) {
    const [method, path] = where.path.split(' ') as [string, string];
    const operation = ((paths[path] as JsonObject | undefined)?.[method] ?? {}) as JsonObject;
    let schema: Json | undefined = jsonSchemaOf(operation, where.status);
    if (schema && where.property) {
      schema = ((schema as JsonObject).properties as JsonObject)[where.property];
    }
    if (schema && typeof schema === 'object') schemas[name] = structuredClone(schema);
  }
  const document: JsonObject = {
    openapi: '3.1.1',
    info: base.info,
    servers: base.servers,
    security: [{ bearerAuth: [] }],
    tags: [...tags].sort().map((name) => ({
      name,
      description: TAG_DESCRIPTIONS[name] ?? `The ${name} operations.`,
    })),
    paths: referenceNamedSchemas(paths, schemas) as JsonObject,
    components: {
      schemas: { ...schemas, Error: ERROR_SCHEMA },
      headers: HEADERS,
      parameters: PARAMETERS,
      securitySchemes: base.securitySchemes,
    },
  };
  return document;
}

function jsonSchemaOf(operation: JsonObject, status: string): JsonObject | undefined {
  const response = (operation.responses as JsonObject | undefined)?.[status] as
    | JsonObject
    | undefined;
  const content = response?.content as JsonObject | undefined;
  return (content?.['application/json'] as JsonObject | undefined)?.schema as
    | JsonObject
    | undefined;
}

/** Removes validator-only keywords and marks timestamps, in every schema of an operation. */
function cleanSchemas(value: Json, key?: string): void {
  if (Array.isArray(value)) {
    for (const item of value) cleanSchemas(item);
    return;
  }
  if (!value || typeof value !== 'object') return;
  // Elysia's per-field error messages and response switches are not JSON Schema.
  delete value.error;
  delete value.noValidate;
  // 3.1 says "may be null" with type: [..., "null"]; `nullable` is a 3.0 leftover.
  if ('nullable' in value) {
    const type = value.type;
    if (typeof type === 'string' && value.nullable === true) value.type = [type, 'null'];
    delete value.nullable;
  }
  // strictObject's `additionalProperties: Never` (a 400 naming the field) means "none allowed".
  const extra = value.additionalProperties;
  if (extra && typeof extra === 'object' && !Array.isArray(extra) && 'not' in extra) {
    value.additionalProperties = false;
  }
  if (key !== undefined && isTimestampName(key) && acceptsString(value.type)) {
    value.format = 'date-time';
  }
  for (const [childKey, child] of Object.entries(value)) {
    if (childKey === 'properties' && child && typeof child === 'object' && !Array.isArray(child)) {
      for (const [name, property] of Object.entries(child)) cleanSchemas(property, name);
    } else {
      cleanSchemas(child);
    }
  }
}

function isTimestampName(name: string): boolean {
  return /_at$/.test(name) || name === 'not_before' || name === 'not_after';
}

function acceptsString(type: Json | undefined): boolean {
  return type === 'string' || (Array.isArray(type) && type.includes('string'));
}

const STATUS_IN_TEXT = /\b(4\d\d|503)\b/g;

/** Adds the error answers, request headers and response headers an operation has. */
function completeOperation(method: string, path: string, operation: JsonObject): void {
  operation.operationId = operationId(method, path);
  const secured = !(Array.isArray(operation.security) && operation.security.length === 0);
  const parameters = (operation.parameters as JsonObject[] | undefined) ?? [];
  const hasBody = operation.requestBody !== undefined;
  const text = `${String(operation.summary ?? '')} ${String(operation.description ?? '')}`;

  if (hasBody) {
    // Only JSON bodies are accepted (415 otherwise): drop the form encodings Elysia adds.
    const body = operation.requestBody as JsonObject;
    const content = body.content as JsonObject;
    body.content = { 'application/json': content['application/json'] ?? {} };
  }
  const headerRefs: string[] = [];
  if (method === 'post' && secured) headerRefs.push('IdempotencyKey');
  if (text.includes('If-Match')) headerRefs.push('IfMatch');
  if (headerRefs.length) {
    operation.parameters = [
      ...parameters,
      ...headerRefs.map((name) => ({ $ref: `#/components/parameters/${name}` })),
    ];
  }

  const errors = new Set<string>(['503']);
  if (secured) for (const status of ['401', '403', '429']) errors.add(status);
  if (path.includes('{')) errors.add('404');
  if (hasBody || parameters.length > 0 || headerRefs.length > 0) errors.add('400');
  if (hasBody) for (const status of ['413', '415']) errors.add(status);
  if (method === 'post' && secured) errors.add('409');
  for (const match of text.matchAll(STATUS_IN_TEXT)) errors.add(match[1]!);

  const responses = (operation.responses ?? {}) as JsonObject;
  for (const status of [...errors].sort()) {
    if (responses[status] !== undefined) continue;
    responses[status] = {
      description: ERROR_DESCRIPTIONS[status] ?? `Error ${status}`,
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    };
  }
  for (const [status, value] of Object.entries(responses)) {
    const response = value as JsonObject;
    const headers: JsonObject = { ...((response.headers as JsonObject | undefined) ?? {}) };
    const add = (name: string) => (headers[name] = { $ref: `#/components/headers/${name}` });
    add('X-Request-Id');
    if (secured) {
      for (const name of ['X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset']) {
        add(name);
      }
    }
    if (status === '201') add('Location');
    if (status === '401') add('WWW-Authenticate');
    if (status === '429' || status === '503') add('Retry-After');
    if (method === 'post' && secured && status.startsWith('2')) add('Idempotent-Replayed');
    const schema = jsonSchemaOf(operation, status);
    if ((schema?.properties as JsonObject | undefined)?.pagination !== undefined) add('Link');
    response.headers = headers;
    if (response.description === `Response for status ${status}`) {
      response.description = status.startsWith('2') ? 'Success' : `Status ${status}`;
    }
  }
  operation.responses = sortedByKey(responses);
}

function sortedByKey(object: JsonObject): JsonObject {
  return Object.fromEntries(Object.entries(object).sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * `listProjects`, `getProject`, `createVault`, `downloadVaultKey`, `rotateWebhookSecret`: the
 * verb from the method (or the trailing action segment), then the nouns of the path, each
 * singular when an id follows it.
 */
export function operationId(method: string, path: string): string {
  const segments = path.split('/').filter((segment) => segment && segment !== 'v1');
  const last = segments.length - 1;
  const isParam = (index: number) => segments[index]?.startsWith('{') ?? false;
  // POST /v1/webhooks/{id}/test, GET .../{res_id}/download: the last segment is the verb.
  const action =
    last > 0 && isParam(last - 1) && (method === 'post' || segments[last] === 'download')
      ? segments[last]!.split('-')
      : [];
  const nouns: string[] = [];
  segments.forEach((segment, index) => {
    if (isParam(index) || (action.length && index === last)) return;
    const words = segment.split('-');
    const item = isParam(index + 1) || (method === 'post' && !action.length && index === last);
    if (item) words[words.length - 1] = singular(words[words.length - 1]!);
    nouns.push(...words);
  });
  let verb = action[0];
  if (verb === undefined) {
    const verbs: Record<string, string> = { post: 'create', put: 'update', delete: 'delete' };
    verb =
      method === 'get'
        ? isParam(last) || (segments.length === 1 && segments[0] === 'health')
          ? 'get'
          : 'list'
        : (verbs[method] ?? method);
  }
  return [verb, ...nouns, ...action.slice(1)]
    .map((word, index) => (index === 0 ? word : word.charAt(0).toUpperCase() + word.slice(1)))
    .join('');
}

function singular(word: string): string {
  if (word.endsWith('ies')) return `${word.slice(0, -3)}y`;
  if (word.endsWith('s') && !word.endsWith('ss')) return word.slice(0, -1);
  return word;
}

/**
 * Replaces every schema equal to a named one by a reference to it. Equality is structural (key
 * order ignored): each node gets an id from its sorted keys and its children's ids, interned,
 * so that equal subtrees share an id and each node is looked at once. Comparing canonical texts
 * of every subtree instead cost time quadratic in the depth, and most of `serve`'s start-up.
 */
function referenceNamedSchemas(value: Json, named: JsonObject): Json {
  const ids = new Map<string, number>();
  const intern = (text: string): number => {
    let id = ids.get(text);
    if (id === undefined) ids.set(text, (id = ids.size));
    return id;
  };
  /** The node's structural id and the node with named schemas replaced below it. */
  const visit = (node: Json): [number, Json] => {
    if (Array.isArray(node)) {
      const items = node.map(visit);
      return [intern(`[${items.map(([id]) => id).join(',')}]`), items.map(([, item]) => item)];
    }
    if (!node || typeof node !== 'object') return [intern(JSON.stringify(node)), node];
    const entries = Object.entries(node).map(([key, child]) => [key, visit(child)] as const);
    const shape = entries
      .map(([key, [id]]) => `${JSON.stringify(key)}:${id}`)
      .sort()
      .join(',');
    const id = intern(`{${shape}}`);
    const name = byId.get(id);
    if (name !== undefined) return [id, { $ref: `#/components/schemas/${name}` }];
    return [id, Object.fromEntries(entries.map(([key, [, child]]) => [key, child]))];
  };
  const byId = new Map<number, string>();
  for (const [name, schema] of Object.entries(named)) byId.set(visit(schema)[0], name);
  return visit(value)[1];
}
