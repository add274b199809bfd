/**
 * What each `/v1/projects` route accepts and answers: the TypeBox schemas Elysia validates with
 * and the OpenAPI text `/docs` shows. The routes themselves are listed in ./routes.ts.
 */
import { listSchema } from '../http/pagination.ts';
import { docsFor } from '../http/route.ts';
import { Deleted, documentedResponse } from '../http/fields.ts';
import {
  CreateProjectBody,
  ProjectListQuery,
  ProjectParams,
  ProjectSchema,
  UpdateProjectBody,
} from './schemas.ts';

const docs = docsFor('projects');

export const list = {
  query: ProjectListQuery,
  response: { 200: documentedResponse(listSchema(ProjectSchema)) },
  detail: docs(
    'List projects',
    'Newest first. Keys limited to projects or vaults see only the projects they reach.',
  ),
};

export const create = {
  body: CreateProjectBody,
  // Declares the JSON body to the OpenAPI document; the app's own parser still reads it.
  parse: 'json' as const,
  response: { 201: ProjectSchema },
  detail: docs(
    'Create a project',
    'Names are unique (409 with details.field = name). Accepts an Idempotency-Key header.',
  ),
};

export const get = {
  params: ProjectParams,
  response: { 200: ProjectSchema },
  detail: docs('Get a project', 'A project outside the key’s reach answers 404.'),
};

export const update = {
  params: ProjectParams,
  body: UpdateProjectBody,
  parse: 'json' as const,
  response: { 200: ProjectSchema },
  detail: docs('Update a project', 'Changes the name or description.'),
};

export const remove = {
  params: ProjectParams,
  response: { 200: Deleted },
  detail: docs('Delete a project', 'Only a project without vaults can be deleted (409 otherwise).'),
};
