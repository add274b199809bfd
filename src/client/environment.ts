/**
 * The environment a set of vaults gives a program (`run`, `env export`): each vault's active
 * secrets, later vaults overriding earlier ones, with names checked as environment variable
 * names (an error naming the bad ones, unless they are to be skipped).
 */
import { ExitCode } from '../cli/exit.ts';
import { ENV_NAME, type EnvEntry } from './env-format.ts';
import { ClientError, type SecrynClient } from './http.ts';
import { vaultSecrets } from './secrets.ts';
import { resolveVault } from './vaults.ts';

/** The merged secrets of the vaults `refs`, in order; invalid names refused or skipped. */
export async function environmentOf(
  client: SecrynClient,
  refs: readonly string[],
  options: { skipInvalid?: boolean; checkNames?: boolean } = {},
): Promise<{ entries: EnvEntry[]; skipped: string[] }> {
  const ids = await Promise.all(refs.map((ref) => resolveVault(client, ref)));
  const lists = await Promise.all(ids.map((id) => vaultSecrets(client, id)));
  const merged = new Map<string, string>();
  for (const list of lists) for (const s of list) merged.set(s.name, s.value!);
  const entries = [...merged].map(([name, value]) => ({ name, value }));
  if (options.checkNames === false) return { entries, skipped: [] };
  const invalid = entries.filter((e) => !ENV_NAME.test(e.name)).map((e) => e.name);
  if (invalid.length > 0 && !options.skipInvalid) {
    throw new ClientError(
      `not valid environment variable names: ${invalid.map((n) => JSON.stringify(n)).join(', ')} (rename them, or pass --skip-invalid)`,
      ExitCode.REJECTED,
      'INVALID_NAME',
    );
  }
  return { entries: entries.filter((e) => ENV_NAME.test(e.name)), skipped: invalid };
}
