/** `secryn vault list|create`: the vaults on a server (optionally of one project). */
import { defineCommand } from 'citty';
import { resolveProject } from '../client/vaults.ts';
import { clientArgs, connect } from './client-common.ts';
import { jsonArg, print, printable } from './common.ts';

type Vault = {
  id: string;
  project_id: string;
  name: string;
  restricted: boolean;
  created_at: string;
};

const projectArg = {
  project: { type: 'string', description: 'Project id (prj_…) or name', valueHint: 'project' },
} as const;

const list = defineCommand({
  meta: { name: 'list', description: 'List vaults (of --project, else every one the key reaches)' },
  args: { ...projectArg, ...clientArgs, ...jsonArg },
  async run({ args }) {
    const client = connect(args);
    const filter = args.project
      ? `?project_id=${encodeURIComponent(await resolveProject(client, args.project))}`
      : '';
    const vaults = await client.listAll<Vault>(`/v1/vaults${filter}`);
    if (args.json) return print(JSON.stringify(vaults));
    if (vaults.length === 0) return print('No vaults');
    print(
      vaults
        .map(
          (v) =>
            `${v.id}\t${v.project_id}\t${printable(v.name)}${v.restricted ? '\t(restricted)' : ''}`,
        )
        .join('\n'),
    );
  },
});

const create = defineCommand({
  meta: { name: 'create', description: 'Create a vault in a project' },
  args: {
    name: { type: 'positional', description: 'Vault name', required: true },
    project: { ...projectArg.project, required: true },
    description: { type: 'string', description: 'What it is for' },
    restricted: {
      type: 'boolean',
      description: 'Only admins, managers of the project and keys granted it may reach it',
      default: false,
    },
    ...clientArgs,
    ...jsonArg,
  },
  async run({ args }) {
    const client = connect(args);
    const vault = await client.request<Vault>('POST', '/v1/vaults', {
      project_id: await resolveProject(client, args.project),
      name: args.name,
      restricted: args.restricted,
      ...(args.description ? { description: args.description } : {}),
    });
    if (args.json) return print(JSON.stringify(vault));
    print(`Created vault ${printable(vault.name)} (${vault.id})`);
  },
});

export const vaultCommand = defineCommand({
  meta: { name: 'vault', description: 'List and create vaults on a server' },
  subCommands: { list, create },
});
