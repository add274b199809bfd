/** The TypeBox schema of `GET /v1/me` (API.md §10): the calling key, as clients show it. */
import { t } from 'elysia';
import { PermissionSchema, RoleSchema } from '../keys/schemas.ts';

/** The calling key: who it is, what it reaches, and what it may do. */
export const MeSchema = t.Object(
  {
    id: t.String({ examples: ['key_01jq3v6x1nf4r8s2k9w7y5t3m0'] }),
    name: t.String(),
    role: RoleSchema,
    project_ids: t.Array(t.String(), { description: 'Projects it is limited to; [] = all' }),
    vault_ids: t.Array(t.String(), { description: 'Vaults granted explicitly' }),
    scopes: t.Nullable(t.Array(PermissionSchema)),
    expires_at: t.Nullable(t.String()),
    permissions: t.Array(PermissionSchema, {
      description:
        'What the key may do: its role’s permissions narrowed by its scopes (see docs/permissions.md); ' +
        'project and vault limits still decide which objects it reaches',
    }),
  },
  { description: 'The API key making the request' },
);

export type MeObject = typeof MeSchema.static;
