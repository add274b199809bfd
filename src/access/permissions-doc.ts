/**
 * Renders `docs/permissions.md` from the permission table, so that the document cannot drift
 * from the code (`src/access/permissions.test.ts` compares them). Regenerate with:
 *
 *   ./node_modules/.bin/bun src/access/permissions-doc.ts --write
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PERMISSIONS, ROLE_PERMISSIONS, ROLES, ROUTE_PERMISSIONS } from './permissions.ts';

/** Where the generated document lives, relative to the repository root. */
export const PERMISSIONS_DOC_PATH = 'docs/permissions.md';

const table = (headers: string[], rows: string[][]) =>
  [
    `| ${headers.join(' | ')} |`,
    `|${headers.map(() => '---').join('|')}|`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ].join('\n');

/** The Markdown of `docs/permissions.md`. */
export function renderPermissionsDoc(): string {
  const roleTable = table(
    ['permission', ...ROLES.map((role) => `\`${role}\``)],
    PERMISSIONS.map((permission) => [
      `\`${permission}\``,
      ...ROLES.map((role) => (ROLE_PERMISSIONS[role].includes(permission) ? '✓' : '')),
    ]),
  );
  const routeTable = table(
    ['route', 'permission', 'audit action', 'target', 'roles'],
    Object.entries(ROUTE_PERMISSIONS).map(([route, rule]) => [
      `\`${route}\``,
      rule.permission === null ? 'any valid key' : `\`${rule.permission}\``,
      `\`${rule.action}\``,
      rule.target.idParam ? `${rule.target.type} (\`:${rule.target.idParam}\`)` : rule.target.type,
      ROLES.filter(
        (role) => rule.permission === null || ROLE_PERMISSIONS[role].includes(rule.permission),
      ).join(', '),
    ]),
  );
  return `# Permissions

<!-- Generated from src/access/permissions.ts by src/access/permissions-doc.ts: do not edit.
     Regenerate: ./node_modules/.bin/bun src/access/permissions-doc.ts --write -->

Every request under \`/v1\` (except \`GET /v1/health\`) needs \`Authorization: Bearer scr_...\`.
The access layer answers, in this order:

1. **401 UNAUTHORIZED** — no key, a malformed one, or an unknown, wrong, expired or revoked
   key. The \`details.reason\` is the same for all of them. This happens before routing and
   before the body is read, so nothing about routes or validation can be learnt without a key.
   Only a declared \`Content-Length\` over \`server.max_body_bytes\` is answered first (413), since
   that needs no reading either.
2. **429 RATE_LIMITED** (with \`Retry-After\`) — the key's bucket is empty, or, for requests
   without a usable key, the client address's bucket.
3. **403 FORBIDDEN** — the key's permissions (its role's, narrowed by its \`scopes\`) lack the
   permission the route needs (table below). A \`/v1\` route missing from the table is always
   refused.
4. **404 NOT_FOUND** — the object exists but lies outside the key's projects or vaults
   (recorded in the audit log as a denial).

## Roles

A key has one role; \`scopes\` (a list of permissions) can only narrow it.

${roleTable}

## Routes

${routeTable}

## Projects, vaults and restricted vaults

A key may be limited to \`project_ids\` and granted \`vault_ids\` (empty lists: not limited).

- An \`admin\` key reaches everything and cannot be limited.
- A vault listed in \`vault_ids\` is reached, restricted or not (an explicit grant).
- Otherwise a vault is reached when the key has scope over its project — the project is in
  \`project_ids\`, or the key has neither list — and the vault is not restricted, unless the key
  is a \`manager\` (restricted vaults: admins, managers of the project, explicit grants).
- So a key with \`vault_ids\` only reaches exactly those vaults; with both lists it reaches the
  projects' vaults plus the granted ones.

## No escalation

A key with \`api_keys:write\` can only create keys within its own power: the new key's
permissions (role narrowed by scopes) must be a subset of its own, only an admin can create an
admin (and only an admin or a manager a manager), the new key's projects must lie within its own,
each vault it grants must be one the creating key reaches itself, and if the creating key
expires, the new key must expire no later.

Changing a key (\`PUT /v1/api-keys/:id\`: \`name\`, \`scopes\`, \`expires_at\`) follows the same
rules twice, least privilege as in Vault or Stripe: the editing key must be able to create the
key **as it is** and **as it will be**. So a key cannot touch a key stronger or longer-lived than
itself, not even to rename or narrow it — a manager narrowed to \`api_keys:read\`/\`write\` cannot
change a full manager key, and a key that expires cannot change one that does not (403 naming the
field). Revoking only takes access away, so it needs reach alone: keys other than admins see and
revoke the non-admin keys within their own projects and vaults (others: hidden 404). A revoked
key cannot be changed (409). The
\`secryn keys\` commands act as the local operator and are not limited.
`;
}

if (import.meta.main) {
  const target = join(import.meta.dir, '../..', PERMISSIONS_DOC_PATH);
  if (process.argv.includes('--write')) {
    writeFileSync(target, renderPermissionsDoc());
    console.log(`wrote ${PERMISSIONS_DOC_PATH}`);
  } else {
    process.stdout.write(renderPermissionsDoc());
  }
}
