/**
 * `/v1/vaults` (API.md §3) and the vault read API (API.md §4) that the `secryn` CLI, CI/CD and
 * apps use with vault access keys. Permissions come from the route table; handlers check which
 * vaults the key reaches (`visibility.ts`, restricted vaults included) and, for values, the
 * reveal rules of `src/resources/reveal.ts`.
 */
import { Elysia, t } from 'elysia';
import { principalOf } from '../access/principal.ts';
import {
  assertProjectScope,
  assertProjectVisible,
  assertVaultVisible,
  visibleVaultFilter,
} from '../access/visibility.ts';
import { NotFoundError } from '../errors.ts';
import { listResponse, listSchema, readPage } from '../http/pagination.ts';
import { requestMeta } from '../http/request-meta.ts';
import type { Instance } from '../instance.ts';
import { findProject, projectsOfVaults } from '../projects/service.ts';
import { commitChange } from '../changes/index.ts';
import { Deleted, documentedResponse } from '../resources/fields.ts';
import { toResourceObject, toVaultSecret } from '../resources/objects.ts';
import {
  assertServable,
  canReveal,
  markReveal,
  revealsValue,
  visibleLiveResource,
} from '../resources/reveal.ts';
import {
  ResourceSchema,
  VaultReadQuery,
  VaultResourceListQuery,
  VaultResourceParams,
  VaultSecretParams,
  VaultSecretSchema,
} from '../resources/schemas.ts';
import {
  findSecretByName,
  listActiveSecrets,
  listResources,
  openCurrentValue,
  openValue,
  readValue,
} from '../resources/store.ts';
import type { ResourceType } from '../db/schema/resources.ts';
import {
  CreateVaultBody,
  UpdateVaultBody,
  VaultListQuery,
  VaultParams,
  VaultSchema,
  VaultWithSecretsSchema,
  type VaultWithSecretsObject,
} from './schemas.ts';
import {
  deleteVault,
  findVault,
  insertVault,
  listVaults,
  newVaultId,
  toVaultObject,
  updateVault,
  vaultRefOf,
} from './service.ts';
import { vaults, type VaultRow } from '../db/schema/vaults.ts';
import { respondCreated } from '../http/created.ts';

/** Media type of the download routes. */
export const PEM_MEDIA_TYPE = 'application/x-pem-file';

/** The audit action of a vault read that returned secret values. */
export const VAULT_REVEAL_ACTION = 'vault.reveal';

const detail = (summary: string, description: string, tag = 'vaults') => ({
  summary,
  description,
  tags: [tag],
});

