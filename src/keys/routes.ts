/**
 * `/v1/api-keys` (API.md §5). The permission of each route is in the permission table; here the
 * handlers only apply the no-escalation rules (`grants.ts`) and hide keys outside the caller's
 * reach. Revoked keys stay listed, with `revoked_at`; revoking twice is a no-op success.
 * Every change is committed together with its audit entry before the response is sent.
 */
import { Elysia, t } from 'elysia';
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
import { listResponse, listSchema, paginationQuery, readPage } from '../http/pagination.ts';
import { requestMeta } from '../http/request-meta.ts';
import { parseTimestamp, strictObject } from '../http/schemas.ts';
import type { Instance } from '../instance.ts';
import {
  ApiKeyParams,
  ApiKeySchema,
  CreateApiKeyBody,
  CreatedApiKeySchema,
  DeletedSchema,
  UpdateApiKeyBody,
} from './schemas.ts';
import {
  checkExpiry,
  checkKeyReferences,
  checkNewApiKey,
  checkScopes,
  findApiKey,
  emitApiKeyEvent,
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
import type { ApiKeyRow } from '../db/schema/keys.ts';
import { respondCreated } from '../http/created.ts';

const detail = (summary: string, description: string) => ({
  summary,
  description,
  tags: ['api-keys'],
});

/** The `/v1/api-keys` routes; `lastUsed` lets reads show uses not yet flushed. */
export function apiKeyRoutes(instance: Instance, lastUsed: Pick<LastUsedTracker, 'pending'>) {
  const { db, clock } = instance;
  const resolveVault = vaultResolver(db);
  const present = (row: ApiKeyRow) => toApiKeyObject(row, lastUsed.pending(row.id));

  /** The key, if it exists and the caller may manage it; else a (hidden) 404. */
  const manageableKey = (request: Request, id: string): ApiKeyRow => {
    const row = findApiKey(db, id);
    if (!row) throw new NotFoundError('API key');
    assertKeyManageable(request, keyGrantOf(row), resolveVault);
    return row;
  };

  return new Elysia({ name: 'api-keys' })
    .get(
      '/v1/api-keys',
      ({ query, request, set }) => {
        const viewer = principalOf(request);
        const page = readPage(query);
        const visible = listApiKeys(db).filter((row) =>
          canManageKey(viewer, keyGrantOf(row), resolveVault),
        );
        const data = visible.slice(page.offset, page.offset + page.limit).map(present);
        return listResponse(request, set, page, visible.length, data);
      },
      {
        query: strictObject(paginationQuery),
        response: { 200: listSchema(ApiKeySchema) },
        detail: detail(
          'List API keys',
          'Newest first, revoked keys included. Non-admin keys see only non-admin keys within ' +
            'their own projects and vaults.',
        ),
      },
    )
    .post(
      '/v1/api-keys',
      async ({ body, request, set }) => {
        const creator = principalOf(request);
        const now = clock.now();
        const key: NewApiKey = {
          name: body.name,
          role: body.role,
          projectIds: body.project_ids ?? [],
          vaultIds: body.vault_ids ?? [],
          scopes: body.scopes ?? null,
          expiresAt:
            body.expires_at === undefined || body.expires_at === null
              ? null
              : parseTimestamp(body.expires_at, 'expires_at'),
        };
        checkNewApiKey(key, now);
        assertCanGrant(request, key, resolveVault);
        checkKeyReferences(db, key);
        const id = newApiKeyId();
        const location = `/v1/api-keys/${id}`;
        requestMeta(request).target = { type: 'api_key', id };
        // With an Idempotency-Key, the (sealed) replayable response commits with the key, so
        // a retry after a crash cannot mint a second one.
        const created = await commitChange(instance, request, 201, () => {
          const { row, token } = insertApiKey(db, id, key, `api_key:${creator.keyId}`, now);
          emitApiKeyEvent(db, 'api_key.created', row, now);
          return { body: { ...present(row), token }, location };
        });
        return respondCreated(set, location, created);
      },
      {
        body: CreateApiKeyBody,
        parse: 'json',
        response: { 201: CreatedApiKeySchema },
        detail: detail(
          'Create an API key',
          'Returns the token once. The new key cannot exceed the caller: its role, scopes, ' +
            'projects, vaults and expiry must lie within the calling key’s own (403 otherwise).',
        ),
      },
    )
    .get('/v1/api-keys/:id', ({ params, request }) => present(manageableKey(request, params.id)), {
      params: ApiKeyParams,
      response: { 200: ApiKeySchema },
      detail: detail('Get an API key', 'Never includes the token.'),
    })
    .put(
      '/v1/api-keys/:id',
      async ({ params, body, request }) => {
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
        if (body.expires_at !== undefined) {
          const expiresAt =
            body.expires_at === null ? null : parseTimestamp(body.expires_at, 'expires_at');
          checkExpiry(expiresAt, clock.now());
          changes.expiresAt = expiresAt;
        }
        assertCanEdit(editor, keyGrantOf(row), changes, resolveVault);
        const updated = await commitChange(instance, request, 200, () => ({
          body: Object.keys(changes).length === 0 ? row : updateApiKey(db, row.id, changes),
        }));
        return present(updated);
      },
      {
        params: ApiKeyParams,
        body: UpdateApiKeyBody,
        parse: 'json',
        response: { 200: ApiKeySchema },
        detail: detail(
          'Update an API key',
          'Changes name, scopes or expiry. The caller must be able to create the key both as ' +
            'it is and as it will be (its role, scopes, projects, vaults and expiry within the ' +
            'caller’s own; 403 otherwise). A revoked key cannot be changed (409).',
        ),
      },
    )
    .delete(
      '/v1/api-keys/:id',
      async ({ params, request }) => {
        const row = manageableKey(request, params.id);
        await commitChange(instance, request, 200, () => {
          const now = clock.now();
          const revoked = revokeApiKey(db, row.id, now);
          // Revoking twice is allowed (idempotent) but is one event.
          if (row.revokedAt === null && revoked)
            emitApiKeyEvent(db, 'api_key.revoked', revoked, now);
          return { body: null };
        });
        return { id: row.id, deleted: true as const };
      },
      {
        params: ApiKeyParams,
        response: { 200: DeletedSchema },
        detail: detail(
          'Revoke an API key',
          'Takes effect on the key’s next request. The key stays listed with revoked_at.',
        ),
      },
    );
}
