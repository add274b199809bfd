/** The named handlers of the `/v1/api-keys` routes (listed in ./routes.ts). */
import type { LastUsedTracker } from '../access/authenticate.ts';
import {
  assertCanEdit,
  assertCanGrant,
  assertKeyManageable,
  canManageKey,
} from '../access/grants.ts';
import { principalOf } from '../access/principal.ts';
import { commitChange } from '../changes/index.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import { respondCreated } from '../http/created.ts';
import { listResponse, readPage } from '../http/pagination.ts';
import { requestMeta } from '../http/request-meta.ts';
import type { RouteContext } from '../http/route.ts';
import { parseTimestamp } from '../http/schemas.ts';
import type { Instance } from '../instance.ts';
import type { ApiKeyParams, CreateApiKeyBody, UpdateApiKeyBody } from './schemas.ts';
import {
  checkExpiry,
  checkKeyReferences,
  checkNewApiKey,
  checkScopes,
  emitApiKeyEvent,
  findApiKey,
  insertApiKey,
  keyGrantOf,
  listApiKeys,
  newApiKeyId,
  revokeApiKey,
  toApiKeyObject,
  updateApiKey,
  vaultResolver,
  type ApiKeyChanges,
  type NewApiKey,
} from './service.ts';
import type { ApiKeyListQuery } from './spec.ts';
import type { ApiKeyRow } from '../db/schema/keys.ts';

type Params = { params: typeof ApiKeyParams };

/** The handlers, over one instance; `lastUsed` lets reads show uses not yet flushed. */
export function apiKeyHandlers(instance: Instance, lastUsed: Pick<LastUsedTracker, 'pending'>) {
  const { db, clock } = instance;
  const resolveVault = vaultResolver(db);
  return { list, create, get, update, revoke };

  function list({ query, request, set }: RouteContext<{ query: typeof ApiKeyListQuery }>) {
    const viewer = principalOf(request);
    const page = readPage(query);
    const visible = listApiKeys(db).filter((row) =>
      canManageKey(viewer, keyGrantOf(row), resolveVault),
    );
    const data = visible.slice(page.offset, page.offset + page.limit).map(present);
    return listResponse(request, set, page, visible.length, data);
  }

  async function create({ body, request, set }: RouteContext<{ body: typeof CreateApiKeyBody }>) {
    const creator = principalOf(request);
    const now = clock.now();
    const key: NewApiKey = {
      name: body.name,
      role: body.role,
      projectIds: body.project_ids ?? [],
      vaultIds: body.vault_ids ?? [],
      scopes: body.scopes ?? null,
      expiresAt: optionalTimestamp(body.expires_at) ?? null,
    };
    checkNewApiKey(key, now);
    assertCanGrant(request, key, resolveVault);
    checkKeyReferences(db, key);
    const id = newApiKeyId();
    const location = `/v1/api-keys/${id}`;
    requestMeta(request).target = { type: 'api_key', id };
    // With an Idempotency-Key, the (sealed) replayable response commits with the key, so a
    // retry after a crash cannot mint a second one.
    const created = await commitChange(instance, request, 201, () => {
      const { row, token } = insertApiKey(db, id, key, `api_key:${creator.keyId}`, now);
      emitApiKeyEvent(db, 'api_key.created', row, now);
      return { body: { ...present(row), token }, location };
    });
    return respondCreated(set, location, created);
  }

  function get({ params, request }: RouteContext<Params>) {
    return present(manageableKey(request, params.id));
  }

  async function update({
    params,
    body,
    request,
  }: RouteContext<Params & { body: typeof UpdateApiKeyBody }>) {
    const editor = principalOf(request);
    const row = manageableKey(request, params.id);
    // Checked first: an empty body on a revoked key used to reach the database as an
    // UPDATE without columns (500).
    if (row.revokedAt !== null) throw new ConflictError('The API key is revoked');
    const changes: ApiKeyChanges = {};
    if (body.name !== undefined) changes.name = body.name;
    if (body.scopes !== undefined) {
      checkScopes(row.role, body.scopes);
      changes.scopes = body.scopes;
    }
    const expiresAt = optionalTimestamp(body.expires_at);
    if (expiresAt !== undefined) {
      checkExpiry(expiresAt, clock.now());
      changes.expiresAt = expiresAt;
    }
    assertCanEdit(editor, keyGrantOf(row), changes, resolveVault);
    const updated = await commitChange(instance, request, 200, () => ({
      body: Object.keys(changes).length === 0 ? row : updateApiKey(db, row.id, changes),
    }));
    return present(updated);
  }

  async function revoke({ params, request }: RouteContext<Params>) {
    const row = manageableKey(request, params.id);
    await commitChange(instance, request, 200, () => {
      const now = clock.now();
      const revoked = revokeApiKey(db, row.id, now);
      // Revoking twice is allowed (idempotent) but is one event.
      if (row.revokedAt === null && revoked) emitApiKeyEvent(db, 'api_key.revoked', revoked, now);
      return { body: null };
    });
    return { id: row.id, deleted: true as const };
  }

  function present(row: ApiKeyRow) {
    return toApiKeyObject(row, lastUsed.pending(row.id));
  }

  /** The key, if it exists and the caller may manage it; else a (hidden) 404. */
  function manageableKey(request: Request, id: string): ApiKeyRow {
    const row = findApiKey(db, id);
    if (!row) throw new NotFoundError('API key');
    assertKeyManageable(request, keyGrantOf(row), resolveVault);
    return row;
  }
}

/** `expires_at` as epoch ms: undefined when absent, null when explicitly null (never expires). */
function optionalTimestamp(value: string | null | undefined): number | null | undefined {
  if (value === undefined || value === null) return value;
  return parseTimestamp(value, 'expires_at');
}
