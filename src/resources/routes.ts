/**
 * `/v1/resources` (API.md §4): secrets, keys and certificates, their versions, soft delete and
 * restore. Permissions come from the route table; the handlers check *where* (the resource's
 * vault, `visibility.ts`) and *when* a value may be handed out (`reveal.ts`). Every change
 * commits with its audit entry, event and idempotent response (`commit.ts`).
 */
import { Elysia } from 'elysia';
import { principalOf } from '../access/principal.ts';
import { assertVaultVisible } from '../access/visibility.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import { listResponse, listSchema, readPage } from '../http/pagination.ts';
import { requestMeta } from '../http/request-meta.ts';
import type { Instance } from '../instance.ts';
import { findVault, vaultRefOf } from '../vaults/service.ts';
import type { EventType } from '../events/types.ts';
import { commitChange, type ChangeResult } from '../changes/index.ts';
import { Deleted, documentedResponse } from './fields.ts';
import type { ResourceRow, ResourceType } from '../db/schema/resources.ts';
import { parseIfMatch, prepareNewResource, prepareUpdate } from './input.ts';
import { toResourceObject, toVersionObject } from './objects.ts';
import {
  assertNotExpired,
  assertResourceVisible,
  canReveal,
  markReveal,
  revealsValue,
  visibleLiveResource,
} from './reveal.ts';
import {
  CreateResourceBody,
  ResourceListQuery,
  ResourceParams,
  ResourceSchema,
  type ResourceObject,
  UpdateResourceBody,
  VersionListQuery,
  VersionParams,
  VersionSchema,
} from './schemas.ts';
import {
  findResource,
  findVersion,
  insertResource,
  listResources,
  listVersions,
  newResourceId,
  openCurrentValue,
  openValue,
  restoreVersion,
  softDeleteResource,
  undeleteResource,
  updateResource,
} from './store.ts';
import { respondCreated } from '../http/created.ts';

const DAY_MS = 86_400_000;

const detail = (summary: string, description: string) => ({
  summary,
  description,
  tags: ['resources'],
});

/** The `/v1/resources` routes. */
/** A change's result: the resource's API object as the body, and the same object as its event. */
function resourceChange(type: EventType, row: ResourceRow): ChangeResult<ResourceObject> {
  const object = toResourceObject(row);
  return { body: object, event: { type, projectId: row.projectId, object } };
}

