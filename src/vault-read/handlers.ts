/** The named handlers of the vault read API (listed in ./routes.ts and ../vaults/routes.ts). */
import { principalOf } from '../access/principal.ts';
import { NotFoundError } from '../errors.ts';
import { builtJson } from '../http/fields.ts';
import { listResponse, readPage } from '../http/pagination.ts';
import type { RouteContext } from '../http/route.ts';
import type { Instance } from '../instance.ts';
import { toResourceObject, toVaultSecret } from '../resources/objects.ts';
import {
  assertServable,
  canReveal,
  markReveal,
  revealsValue,
  visibleLiveResource,
} from '../resources/reveal.ts';
import type {
  VaultReadQuery,
  VaultResourceListQuery,
  VaultResourceParams,
  VaultSecretParams,
} from '../resources/schemas.ts';
import {
  findSecretByName,
  listActiveSecrets,
  listResources,
  openCurrentValue,
  readValue,
  valueLocation,
  type ActiveSecret,
} from '../resources/store.ts';
import type { ValueLocation } from '../crypto/envelope.ts';
import type { ResourceType } from '../db/schema/resources.ts';
import { visibleVault } from '../vaults/reach.ts';
import type { VaultParams, VaultWithSecretsObject } from '../vaults/schemas.ts';
import { toVaultObject } from '../vaults/service.ts';
import type { VaultRow } from '../db/schema/vaults.ts';
import { attachment, PEM_MEDIA_TYPE } from './pem.ts';
import { vaultWithSecretsJson } from './vault-json.ts';

/** The audit action of a vault read that returned secret values. */
export const VAULT_REVEAL_ACTION = 'vault.reveal';

type Deps = Pick<Instance, 'db' | 'sqlite' | 'clock' | 'keyring'>;
type ListContext = RouteContext<{
  params: typeof VaultParams;
  query: typeof VaultResourceListQuery;
}>;
type DownloadContext = RouteContext<{ params: typeof VaultResourceParams }>;

/**
 * Where each listed secret's current value is bound (its AAD location), kept with the store's
 * cached row, which stays the same object until a write replaces it: metadata only, never a
 * value. Rebuilt when the vault's row names another project than the one it was built for.
 */
const locations = new WeakMap<ActiveSecret, ValueLocation>();

/** The location of `secret`'s current value in `vault` as it is now (read for this request). */
function locationOf(secret: ActiveSecret, vault: VaultRow): ValueLocation {
  const known = locations.get(secret);
  if (known?.owner?.vaultId === vault.id && known.owner.projectId === vault.projectId) return known;
  const place = { id: secret.id, vaultId: vault.id, projectId: vault.projectId };
  const location = valueLocation(place, secret.version);
  if (location.owner) Object.freeze(location.owner);
  locations.set(secret, Object.freeze(location));
  return location;
}

/** The handlers, over one instance's database, clock and keyring. */
export function vaultReadHandlers({ db, sqlite, clock, keyring }: Deps) {
  return {
    readVault,
    secretByName,
    listKeys: resourceList('key'),
    listCertificates: resourceList('certificate'),
    downloadKey: download('key'),
    downloadCertificate: download('certificate'),
  };

  /** `GET /v1/vaults/:id`: the vault with its active secrets, or one resource of it. */
  function readVault({
    params,
    query,
    request,
  }: RouteContext<{ params: typeof VaultParams; query: typeof VaultReadQuery }>) {
    const vault = visibleVault(db, request, params.id);
    const key = principalOf(request);
    if (query.resource !== undefined)
      return builtJson(readVaultResource(request, vault, query.resource));
    const object: VaultWithSecretsObject = toVaultObject(vault);
    if (!key.permissions.has('resources:read')) return builtJson(object);
    const now = clock.now();
    if (query.secrets === 'names') {
      object.secrets = listActiveSecrets(sqlite, vault.id, now).map((s) => ({
        id: s.id,
        name: s.name,
      }));
      return builtJson(object);
    }
    const withValues = canReveal(request);
    const secrets = listActiveSecrets(sqlite, vault.id, now);
    const body = vaultWithSecretsJson(object, secrets, (secret) =>
      withValues && secret.sealed
        ? keyring.decryptString(secret.sealed, locationOf(secret, vault))
        : undefined,
    );
    if (withValues && secrets.length > 0) markReveal(request, VAULT_REVEAL_ACTION);
    return body;
  }

  function secretByName({ params, request }: RouteContext<{ params: typeof VaultSecretParams }>) {
    const vault = visibleVault(db, request, params.id);
    const record = findSecretByName(sqlite, vault.id, params.name);
    if (!record) throw new NotFoundError('Secret');
    assertServable(record, clock.now());
    if (!canReveal(request)) return builtJson(toVaultSecret(record));
    markReveal(request);
    return builtJson(toVaultSecret(record, openCurrentValue(keyring, record)));
  }

  function resourceList(type: ResourceType) {
    return function listOfType({ params, query, request, set }: ListContext) {
      const vault = visibleVault(db, request, params.id);
      const page = readPage(query);
      const filters = { vaultId: vault.id, type };
      const { rows, total } = listResources(sqlite, principalOf(request), filters, page);
      const data = rows.map((row) => toResourceObject(row));
      return builtJson(listResponse(request, set, page, total, data));
    };
  }

  function download(type: 'key' | 'certificate') {
    return function downloadPem({ params, request, set }: DownloadContext) {
      const vault = visibleVault(db, request, params.id);
      const record = vaultResource(request, vault, params.res_id, type);
      assertServable(record, clock.now());
      const pem = readValue(sqlite, keyring, record, record.currentVersion);
      set.headers['content-type'] = PEM_MEDIA_TYPE;
      set.headers['content-disposition'] = attachment(`${record.name}.pem`);
      return pem;
    };
  }

  /** `GET /v1/vaults/:id?resource=…`: one resource of the vault, with its value. */
  function readVaultResource(request: Request, vault: VaultRow, id: string) {
    const record = visibleLiveResource(sqlite, request, id);
    if (record.vaultId !== vault.id) throw new NotFoundError('Resource');
    const now = clock.now();
    assertServable(record, now);
    if (!revealsValue(request, record, now)) return toResourceObject(record);
    markReveal(request);
    return toResourceObject(record, openCurrentValue(keyring, record));
  }

  /** A live key or certificate of the vault; else 404. */
  function vaultResource(request: Request, vault: VaultRow, id: string, type: ResourceType) {
    const record = visibleLiveResource(sqlite, request, id);
    if (record.vaultId !== vault.id || record.type !== type) throw new NotFoundError('Resource');
    return record;
  }
}
