/**
 * `POST /v1/vaults/:id/secrets/import` (docs/api.md §10): atomic bulk create/update of a vault's
 * secrets, for `secryn env import`. All or nothing: any bad entry is a 400/413 naming
 * `secrets.N.<field>` and nothing is stored. One version, one audit entry and one event per
 * secret that changed, plus the request's own `resource.import` entry, in one transaction.
 *
 * Routes:
 *   POST /v1/vaults/:id/secrets/import   importSecretsHandler
 */
import { Elysia } from 'elysia';
import { principalOf } from '../access/principal.ts';
import { assertVaultVisible } from '../access/visibility.ts';
import { NotFoundError } from '../errors.ts';
import type { Instance } from '../instance.ts';
import { commitChange } from '../changes/index.ts';
import { canReveal } from '../resources/reveal.ts';
import { findVault, vaultRefOf } from '../vaults/service.ts';
import {
  ImportBody,
  ImportParams,
  ImportResult,
  MAX_IMPORT_SECRETS,
  type ImportInput,
} from './schemas.ts';
import { importSecrets, prepareImport } from './service.ts';

/** The import route. */
export function secretImportRoutes(instance: Instance) {
  return new Elysia({ name: 'secrets-import' }).post(
    '/v1/vaults/:id/secrets/import',
    ({ params, body, request }) => importSecretsHandler(instance, request, params.id, body),
    {
      params: ImportParams,
      body: ImportBody,
      // Declares the JSON body to the OpenAPI document; the app's own parser still reads it.
      parse: 'json',
      response: { 200: ImportResult },
      detail: {
        summary: 'Import secrets into a vault',
        description:
          `Creates or updates up to ${MAX_IMPORT_SECRETS} secrets at once, all or nothing: ` +
          'each entry is checked as a single creation would check it, and a bad one (or a ' +
          'name sent twice) is a 400 naming `secrets.N.name` or `secrets.N.value` (413 for a ' +
          'value over resources.max_value_bytes), with nothing stored. A secret that exists ' +
          'gets a new version when its value differs; `content_type`, when sent, replaces its ' +
          'content type. `unchanged` is only reported to keys with resources:reveal; for ' +
          'others any value sent makes a new version, so the answer never depends on the ' +
          'current value. One audit entry and one event per changed secret. Accepts an ' +
          'Idempotency-Key header.',
        tags: ['resources'],
      },
    },
  );
}

/** Checks the vault and every entry, then commits the import in one write job. */
async function importSecretsHandler(
  instance: Instance,
  request: Request,
  vaultId: string,
  body: ImportInput,
) {
  const { db, config } = instance;
  const vault = findVault(db, vaultId);
  if (!vault) throw new NotFoundError('Vault');
  assertVaultVisible(request, vaultRefOf(vault));
  const entries = await prepareImport(vault, body, {
    maxValueBytes: config.resources.max_value_bytes,
  });
  const caller = principalOf(request);
  // A writer who may not reveal must not learn whether a value equals the current one.
  const blind = !canReveal(request);
  return commitChange(instance, request, 200, () => {
    // The vault may have been deleted while the entries were checked.
    if (!findVault(db, vault.id)) throw new NotFoundError('Vault');
    return { body: importSecrets(instance, request, vault, entries, caller, blind) };
  });
}
