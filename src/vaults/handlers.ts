/** The named handlers of the `/v1/vaults` routes (listed in ./routes.ts). */
import { principalOf } from '../access/principal.ts';
import {
  assertProjectScope,
  assertProjectVisible,
  visibleVaultFilter,
} from '../access/visibility.ts';
import { NotFoundError } from '../errors.ts';
import { respondCreated } from '../http/created.ts';
import { listResponse, readPage } from '../http/pagination.ts';
import { requestMeta } from '../http/request-meta.ts';
import type { RouteContext } from '../http/route.ts';
import type { Instance } from '../instance.ts';
import { findProject, projectsOfVaults } from '../projects/service.ts';
import { commitChange } from '../changes/index.ts';
import { ownedVault } from './reach.ts';
import type { CreateVaultBody, UpdateVaultBody, VaultListQuery, VaultParams } from './schemas.ts';
import {
  deleteVault,
  insertVault,
  listVaults,
  newVaultId,
  toVaultObject,
  updateVault,
} from './service.ts';
import { vaults } from '../db/schema/vaults.ts';

type Params = { params: typeof VaultParams };

/** The handlers, over one instance. */
export function vaultHandlers(instance: Instance) {
  const { db, clock } = instance;
  return { list, create, update, remove };

  function list({ query, request, set }: RouteContext<{ query: typeof VaultListQuery }>) {
    const page = readPage(query);
    const visible = visibleVaultFilter(principalOf(request), vaults);
    const { rows, total } = listVaults(db, visible, query.project_id, page);
    return listResponse(request, set, page, total, rows.map(toVaultObject));
  }

  async function create({ body, request, set }: RouteContext<{ body: typeof CreateVaultBody }>) {
    const project = findProject(db, body.project_id);
    if (!project) throw new NotFoundError('Project');
    const key = principalOf(request);
    assertProjectVisible(request, project.id, projectsOfVaults(db, key.vaultIds));
    assertProjectScope(request, project.id);
    const id = newVaultId();
    requestMeta(request).target = { type: 'vault', id };
    const location = `/v1/vaults/${id}`;
    const fields = {
      id,
      projectId: project.id,
      name: body.name,
      description: body.description ?? null,
      restricted: body.restricted ?? false,
      createdBy: key.keyId,
    };
    const object = await commitChange(instance, request, 201, () => {
      if (!findProject(db, project.id)) throw new NotFoundError('Project');
      const object = toVaultObject(insertVault(db, fields, clock.now()));
      return {
        body: object,
        location,
        event: { type: 'vault.created', projectId: project.id, object },
      };
    });
    return respondCreated(set, location, object);
  }

  async function update({
    params,
    body,
    request,
  }: RouteContext<Params & { body: typeof UpdateVaultBody }>) {
    const vault = ownedVault(db, request, params.id);
    return commitChange(instance, request, 200, () => {
      const result = updateVault(db, vault.id, body, clock.now());
      if (!result) throw new NotFoundError('Vault');
      const object = toVaultObject(result.row);
      const event = { type: 'vault.updated' as const, projectId: vault.projectId, object };
      return { body: object, event: result.changed ? event : undefined };
    });
  }

  async function remove({ params, request }: RouteContext<Params>) {
    const vault = ownedVault(db, request, params.id);
    return commitChange(instance, request, 200, () => {
      if (!deleteVault(db, vault.id)) throw new NotFoundError('Vault');
      const object = toVaultObject(vault);
      return {
        body: { id: vault.id, deleted: true as const },
        event: { type: 'vault.deleted', projectId: vault.projectId, object },
      };
    });
  }
}
