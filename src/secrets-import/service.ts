/**
 * Atomic bulk create/update of a vault's secrets: every entry is checked exactly as a single
 * `POST /v1/resources` would check it before anything is written, then one write job creates or
 * updates each secret, with one version, one audit entry and one event per secret that changed.
 */
import type { Principal } from '../access/principal.ts';
import { appendAuditEntry, requestAuditEntry } from '../ledger/audit-record.ts';
import { AppError, InvalidRequestError } from '../errors.ts';
import { emitEvent } from '../ledger/emit.ts';
import type { Instance } from '../instance.ts';
import { prepareNewResource, type PreparedResource, type ValueLimits } from '../resources/input.ts';
import { assertResourceName } from '../http/names.ts';
import { toResourceObject } from '../resources/objects.ts';
import {
  findSecretByName,
  insertResource,
  newResourceId,
  updateResource,
} from '../resources/store.ts';
import type { ResourceRow } from '../db/schema/resources.ts';
import type { VaultRow } from '../db/schema/vaults.ts';
import type { ImportInput, ImportResultObject } from './schemas.ts';

/** One checked entry: what a single creation would insert, and whether a type was sent. */
export type PreparedEntry = { secret: PreparedResource; contentTypeSent: boolean };

/**
 * Checks every entry with the single-creation rules (`prepareNewResource`: size limit, valid
 * Unicode, name in NFC) and refuses duplicate names. Errors name `secrets.N.<field>`; nothing is
 * written here.
 * @throws InvalidRequestError (400) or PayloadTooLargeError (413) for the first bad entry.
 */
export async function prepareImport(
  vault: Pick<VaultRow, 'id'>,
  body: ImportInput,
  limits: ValueLimits,
): Promise<PreparedEntry[]> {
  const seen = new Set<string>();
  const prepared: PreparedEntry[] = [];
  for (const [index, entry] of body.secrets.entries()) {
    const prefix = `secrets.${index}`;
    try {
      const name = assertResourceName(entry.name, 'name');
      if (seen.has(name)) throw new InvalidRequestError('name', 'Duplicate name in this import');
      seen.add(name);
      const secret = await prepareNewResource(
        {
          type: 'secret',
          name,
          value: entry.value,
          content_type: entry.content_type,
          vault_id: vault.id,
        },
        limits,
      );
      prepared.push({ secret, contentTypeSent: entry.content_type !== undefined });
    } catch (error) {
      throw withFieldPrefix(error, prefix);
    }
  }
  return prepared;
}

/** The same error with `details.field` placed under `prefix` (`value` → `secrets.3.value`). */
function withFieldPrefix(error: unknown, prefix: string): unknown {
  if (error instanceof AppError && typeof error.details?.field === 'string') {
    error.details.field = `${prefix}.${error.details.field}`;
  }
  return error;
}

/**
 * The write job of an import (run inside `commitChange`): creates the secrets that do not exist
 * in the vault, gives the others a new version when their value differs (always, when `blind`:
 * a caller who may not reveal values must not learn whether one is equal) or their content type
 * changes, and records one audit entry (`resource.created` / `resource.updated`, as the single
 * routes do) and one event per secret that changed.
 */
export function importSecrets(
  instance: Pick<Instance, 'db' | 'sqlite' | 'keyring' | 'clock'>,
  request: Request,
  vault: Pick<VaultRow, 'id' | 'projectId'>,
  entries: PreparedEntry[],
  caller: Pick<Principal, 'keyId'>,
  blind: boolean,
): ImportResultObject {
  const { db, sqlite, keyring, clock } = instance;
  const now = clock.now();
  const result: ImportResultObject = { created: [], updated: [], unchanged: [] };
  const record = (action: 'resource.created' | 'resource.updated', row: ResourceRow) => {
    const entry = requestAuditEntry(request, 200);
    if (entry) {
      appendAuditEntry(db, clock, {
        ...entry,
        action,
        target: { type: 'resource', id: row.id },
      });
    }
    emitEvent(db, clock, {
      type: action,
      projectId: row.projectId,
      object: toResourceObject(row),
    });
  };
  for (const { secret, contentTypeSent } of entries) {
    const existing = findSecretByName(sqlite, vault.id, secret.name);
    if (!existing) {
      const row = insertResource(
        db,
        keyring,
        {
          ...secret,
          id: newResourceId(),
          vaultId: vault.id,
          projectId: vault.projectId,
          createdBy: caller.keyId,
        },
        now,
      );
      result.created.push(row.name);
      record('resource.created', row);
      continue;
    }
    const { row, changed } = updateResource(
      db,
      keyring,
      existing.id,
      {
        metadata: contentTypeSent ? { contentType: secret.contentType ?? undefined } : {},
        value: secret.value,
      },
      undefined,
      caller.keyId,
      now,
      blind,
    );
    if (!changed) {
      result.unchanged.push(row.name);
      continue;
    }
    result.updated.push(row.name);
    record('resource.updated', row);
  }
  return result;
}
