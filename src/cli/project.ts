/** `secryn project list|create`: the projects on a server the key may see or create. */
import { defineCommand } from 'citty';
import { clientArgs, connect } from './client-common.ts';
import { jsonArg, print, printable } from './common.ts';

type Project = { id: string; name: string; description: string | null; created_at: string };

const list = defineCommand({
  meta: { name: 'list', description: 'List projects' },
  args: { ...clientArgs, ...jsonArg },
  async run({ args }) {
    const projects = await connect(args).listAll<Project>('/v1/projects');
    if (args.json) return print(JSON.stringify(projects));
    if (projects.length === 0) return print('No projects');
    print(projects.map((p) => `${p.id}\t${printable(p.name)}\t${p.created_at}`).join('\n'));
  },
});

const create = defineCommand({
  meta: { name: 'create', description: 'Create a project (admins)' },
  args: {
    name: { type: 'positional', description: 'Project name', required: true },
    description: { type: 'string', description: 'What it is for' },
    ...clientArgs,
    ...jsonArg,
  },
  async run({ args }) {
    const project = await connect(args).request<Project>('POST', '/v1/projects', {
      name: args.name,
      ...(args.description ? { description: args.description } : {}),
    });
    if (args.json) return print(JSON.stringify(project));
    print(`Created project ${printable(project.name)} (${project.id})`);
  },
});

export const projectCommand = defineCommand({
  meta: { name: 'project', description: 'List and create projects on a server' },
  subCommands: { list, create },
});
