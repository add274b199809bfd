/**
 * The TypeBox schemas of `/v1/projects` (docs/api.md §3): validation, OpenAPI document and types.
 */
import { t } from 'elysia';
import { paginationQuery } from '../http/pagination.ts';
import { ResourceName } from '../http/names.ts';
import { Description, IdParam, strictObject } from '../http/fields.ts';

/** A project as the API shows it. */
export const ProjectSchema = t.Object(
  {
    id: t.String({ examples: ['prj_01jq3v6x1nf4r8s2k9w7y5t3m0'] }),
    name: t.String(),
    description: t.Nullable(t.String()),
    created_at: t.String(),
    updated_at: t.String(),
  },
  { description: 'A project: a group of vaults' },
);

export const CreateProjectBody = strictObject({
  name: ResourceName,
  description: t.Optional(t.Nullable(Description)),
});

export const UpdateProjectBody = strictObject({
  name: t.Optional(ResourceName),
  description: t.Optional(t.Nullable(Description)),
});

export const ProjectParams = t.Object({ id: IdParam });

export const ProjectListQuery = strictObject({ ...paginationQuery });

export type ProjectObject = typeof ProjectSchema.static;
export type CreateProjectInput = typeof CreateProjectBody.static;
export type UpdateProjectInput = typeof UpdateProjectBody.static;
