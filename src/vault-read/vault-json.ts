/**
 * The body of `GET /v1/vaults/:id` with its secrets, written as JSON text: each secret's
 * metadata is serialised once per cached row and only the values (opened per request, never
 * kept) are encoded per read. The text is exactly `JSON.stringify` of the objects that
 * `toVaultObject` and `toVaultSecret` build (test/vault-read-json.test.ts holds it to that).
 */
import { toVaultSecret } from '../resources/objects.ts';
import type { ActiveSecret } from '../resources/store.ts';
import type { VaultObject } from '../vaults/schemas.ts';
import { jsonText } from '../http/fields.ts';

/** A secret's object as JSON, split where its value goes: `head` + `,"value":…` + `tail`. */
type SecretJson = { head: string; tail: string };

// Keyed by the store's frozen rows, which stay the same objects until a write replaces them,
// so an entry lives exactly as long as the cached row it describes. Metadata only.
const serialised = new WeakMap<ActiveSecret, SecretJson>();

function secretJson(secret: ActiveSecret): SecretJson {
  let json = serialised.get(secret);
  if (json) return json;
  const full = JSON.stringify(toVaultSecret(secret));
  const head = JSON.stringify({ id: secret.id, name: secret.name }).slice(0, -1);
  // toVaultSecret writes id and name first and the value right after them.
  if (!full.startsWith(head)) throw new Error('toVaultSecret no longer starts with id and name');
  json = { head, tail: full.slice(head.length) };
  serialised.set(secret, json);
  return json;
}

/**
 * The vault (as `toVaultObject` made it, without `secrets`) and its secrets as a JSON response; `valueOf` gives each secret's value, or
 * undefined for none. A value that cannot be opened throws out of here, as it did before.
 */
export function vaultWithSecretsJson(
  vault: VaultObject,
  secrets: readonly ActiveSecret[],
  valueOf: (secret: ActiveSecret) => string | undefined,
): Response {
  const vaultJson = JSON.stringify(vault);
  let body = `${vaultJson.slice(0, -1)},"secrets":[`;
  for (let i = 0; i < secrets.length; i++) {
    const secret = secrets[i]!;
    const { head, tail } = secretJson(secret);
    const value = valueOf(secret);
    if (i > 0) body += ',';
    body += value === undefined ? head + tail : `${head},"value":${JSON.stringify(value)}${tail}`;
  }
  body += ']}';
  return jsonText(body);
}
