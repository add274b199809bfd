/** The named handlers of the `/v1/resources` routes (listed in ./routes.ts). */
import { principalOf } from '../access/principal.ts';
import { assertVaultVisible } from '../access/visibility.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import type { EventType } from '../ledger/event-types.ts';
import { respondCreated } from '../http/created.ts';
import { builtJson } from '../http/fields.ts';
import { listResponse, listResponseJson, readPage } from '../http/pagination.ts';
import { resourceObjectsJson } from './list-json.ts';
import { requestMeta } from '../http/request-meta.ts';
import type { RouteContext } from '../http/route.ts';
import type { Instance } from '../instance.ts';
import { findVault, vaultRefOf } from '../vaults/service.ts';
import { commitChange, type ChangeResult } from '../changes/index.ts';
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
import type {
  CreateResourceBody,
  ResourceListQuery,
  ResourceObject,
  ResourceParams,
  UpdateResourceBody,
  VersionListQuery,
  VersionParams,
} from './schemas.ts';
import {
  findResource,
  findVersion,
  insertResource,
  listResourceIds,
  listVersions as listVersionRows,
  newResourceId,
  openCurrentValue,
  openValue,
  restoreVersion as restoreVersionRow,
  softDeleteResource,
  undeleteResource,
  updateResource,
} from './store.ts';
import type { ResourceRow, ResourceType } from '../db/schema/resources.ts';
import { DAY_MS } from '../clock.ts';

type Params = { params: typeof ResourceParams };
type VersionContext = RouteContext<{ params: typeof VersionParams }>;

/** The handlers, over one instance. */
export function resourceHandlers(instance: Instance) {
  const { db, sqlite, clock, keyring, config } = instance;
  const limits = { maxValueBytes: config.resources.max_value_bytes };
  const retentionMs = config.storage.deleted_retention_days * DAY_MS;
  return {
    list,
    create,
    get,
    update,
    remove,
    restore,
    listVersions,
    getVersion,
    restoreVersion,
  };

  function list({ query, request, set }: RouteContext<{ query: typeof ResourceListQuery }>) {
    const page = readPage(query);
    const filters = {
      vaultId: query.vault_id,
      projectId: query.project_id,
      type: query.type as ResourceType | undefined, // validated by the query schema
      name: query.name,
      tag: query.tag,
      enabled: query.enabled === undefined ? undefined : query.enabled === 'true',
      deletedSince: query.deleted === 'true' ? clock.now() - retentionMs : undefined,
    };
    const { ids, total } = listResourceIds(sqlite, principalOf(request), filters, page);
    return listResponseJson(request, set, page, total, resourceObjectsJson(sqlite, ids));
  }

  async function create({ body, request, set }: RouteContext<{ body: typeof CreateResourceBody }>) {
    const key = principalOf(request);
    const vault = findVault(db, body.vault_id);
    if (!vault) throw new NotFoundError('Vault');
    assertVaultVisible(request, vaultRefOf(vault));
    const prepared = await prepareNewResource(body, limits);
    const id = newResourceId();
    requestMeta(request).target = { type: 'resource', id };
    const location = `/v1/resources/${id}`;
    const place = { id, vaultId: vault.id, projectId: vault.projectId, createdBy: key.keyId };
    const object = await commitChange(instance, request, 201, () => {
      // insertResource answers 404 if the vault was deleted meanwhile.
      const row = insertResource(db, keyring, { ...prepared, ...place }, clock.now());
      return { ...resourceChange('resource.created', row), location };
    });
    return respondCreated(set, location, object);
  }

  function get({ params, request }: RouteContext<Params>) {
    const record = visibleLiveResource(sqlite, request, params.id);
    const now = clock.now();
    assertNotExpired(record, now);
    if (!revealsValue(request, record, now)) return toResourceObject(record);
    markReveal(request);
    return toResourceObject(record, openCurrentValue(keyring, record));
  }

  async function update({
    params,
    body,
    request,
  }: RouteContext<Params & { body: typeof UpdateResourceBody }>) {
    const expected = parseIfMatch(request.headers.get('if-match'));
    const actor = principalOf(request).keyId;
    // A writer who may not reveal must not learn whether its value equals the current one.
    const blind = !canReveal(request);
    return commitChange(instance, request, 200, () => {
      // Read and checked inside the change, where the update needs it anyway: one read of
      // the resource per update, not one before and one inside (a 404 or 400 thrown here rolls
      // back the change and answers as it would before it).
      const record = visibleLiveResource(sqlite, request, params.id);
      const changes = prepareUpdate(record, body, limits);
      const now = clock.now();
      const { row, changed } = updateResource(
        db,
        keyring,
        record,
        changes,
        expected,
        actor,
        now,
        blind,
      );
      return changed ? resourceChange('resource.updated', row) : { body: toResourceObject(row) };
    });
  }

  async function remove({ params, request }: RouteContext<Params>) {
    const record = visibleLiveResource(sqlite, request, params.id);
    const actor = principalOf(request).keyId;
    return commitChange(instance, request, 200, () => {
      const row = softDeleteResource(db, record.id, actor, clock.now());
      const object = toResourceObject(row);
      return {
        body: { id: row.id, deleted: true as const },
        event: { type: 'resource.deleted', projectId: row.projectId, object },
      };
    });
  }

  async function restore({ params, request }: RouteContext<Params>) {
    const record = findResource(sqlite, params.id);
    if (!record) throw new NotFoundError('Resource');
    assertResourceVisible(request, record);
    if (record.deletedAt === null) throw new ConflictError('The resource is not deleted');
    return commitChange(instance, request, 200, () => {
      const now = clock.now();
      const row = undeleteResource(db, record.id, now - retentionMs, now);
      return resourceChange('resource.restored', row);
    });
  }

  function listVersions({
    params,
    query,
    request,
    set,
  }: RouteContext<Params & { query: typeof VersionListQuery }>) {
    const record = visibleLiveResource(sqlite, request, params.id);
    const page = readPage(query);
    const { rows, total } = listVersionRows(db, record.id, page);
    const data = rows.map((row) => toVersionObject(row));
    return builtJson(listResponse(request, set, page, total, data));
  }

  function getVersion({ params, request }: VersionContext) {
    const record = visibleLiveResource(sqlite, request, params.id);
    const now = clock.now();
    assertNotExpired(record, now);
    const version = findVersion(db, record.id, Number(params.n));
    if (!version) throw new NotFoundError('Version');
    if (!revealsValue(request, record, now)) return toVersionObject(version);
    markReveal(request);
    return toVersionObject(version, openValue(keyring, record, version.version, version.value));
  }

  async function restoreVersion({ params, request }: VersionContext) {
    const expected = parseIfMatch(request.headers.get('if-match'));
    const record = visibleLiveResource(sqlite, request, params.id);
    const actor = principalOf(request).keyId;
    const n = Number(params.n);
    return commitChange(instance, request, 200, () => {
      const now = clock.now();
      const row = restoreVersionRow(db, keyring, record.id, n, expected, actor, now);
      return resourceChange('resource.updated', row);
    });
  }
}

/** A change's result: the resource's API object as the body, and the same object as its event. */
function resourceChange(type: EventType, row: ResourceRow): ChangeResult<ResourceObject> {
  const object = toResourceObject(row);
  return { body: object, event: { type, projectId: row.projectId, object } };
}