export function resourceRoutes(instance: Instance) {
  const { db, sqlite, clock, keyring, config } = instance;
  const limits = { maxValueBytes: config.resources.max_value_bytes };
  const retentionMs = config.storage.deleted_retention_days * DAY_MS;

  return new Elysia({ name: 'resources' })
    .get(
      '/v1/resources',
      ({ query, request, set }) => {
        const page = readPage(query);
        const { rows, total } = listResources(
          sqlite,
          principalOf(request),
          {
            vaultId: query.vault_id,
            projectId: query.project_id,
            type: query.type as ResourceType | undefined, // validated by the query schema
            name: query.name,
            tag: query.tag,
            enabled: query.enabled === undefined ? undefined : query.enabled === 'true',
            deletedSince: query.deleted === 'true' ? clock.now() - retentionMs : undefined,
          },
          page,
        );
        return listResponse(
          request,
          set,
          page,
          total,
          rows.map((row) => toResourceObject(row)),
        );
      },
      {
        query: ResourceListQuery,
        response: { 200: documentedResponse(listSchema(ResourceSchema)) },
        detail: detail(
          'List resources',
          'Newest first, metadata only (never a value), within the vaults the key reaches. ' +
            'Filters: vault_id, project_id, type, name (exact), tag (one tag, exact), enabled. ' +
            '`deleted=true` lists soft-deleted resources that can still be restored.',
        ),
      },
    )
    .post(
      '/v1/resources',
      async ({ body, request, set }) => {
        const key = principalOf(request);
        const vault = findVault(db, body.vault_id);
        if (!vault) throw new NotFoundError('Vault');
        assertVaultVisible(request, vaultRefOf(vault));
        const prepared = await prepareNewResource(body, limits);
        const id = newResourceId();
        requestMeta(request).target = { type: 'resource', id };
        const location = `/v1/resources/${id}`;
        const object = await commitChange(instance, request, 201, () => {
          if (!findVault(db, vault.id)) throw new NotFoundError('Vault');
          const row = insertResource(
            db,
            keyring,
            {
              ...prepared,
              id,
              vaultId: vault.id,
              projectId: vault.projectId,
              createdBy: key.keyId,
            },
            clock.now(),
          );
          return { ...resourceChange('resource.created', row), location };
        });
        return respondCreated(set, location, object);
      },
      {
        body: CreateResourceBody,
        // Declares the JSON body to the OpenAPI document; the app's own parser still reads it.
        parse: 'json',
        response: { 201: ResourceSchema },
        detail: detail(
          'Create a resource',
          'secret: `value` (+ `content_type`). key: `generate: {algorithm}` or a private key ' +
            'PEM as `value`. certificate: the PEM chain as `value` (leaf first) and optionally ' +
            'its `private_key`. A value larger than resources.max_value_bytes is a 413. ' +
            'Names are unique per vault and type (409). The response never carries the value. ' +
            'Accepts an Idempotency-Key header.',
        ),
      },
    )
    .get(
      '/v1/resources/:id',
      ({ params, request }) => {
        const record = visibleLiveResource(sqlite, request, params.id);
        const now = clock.now();
        assertNotExpired(record, now);
        if (!revealsValue(request, record, now)) return toResourceObject(record);
        markReveal(request);
        return toResourceObject(record, openCurrentValue(keyring, record));
      },
      {
        params: ResourceParams,
        response: { 200: ResourceSchema },
        detail: detail(
          'Get a resource',
          'Adds `value` for keys with resources:reveal while the resource is enabled and ' +
            'active. An expired resource answers 410.',
        ),
      },
    )
    .put(
      '/v1/resources/:id',
      async ({ params, body, request }) => {
        const expected = parseIfMatch(request.headers.get('if-match'));
        const record = visibleLiveResource(sqlite, request, params.id);
        const changes = prepareUpdate(record, body, limits);
        const actor = principalOf(request).keyId;
        // A writer who may not reveal must not learn whether its value equals the current one.
        const blind = !canReveal(request);
        return commitChange(instance, request, 200, () => {
          const { row, changed } = updateResource(
            db,
            keyring,
            record.id,
            changes,
            expected,
            actor,
            clock.now(),
            blind,
          );
          return changed
            ? resourceChange('resource.updated', row)
            : { body: toResourceObject(row) };
        });
      },
      {
        params: ResourceParams,
        body: UpdateResourceBody,
        // Declares the JSON body to the OpenAPI document; the app's own parser still reads it.
        parse: 'json',
        response: { 200: ResourceSchema },
        detail: detail(
          'Update a resource',
          'Metadata changes never make a version; a new secret value does (for a key without ' +
            'resources:reveal, any `value` does, so the answer never depends on the current ' +
            'value). `If-Match: <version>` ' +
            'makes the update fail with 409 if the secret moved on. Keys and certificates are ' +
            'immutable: a `value` is a 409.',
        ),
      },
    )
    .delete(
      '/v1/resources/:id',
      async ({ params, request }) => {
        const record = visibleLiveResource(sqlite, request, params.id);
        const actor = principalOf(request).keyId;
        return commitChange(instance, request, 200, () => {
          const row = softDeleteResource(db, record.id, actor, clock.now());
          return {
            body: { id: row.id, deleted: true as const },
            event: {
              type: 'resource.deleted',
              projectId: row.projectId,
              object: toResourceObject(row),
            },
          };
        });
      },
      {
        params: ResourceParams,
        response: { 200: Deleted },
        detail: detail(
          'Delete a resource',
          'Soft delete: gone from reads and lists, kept (encrypted) for ' +
            'storage.deleted_retention_days, restorable until then, then purged.',
        ),
      },
    )
    .post(
      '/v1/resources/:id/restore',
      async ({ params, request }) => {
        const record = findResource(sqlite, params.id);
        if (!record) throw new NotFoundError('Resource');
        assertResourceVisible(request, record);
        if (record.deletedAt === null) throw new ConflictError('The resource is not deleted');
        return commitChange(instance, request, 200, () => {
          const now = clock.now();
          const row = undeleteResource(db, record.id, now - retentionMs, now);
          return resourceChange('resource.restored', row);
        });
      },
      {
        params: ResourceParams,
        response: { 200: ResourceSchema },
        detail: detail(
          'Restore a deleted resource',
          'Within storage.deleted_retention_days of its deletion (404 after). 409 if a live ' +
            'resource has taken its name meanwhile.',
        ),
      },
    )
    .get(
      '/v1/resources/:id/versions',
      ({ params, query, request, set }) => {
        const record = visibleLiveResource(sqlite, request, params.id);
        const page = readPage(query);
        const { rows, total } = listVersions(db, record.id, page);
        return listResponse(
          request,
          set,
          page,
          total,
          rows.map((row) => toVersionObject(row)),
        );
      },
      {
        params: ResourceParams,
        query: VersionListQuery,
        response: { 200: documentedResponse(listSchema(VersionSchema)) },
        detail: detail('List versions', 'Newest first, without values.'),
      },
    )
    .get(
      '/v1/resources/:id/versions/:n',
      ({ params, request }) => {
        const record = visibleLiveResource(sqlite, request, params.id);
        const now = clock.now();
        assertNotExpired(record, now);
        const version = findVersion(db, record.id, Number(params.n));
        if (!version) throw new NotFoundError('Version');
        if (!revealsValue(request, record, now)) return toVersionObject(version);
        markReveal(request);
        return toVersionObject(version, openValue(keyring, record, version.version, version.value));
      },
      {
        params: VersionParams,
        response: { 200: VersionSchema },
        detail: detail(
          'Get a version',
          'With `value` for keys with resources:reveal while the resource is enabled and active.',
        ),
      },
    )
    .post(
      '/v1/resources/:id/versions/:n/restore',
      async ({ params, request }) => {
        const expected = parseIfMatch(request.headers.get('if-match'));
        const record = visibleLiveResource(sqlite, request, params.id);
        const actor = principalOf(request).keyId;
        return commitChange(instance, request, 200, () => {
          const row = restoreVersion(
            db,
            keyring,
            record.id,
            Number(params.n),
            expected,
            actor,
            clock.now(),
          );
          return resourceChange('resource.updated', row);
        });
      },
      {
        params: VersionParams,
        response: { 200: ResourceSchema },
        detail: detail(
          'Restore a version',
          'Makes a new version with the value of version n (secrets only). Accepts If-Match.',
        ),
      },
    );
}
