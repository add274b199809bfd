/**
 * Naming a vault on the command line: its id (`vlt_…`) or `PROJECT/VAULT` by name (names never
 * contain "/"). A name is resolved through the lists the key may read; a key that cannot list
 * projects (an access key) must use the id, because matching the vault name alone could pick a
 * vault of another project with the same name: it fails instead.
 */
import { ExitCode } from '../cli/exit.ts';
import { ClientError, type SecrynClient } from './http.ts';

type Named = { id: string; name: string };
export type VaultRef = Named & { project_id: string };

/** The id of the vault `ref` names. */
export async function resolveVault(client: SecrynClient, ref: string): Promise<string> {
  if (/^vlt_[0-9a-z]+$/.test(ref)) return ref;
  const slash = ref.indexOf('/');
  if (slash <= 0 || slash === ref.length - 1 || ref.indexOf('/', slash + 1) !== -1) {
    throw new ClientError(
      `--vault must be a vault id (vlt_…) or PROJECT/VAULT, not ${JSON.stringify(ref.slice(0, 200))}`,
      ExitCode.USAGE,
    );
  }
  const projectName = ref.slice(0, slash).normalize('NFC');
  const vaultName = ref.slice(slash + 1).normalize('NFC');
  let projects: Named[];
  try {
    projects = await client.listAll<Named>('/v1/projects');
  } catch (error) {
    if (error instanceof ClientError && error.status === 403) {
      throw new ClientError(
        `this key may not list projects, so "${ref}" cannot be resolved by name; use the vault id (vlt_…)`,
        ExitCode.FORBIDDEN,
        'FORBIDDEN',
      );
    }
    throw error;
  }
  const project = projects.find((p) => p.name === projectName);
  if (!project) throw notFound(ref, `project "${projectName}"`);
  const vaults = await client.listAll<VaultRef>(
    `/v1/vaults?project_id=${encodeURIComponent(project.id)}`,
  );
  const vault = vaults.find((v) => v.name === vaultName);
  if (!vault) throw notFound(ref, `vault "${vaultName}" in project "${projectName}"`);
  return vault.id;
}

/** The id of the project `ref` names (an id `prj_…` or a name). */
export async function resolveProject(client: SecrynClient, ref: string): Promise<string> {
  if (/^prj_[0-9a-z]+$/.test(ref)) return ref;
  const name = ref.normalize('NFC');
  const project = (await client.listAll<Named>('/v1/projects')).find((p) => p.name === name);
  if (!project) throw notFound(ref, `project "${name}"`);
  return project.id;
}

function notFound(ref: string, what: string): ClientError {
  return new ClientError(
    `no ${what} within this key's reach (--vault ${ref})`,
    ExitCode.NOT_FOUND,
    'NOT_FOUND',
  );
}
