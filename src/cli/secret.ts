/**
 * `secryn secret list|get|set|delete|versions|restore … --vault V`: a vault's secrets through
 * the server (V is a vault id or PROJECT/VAULT). `get` prints the value alone, exactly as stored
 * (no newline added, except on a terminal), so `$(secryn secret get …)` works; `set` reads the
 * value from stdin or `--from-file`, never from an argument.
 */
import { defineCommand } from 'citty';
import { findSecret, listSecrets, setSecret, type SecretObject } from '../client/secrets.ts';
import { resolveVault } from '../client/vaults.ts';
import { clientArgs, connect } from './client-common.ts';
import { jsonArg, print, printable } from './common.ts';
import { CliFailure, ExitCode } from './exit.ts';
import { readValue } from './input.ts';

const vaultArg = {
  vault: {
    type: 'string',
    description: 'The vault: its id (vlt_…) or PROJECT/VAULT',
    valueHint: 'vault',
    required: true,
  },
} as const;
const nameArg = {
  name: { type: 'positional', description: 'Secret name', required: true },
} as const;
const versionArg = {
  version: { type: 'string', description: 'A version number', valueHint: 'n' },
} as const;

function versionOf(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9][0-9]{0,8}$/.test(value)) {
    throw new CliFailure('--version must be a positive integer', ExitCode.USAGE);
  }
  return Number(value);
}

async function target(args: { vault: string; name: string } & Parameters<typeof connect>[0]) {
  const client = connect(args);
  const vaultId = await resolveVault(client, args.vault);
  return { client, vaultId };
}

const list = defineCommand({
  meta: {
    name: 'list',
    description: 'List the secrets of a vault (names and versions, no values)',
  },
  args: { ...vaultArg, ...clientArgs, ...jsonArg },
  async run({ args }) {
    const client = connect(args);
    const secrets = await listSecrets(client, await resolveVault(client, args.vault));
    if (args.json) return print(JSON.stringify(secrets));
    if (secrets.length === 0) return print('No secrets');
    print(
      secrets
        .map((s) => `${printable(s.name)}\tv${s.version}\t${s.updated_at}\t${s.id}`)
        .join('\n'),
    );
  },
});

const get = defineCommand({
  meta: { name: 'get', description: 'Print a secret’s value (or, with --json, the whole secret)' },
  args: { ...nameArg, ...vaultArg, ...versionArg, ...clientArgs, ...jsonArg },
  async run({ args }) {
    const { client, vaultId } = await target(args);
    const version = versionOf(args.version);
    let secret: SecretObject;
    if (version === undefined) {
      secret = await client.request<SecretObject>(
        'GET',
        `/v1/vaults/${vaultId}/secrets/${encodeURIComponent(args.name.normalize('NFC'))}`,
      );
    } else {
      const { id } = await findSecret(client, vaultId, args.name);
      secret = {
        ...(await client.request<SecretObject>('GET', `/v1/resources/${id}/versions/${version}`)),
        id,
        name: args.name.normalize('NFC'),
      };
    }
    if (args.json) return print(JSON.stringify(secret));
    if (secret.value === undefined) {
      throw new CliFailure(
        'this key may not reveal values (resources:reveal)',
        ExitCode.FORBIDDEN,
        'FORBIDDEN',
      );
    }
    process.stdout.write(
      secret.value + (process.stdout.isTTY && !secret.value.endsWith('\n') ? '\n' : ''),
    );
  },
});

const set = defineCommand({
  meta: {
    name: 'set',
    description: 'Create a secret or add a version; the value comes from stdin or --from-file',
  },
  args: {
    ...nameArg,
    ...vaultArg,
    'from-file': {
      type: 'string',
      description: 'Read the value from this file',
      valueHint: 'path',
    },
    'content-type': { type: 'string', description: 'Media type of the value (default text/plain)' },
    ...clientArgs,
    ...jsonArg,
  },
  async run({ args }) {
    const { client, vaultId } = await target(args);
    const value = await readValue(args['from-file'], args.name);
    const { secret, created } = await setSecret(
      client,
      vaultId,
      args.name,
      value,
      args['content-type'],
    );
    if (args.json) return print(JSON.stringify({ ...secret, created }));
    print(
      `${created ? 'Created' : 'Updated'} ${printable(secret.name)} (version ${secret.version}, ${secret.id})`,
    );
  },
});

const del = defineCommand({
  meta: {
    name: 'delete',
    description: 'Delete a secret (kept for the retention window; `secret restore` brings it back)',
  },
  args: { ...nameArg, ...vaultArg, ...clientArgs, ...jsonArg },
  async run({ args }) {
    const { client, vaultId } = await target(args);
    const { id } = await findSecret(client, vaultId, args.name);
    const answer = await client.request('DELETE', `/v1/resources/${id}`);
    if (args.json) return print(JSON.stringify(answer));
    print(`Deleted ${printable(args.name)} (${id})`);
  },
});

const versions = defineCommand({
  meta: {
    name: 'versions',
    description: 'List the versions of a secret (newest first, no values)',
  },
  args: { ...nameArg, ...vaultArg, ...clientArgs, ...jsonArg },
  async run({ args }) {
    const { client, vaultId } = await target(args);
    const { id } = await findSecret(client, vaultId, args.name);
    const all = await client.listAll<{ version: number; created_at: string; created_by: string }>(
      `/v1/resources/${id}/versions`,
    );
    if (args.json) return print(JSON.stringify(all));
    print(all.map((v) => `v${v.version}\t${v.created_at}\t${v.created_by}`).join('\n'));
  },
});

const restore = defineCommand({
  meta: {
    name: 'restore',
    description:
      'With --version N: make version N the current value (as a new version). Without: undelete the secret',
  },
  args: { ...nameArg, ...vaultArg, ...versionArg, ...clientArgs, ...jsonArg },
  async run({ args }) {
    const { client, vaultId } = await target(args);
    const version = versionOf(args.version);
    let secret: SecretObject;
    if (version === undefined) {
      const { id } = await findSecret(client, vaultId, args.name, { deleted: true });
      secret = await client.request<SecretObject>('POST', `/v1/resources/${id}/restore`);
    } else {
      const { id } = await findSecret(client, vaultId, args.name);
      secret = await client.request<SecretObject>(
        'POST',
        `/v1/resources/${id}/versions/${version}/restore`,
      );
    }
    if (args.json) return print(JSON.stringify(secret));
    print(
      version === undefined
        ? `Restored ${printable(secret.name)} (version ${secret.version})`
        : `Restored version ${version} of ${printable(secret.name)} as version ${secret.version}`,
    );
  },
});

export const secretCommand = defineCommand({
  meta: { name: 'secret', description: 'Read and write the secrets of a vault on a server' },
  subCommands: { list, get, set, delete: del, versions, restore },
});
