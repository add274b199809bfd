/** The named handlers of the `/v1/projects` routes (listed in ./routes.ts). */
import { principalOf } from '../access/principal.ts';
import {
  assertProjectScope,
  assertProjectVisible,
  visibleProjectFilter,
} from '../access/visibility.ts';
import { NotFoundError } from '../errors.ts';
import { respondCreated } from '../http/created.ts';
import { listResponse, readPage } from '../http/pagination.ts';
import { requestMeta } from '../http/request-meta.ts';
import type { RouteContext } from '../http/route.ts';
import type { Instance } from '../instance.ts';
import { commitChange } from '../changes/index.ts';
import type {
  CreateProjectBody,
  ProjectListQuery,
  ProjectParams,
  UpdateProjectBody,
} from './schemas.ts';
import {
  deleteProject,
  findProject,
  insertProject,
  listProjects,
  newProjectId,
  projectsOfVaults,
  toProjectObject,
  updateProject,
} from './service.ts';
import { projects, type ProjectRow } from '../db/schema/projects.ts';

type Params = { params: typeof ProjectParams };
type UpdateBody = { body: typeof UpdateProjectBody };

/** The handlers, over one instance. */
export function projectHandlers(instance: Instance) {
  const { db, clock } = instance;
  return { list, create, get, update, remove };

  function list({ query, request, set }: RouteContext<{ query: typeof ProjectListQuery }>) {
    const key = principalOf(request);
    const page = readPage(query);
    const visible = visibleProjectFilter(key, projects.id, projectsOfVaults(db, key.vaultIds));
    const { rows, total } = listProjects(db, visible, page);
    return listResponse(request, set, page, total, rows.map(toProjectObject));
  }

  async function create({ body, request, set }: RouteContext<{ body: typeof CreateProjectBody }>) {
    const id = newProjectId();
    requestMeta(request).target = { type: 'project', id };
    const location = `/v1/projects/${id}`;
    const object = await commitChange(instance, request, 201, () => {
      const createdBy = principalOf(request).keyId;
      const description = body.description ?? null;
      const row = insertProject(db, { id, name: body.name, description, createdBy }, clock.now());
      const object = toProjectObject(row);
      return { body: object, location, event: { type: 'project.created', projectId: id, object } };
    });
    return respondCreated(set, location, object);
  }

  function get({ params, request }: RouteContext<Params>) {
    return toProjectObject(visibleProject(request, params.id));
  }

  async function update({ params, body, request }: RouteContext<Params & UpdateBody>) {
    const project = ownedProject(request, params.id);
    return commitChange(instance, request, 200, () => {
      const result = updateProject(db, project.id, body, clock.now());
      if (!result) throw new NotFoundError('Project');
      const object = toProjectObject(result.row);
      const event = { type: 'project.updated' as const, projectId: project.id, object };
      return { body: object, event: result.changed ? event : undefined };
    });
  }

  async function remove({ params, request }: RouteContext<Params>) {
    const project = ownedProject(request, params.id);
    return commitChange(instance, request, 200, () => {
      if (!deleteProject(db, project.id)) throw new NotFoundError('Project');
      const object = toProjectObject(project);
      return {
        body: { id: project.id, deleted: true as const },
        event: { type: 'project.deleted', projectId: project.id, object },
      };
    });
  }

  /** The project if it exists and the caller may see it; else a (hidden) 404. */
  function visibleProject(request: Request, id: string): ProjectRow {
    const row = findProject(db, id);
    if (!row) throw new NotFoundError('Project');
    assertProjectVisible(request, row.id, projectsOfVaults(db, principalOf(request).vaultIds));
    return row;
  }

  /** The project if the caller has scope over all of it (to change or delete it). */
  function ownedProject(request: Request, id: string): ProjectRow {
    const row = visibleProject(request, id);
    assertProjectScope(request, row.id);
    return row;
  }
}
