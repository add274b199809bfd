/**
 * `/v1/projects` (API.md §3). The permission of each route is in the permission table; here the
 * handlers only decide *which* projects the caller reaches (`visibility.ts`): a project outside
 * its reach answers 404 like one that does not exist. Names are unique (409, field `name`); a
 * project that still has vaults cannot be deleted (409).
 */
import { Elysia } from 'elysia';
import { principalOf } from '../access/principal.ts';
import {
  assertProjectScope,
  assertProjectVisible,
  visibleProjectFilter,
} from '../access/visibility.ts';
import { NotFoundError } from '../errors.ts';
import { listResponse, listSchema, readPage } from '../http/pagination.ts';
import { requestMeta } from '../http/request-meta.ts';
import type { Instance } from '../instance.ts';
import { commitChange } from '../changes/index.ts';
import { Deleted, documentedResponse } from '../resources/fields.ts';
import {
  CreateProjectBody,
  ProjectListQuery,
  ProjectParams,
  ProjectSchema,
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
import { respondCreated } from '../http/created.ts';

const detail = (summary: string, description: string) => ({
  summary,
  description,
  tags: ['projects'],
});

/** The `/v1/projects` routes. */
export function projectRoutes(instance: Instance) {
  const { db, clock } = instance;

  /** The project if it exists and the caller may see it; else a (hidden) 404. */
  const visibleProject = (request: Request, id: string): ProjectRow => {
    const row = findProject(db, id);
    if (!row) throw new NotFoundError('Project');
    assertProjectVisible(request, row.id, projectsOfVaults(db, principalOf(request).vaultIds));
    return row;
  };

  /** The project if the caller has scope over all of it (to change or delete it). */
  const ownedProject = (request: Request, id: string): ProjectRow => {
    const row = visibleProject(request, id);
    assertProjectScope(request, row.id);
    return row;
  };

  return new Elysia({ name: 'projects' })
    .get(
      '/v1/projects',
      ({ query, request, set }) => {
        const key = principalOf(request);
        const page = readPage(query);
        const visible = visibleProjectFilter(key, projects.id, projectsOfVaults(db, key.vaultIds));
        const { rows, total } = listProjects(db, visible, page);
        return listResponse(request, set, page, total, rows.map(toProjectObject));
      },
      {
        query: ProjectListQuery,
        response: { 200: documentedResponse(listSchema(ProjectSchema)) },
        detail: detail(
          'List projects',
          'Newest first. Keys limited to projects or vaults see only the projects they reach.',
        ),
      },
    )
    .post(
      '/v1/projects',
      async ({ body, request, set }) => {
        const id = newProjectId();
        requestMeta(request).target = { type: 'project', id };
        const location = `/v1/projects/${id}`;
        const object = await commitChange(instance, request, 201, () => {
          const row = insertProject(
            db,
            {
              id,
              name: body.name,
              description: body.description ?? null,
              createdBy: principalOf(request).keyId,
            },
            clock.now(),
          );
          const object = toProjectObject(row);
          return {
            body: object,
            location,
            event: { type: 'project.created', projectId: id, object },
          };
        });
        return respondCreated(set, location, object);
      },
      {
        body: CreateProjectBody,
        // Declares the JSON body to the OpenAPI document; the app's own parser still reads it.
        parse: 'json',
        response: { 201: ProjectSchema },
        detail: detail(
          'Create a project',
          'Names are unique (409 with details.field = name). Accepts an Idempotency-Key header.',
        ),
      },
    )
    .get(
      '/v1/projects/:id',
      ({ params, request }) => toProjectObject(visibleProject(request, params.id)),
      {
        params: ProjectParams,
        response: { 200: ProjectSchema },
        detail: detail('Get a project', 'A project outside the key’s reach answers 404.'),
      },
    )
    .put(
      '/v1/projects/:id',
      async ({ params, body, request }) => {
        const project = ownedProject(request, params.id);
        return commitChange(instance, request, 200, () => {
          const result = updateProject(db, project.id, body, clock.now());
          if (!result) throw new NotFoundError('Project');
          const object = toProjectObject(result.row);
          return {
            body: object,
            event: result.changed
              ? { type: 'project.updated', projectId: project.id, object }
              : undefined,
          };
        });
      },
      {
        params: ProjectParams,
        body: UpdateProjectBody,
        // Declares the JSON body to the OpenAPI document; the app's own parser still reads it.
        parse: 'json',
        response: { 200: ProjectSchema },
        detail: detail('Update a project', 'Changes the name or description.'),
      },
    )
    .delete(
      '/v1/projects/:id',
      async ({ params, request }) => {
        const project = ownedProject(request, params.id);
        return commitChange(instance, request, 200, () => {
          if (!deleteProject(db, project.id)) throw new NotFoundError('Project');
          return {
            body: { id: project.id, deleted: true as const },
            event: {
              type: 'project.deleted',
              projectId: project.id,
              object: toProjectObject(project),
            },
          };
        });
      },
      {
        params: ProjectParams,
        response: { 200: Deleted },
        detail: detail(
          'Delete a project',
          'Only a project without vaults can be deleted (409 otherwise).',
        ),
      },
    );
}
