/** `secryn whoami`: the key in use (GET /v1/me): name, role, scopes, limits, expiry, permissions. */
import { defineCommand } from 'citty';
import type { MeObject } from '../me/schemas.ts';
import { clientArgs, connect } from './client-common.ts';
import { jsonArg, print, printable } from './common.ts';

export const whoamiCommand = defineCommand({
  meta: { name: 'whoami', description: 'Show the API key in use and what it may do' },
  args: { ...clientArgs, ...jsonArg },
  async run({ args }) {
    const client = connect(args);
    const me = await client.request<MeObject>('GET', '/v1/me');
    if (args.json) return print(JSON.stringify(me));
    const list = (items: readonly string[], none: string) =>
      items.length ? items.join(', ') : none;
    print(
      [
        `server:      ${client.baseUrl}`,
        `key:         ${printable(me.name)} (${me.id})`,
        `role:        ${me.role}`,
        `scopes:      ${me.scopes === null ? '(none: the role’s full set)' : list(me.scopes, '(empty)')}`,
        `projects:    ${list(me.project_ids, 'all')}`,
        `vaults:      ${list(me.vault_ids, '(none granted explicitly)')}`,
        `expires:     ${me.expires_at ?? 'never'}`,
        `permissions: ${list(me.permissions, '(none)')}`,
      ].join('\n'),
    );
  },
});