/** The `/v1/vaults` routes, vault read API included. */
export function vaultRoutes(instance: Instance) {
  const { db, sqlite, clock, keyring } = instance;

  /** The vault if it exists and the caller reaches it; else a (hidden) 404. */
  const visibleVault = (request: Request, id: string): VaultRow => {
    const row = findVault(db, id);
    if (!row) throw new NotFoundError('Vault');
    assertVaultVisible(request, vaultRefOf(row));
    return row;
  };

  /** The vault if the caller also has scope over its whole project (to change or delete it). */
  const ownedVault = (request: Request, id: string): VaultRow => {
    const row = visibleVault(request, id);
    assertProjectScope(request, row.projectId);
    return row;
  };

  /** A live key or certificate of the vault; else 404. */
  const vaultResource = (request: Request, vault: VaultRow, id: string, type: ResourceType) => {
    const record = visibleLiveResource(sqlite, request, id);
    if (record.vaultId !== vault.id || record.type !== type) throw new NotFoundError('Resource');
    return record;
  };

  const resourceList =
    (type: ResourceType) =>
    ({
      params,
      query,
      request,
      set,
    }: {
      params: { id: string };
      query: { page?: string; limit?: string };
      request: Request;
      set: { headers: Record<string, unknown> };
    }) => {
      const vault = visibleVault(request, params.id);
      const page = readPage(query);
      const { rows, total } = listResources(
        sqlite,
        principalOf(request),
        { vaultId: vault.id, type },
        page,
      );
      return listResponse(
        request,
        set,
        page,
        total,
        rows.map((row) => toResourceObject(row)),
      );
    };

  const download =
    (type: 'key' | 'certificate') =>
    ({
      params,
      request,
      set,
    }: {
      params: { id: string; res_id: string };
      request: Request;
      set: { headers: Record<string, unknown> };
    }) => {
      const vault = visibleVault(request, params.id);
      const record = vaultResource(request, vault, params.res_id, type);
      assertServable(record, clock.now());
      const pem = readValue(sqlite, keyring, record, record.currentVersion);
      set.headers['content-type'] = PEM_MEDIA_TYPE;
      set.headers['content-disposition'] = attachment(`${record.name}.pem`);
      return pem;
    };

  return new Elysia({ name: 'vaults' })
    .get(
      '/v1/vaults',
      ({ query, request, set }) => {
        const page = readPage(query);
        const visible = visibleVaultFilter(principalOf(request), vaults);
        const { rows, total } = listVaults(db, visible, query.project_id, page);
        return listResponse(request, set, page, total, rows.map(toVaultObject));
      },
      {
        query: VaultListQuery,
        response: { 200: documentedResponse(listSchema(VaultSchema)) },
        detail: detail('List vaults', 'Newest first, only the vaults the key reaches.'),
      },
    )
    .post(
      '/v1/vaults',
      async ({ body, request, set }) => {
        const project = findProject(db, body.project_id);
        if (!project) throw new NotFoundError('Project');
        const key = principalOf(request);
        assertProjectVisible(request, project.id, projectsOfVaults(db, key.vaultIds));
        assertProjectScope(request, project.id);
        const id = newVaultId();
        requestMeta(request).target = { type: 'vault', id };
        const location = `/v1/vaults/${id}`;
        const object = await commitChange(instance, request, 201, () => {
          if (!findProject(db, project.id)) throw new NotFoundError('Project');
          const row = insertVault(
            db,
            {
              id,
              projectId: project.id,
              name: body.name,
              description: body.description ?? null,
              restricted: body.restricted ?? false,
              createdBy: key.keyId,
            },
            clock.now(),
          );
          const object = toVaultObject(row);
          return {
            body: object,
            location,
            event: { type: 'vault.created', projectId: project.id, object },
          };
        });
        return respondCreated(set, location, object);
      },
      {
        body: CreateVaultBody,
        // Declares the JSON body to the OpenAPI document; the app's own parser still reads it.
        parse: 'json',
        response: { 201: VaultSchema },
        detail: detail(
          'Create a vault',
          'Names are unique within the project (409). Needs scope over the whole project. ' +
            'Accepts an Idempotency-Key header.',
        ),
      },
    )
    .get(
      '/v1/vaults/:id',
      ({ params, query, request }) => {
        const vault = visibleVault(request, params.id);
        const key = principalOf(request);
        if (query.resource !== undefined) return readVaultResource(request, vault, query.resource);
        const object: VaultWithSecretsObject = toVaultObject(vault);
        if (!key.permissions.has('resources:read')) return object;
        const now = clock.now();
        if (query.secrets === 'names') {
          object.secrets = listActiveSecrets(sqlite, vault.id, now, false).map((s) => ({
            id: s.id,
            name: s.name,
          }));
          return object;
        }
        const withValues = canReveal(request);
        const secrets = listActiveSecrets(sqlite, vault.id, now, withValues);
        object.secrets = secrets.map((secret) =>
          toVaultSecret(
            secret,
            withValues && secret.sealed
              ? openValue(
                  keyring,
                  { id: secret.id, vaultId: vault.id, projectId: vault.projectId },
                  secret.version,
                  secret.sealed,
                )
              : undefined,
          ),
        );
        if (withValues && secrets.length > 0) markReveal(request, VAULT_REVEAL_ACTION);
        return object;
      },
      {
        params: VaultParams,
        query: VaultReadQuery,
        response: { 200: documentedResponse(t.Union([VaultWithSecretsSchema, ResourceSchema])) },
        detail: detail(
          'Get a vault (vault read API)',
          'The vault plus `secrets`: its enabled, active secrets by name, with values for ' +
            'keys with resources:reveal (absent for keys without resources:read). ' +
            '`?secrets=names`: only `{id, name}` per secret. `?resource=res_…`: that resource ' +
            'of the vault instead, with its value (a key or certificate: its PEM); 410 when ' +
            'expired, 404 when disabled or not active yet.',
        ),
      },
    )
    .put(
      '/v1/vaults/:id',
      async ({ params, body, request }) => {
        const vault = ownedVault(request, params.id);
        return commitChange(instance, request, 200, () => {
          const result = updateVault(db, vault.id, body, clock.now());
          if (!result) throw new NotFoundError('Vault');
          const object = toVaultObject(result.row);
          return {
            body: object,
            event: result.changed
              ? { type: 'vault.updated', projectId: vault.projectId, object }
              : undefined,
          };
        });
      },
      {
        params: VaultParams,
        body: UpdateVaultBody,
        // Declares the JSON body to the OpenAPI document; the app's own parser still reads it.
        parse: 'json',
        response: { 200: VaultSchema },
        detail: detail('Update a vault', 'Name, description, restricted. Needs project scope.'),
      },
    )
    .delete(
      '/v1/vaults/:id',
      async ({ params, request }) => {
        const vault = ownedVault(request, params.id);
        return commitChange(instance, request, 200, () => {
          if (!deleteVault(db, vault.id)) throw new NotFoundError('Vault');
          return {
            body: { id: vault.id, deleted: true as const },
            event: {
              type: 'vault.deleted',
              projectId: vault.projectId,
              object: toVaultObject(vault),
            },
          };
        });
      },
      {
        params: VaultParams,
        response: { 200: Deleted },
        detail: detail(
          'Delete a vault',
          'Only a vault without live resources (409 otherwise); its soft-deleted resources are ' +
            'purged with it.',
        ),
      },
    )
    .get(
      '/v1/vaults/:id/secrets/:name',
      ({ params, request }) => {
        const vault = visibleVault(request, params.id);
        const record = findSecretByName(sqlite, vault.id, params.name);
        if (!record) throw new NotFoundError('Secret');
        const now = clock.now();
        assertServable(record, now);
        if (!canReveal(request)) return toVaultSecret(record);
        markReveal(request);
        return toVaultSecret(record, openCurrentValue(keyring, record));
      },
      {
        params: VaultSecretParams,
        response: { 200: VaultSecretSchema },
        detail: detail(
          'Get a secret by name (vault read API)',
          'With its value for keys with resources:reveal. 410 when expired; 404 when ' +
            'disabled or not active yet.',
        ),
      },
    )
    .get('/v1/vaults/:id/keys', resourceList('key'), {
      params: VaultParams,
      query: VaultResourceListQuery,
      response: { 200: documentedResponse(listSchema(ResourceSchema)) },
      detail: detail('List the keys of a vault (vault read API)', 'Newest first, metadata only.'),
    })
    .get('/v1/vaults/:id/certificates', resourceList('certificate'), {
      params: VaultParams,
      query: VaultResourceListQuery,
      response: { 200: documentedResponse(listSchema(ResourceSchema)) },
      detail: detail(
        'List the certificates of a vault (vault read API)',
        'Newest first, metadata only.',
      ),
    })
    .get('/v1/vaults/:id/keys/:res_id/download', download('key'), {
      params: VaultResourceParams,
      detail: {
        ...detail(
          'Download a key (vault read API)',
          'The private key as PEM (`application/x-pem-file`; AES keys in a SECRYN AES KEY ' +
            'block). 410 when expired; 404 when disabled or not active yet.',
        ),
        responses: pemResponses('The private key PEM'),
      },
    })
    .get('/v1/vaults/:id/certificates/:res_id/download', download('certificate'), {
      params: VaultResourceParams,
      detail: {
        ...detail(
          'Download a certificate (vault read API)',
          'The PEM chain, leaf first, followed by the private key when one was uploaded ' +
            '(`application/x-pem-file`). 410 when expired; 404 when disabled or not active yet.',
        ),
        responses: pemResponses('The certificate chain (and private key) PEM'),
      },
    });

  /** `GET /v1/vaults/:id?resource=…`: one resource of the vault, with its value. */
  function readVaultResource(request: Request, vault: VaultRow, id: string) {
    const record = visibleLiveResource(sqlite, request, id);
    if (record.vaultId !== vault.id) throw new NotFoundError('Resource');
    const now = clock.now();
    assertServable(record, now);
    if (!revealsValue(request, record, now)) return toResourceObject(record);
    markReveal(request);
    return toResourceObject(record, openCurrentValue(keyring, record));
  }
}

/** OpenAPI responses of a download route. */
function pemResponses(description: string) {
  return {
    200: { description, content: { [PEM_MEDIA_TYPE]: { schema: { type: 'string' as const } } } },
  };
}

/**
 * `Content-Disposition: attachment` with an ASCII fallback name and the exact UTF-8 name
 * (RFC 6266 / RFC 8187), so that no header injection or encoding issue is possible.
 */
export function attachment(filename: string): string {
  const ascii = filename.replace(/[^A-Za-z0-9._-]/g, '_');
  const encoded = encodeURIComponent(filename).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
