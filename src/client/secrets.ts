/**
 * Secret operations of the `secryn` client over the resource API (docs/api.md §4): finding a secret
 * by name in a vault, setting a value (create, or a new version), and reading a vault's active
 * secrets with their values (what `env export` and `run` hand on).
 */
import { ExitCode } from '../cli/exit.ts';
import { ClientError, type SecrynClient } from './http.ts';

/** A secret as the resource API shows it (metadata; `value` only where asked and allowed). */
export type SecretObject = {
  id: string;
  name: string;
  version: number;
  content_type?: string;
  updated_at: string;
  value?: string;
  [field: string]: unknown;
};

/** One secret of a vault read (`GET /v1/vaults/:id`). */
export type VaultSecret = { id: string; name: string; value?: string; content_type?: string };

const resourcesOf = (vaultId: string, extra = '') =>
  `/v1/resources?vault_id=${encodeURIComponent(vaultId)}&type=secret${extra}`;

/** The secret named `name` in the vault (deleted ones with `deleted`); 404 as a ClientError. */
export async function findSecret(
  client: SecrynClient,
  vaultId: string,
  name: string,
  options: { deleted?: boolean } = {},
): Promise<SecretObject> {
  const nfc = name.normalize('NFC');
  const query = `&name=${encodeURIComponent(nfc)}${options.deleted ? '&deleted=true' : ''}&limit=1`;
  const answer = await client.request<{ data: SecretObject[] }>('GET', resourcesOf(vaultId, query));
  const secret = answer.data.find((s) => s.name === nfc);
  if (!secret) {
    throw new ClientError(
      `no ${options.deleted ? 'deleted ' : ''}secret "${nfc}" in this vault`,
      ExitCode.NOT_FOUND,
      'NOT_FOUND',
    );
  }
  return secret;
}

/** Every secret of the vault (metadata, no values). */
export function listSecrets(client: SecrynClient, vaultId: string): Promise<SecretObject[]> {
  return client.listAll<SecretObject>(resourcesOf(vaultId));
}

/** The vault's active, enabled secrets with their values (one request). */
export async function vaultSecrets(client: SecrynClient, vaultId: string): Promise<VaultSecret[]> {
  const vault = await client.request<{ secrets?: VaultSecret[] }>(
    'GET',
    `/v1/vaults/${encodeURIComponent(vaultId)}`,
  );
  const secrets = vault.secrets ?? [];
  if (secrets.some((s) => s.value === undefined)) {
    throw new ClientError(
      'this key may list the secrets but not reveal their values (resources:reveal)',
      ExitCode.FORBIDDEN,
      'FORBIDDEN',
    );
  }
  return secrets;
}

/** Creates the secret, or adds a version when it exists; returns it and whether it was created. */
export async function setSecret(
  client: SecrynClient,
  vaultId: string,
  name: string,
  value: string,
  contentType?: string,
): Promise<{ secret: SecretObject; created: boolean }> {
  const update = async (id: string) => ({
    secret: await client.request<SecretObject>('PUT', `/v1/resources/${id}`, {
      value,
      ...(contentType ? { content_type: contentType } : {}),
    }),
    created: false,
  });
  let existing: SecretObject | undefined;
  try {
    existing = await findSecret(client, vaultId, name);
  } catch (error) {
    if (!(error instanceof ClientError && error.exitCode === ExitCode.NOT_FOUND)) throw error;
  }
  if (existing) return update(existing.id);
  try {
    const secret = await client.request<SecretObject>('POST', '/v1/resources', {
      type: 'secret',
      vault_id: vaultId,
      name,
      value,
      ...(contentType ? { content_type: contentType } : {}),
    });
    return { secret, created: true };
  } catch (error) {
    // Someone created it in between: add a version instead.
    if (error instanceof ClientError && error.status === 409) {
      return update((await findSecret(client, vaultId, name)).id);
    }
    throw error;
  }
}
