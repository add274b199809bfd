/**
 * API keys in the database, shared by the HTTP routes and the `secryn keys` commands. The
 * write functions are synchronous and run inside the caller's transaction (a group-committed
 * write job with its audit entry, or the CLI's IMMEDIATE transaction). Authorization (who may
 * create or see which key) is the caller's job, through `src/access/grants.ts`.
 */
import { emitEvent } from '../ledger/emit.ts';
import { and, desc, eq, isNull, sql } from 'drizzle-orm';
import { ROLE_PERMISSIONS, type Permission, type Role } from '../access/permissions.ts';
import { noteApiKeyChange } from '../access/authenticate.ts';
import { canManageKey, type VaultResolver } from '../access/grants.ts';
import type { KeyGrant, KeyRateLimit } from '../access/principal.ts';
import { generateApiToken, hashApiToken } from '../crypto/api-token.ts';
import type { Db } from '../db/client.ts';
import { toRfc3339 } from '../db/columns.ts';
import { ConflictError, InvalidRequestError } from '../errors.ts';
import { findProject } from '../projects/service.ts';
import { findVault, vaultRefOf } from '../vaults/service.ts';
import { LATEST_TIMESTAMP_MS, PROJECT_ID_PATTERN, VAULT_ID_PATTERN } from '../http/schemas.ts';
import type { ApiKeyObject } from './schemas.ts';
import { sealApiKeyRow } from '../keyring/api-key-mac.ts';
import { apiKeys, type ApiKeyRow } from '../db/schema/keys.ts';
import { newTypeId } from '../ids.ts';
import { DURATION_UNIT_MS } from '../clock.ts';

/** Everything that defines a new key. */
export type NewApiKey = KeyGrant & {
  name: string;
  rateLimit?: KeyRateLimit;
};

/** A new key id, `key_` + a time-ordered TypeID. */
export function newApiKeyId(): string {
  return newTypeId('key');
}

/** The grant (role, reach, scopes, expiry) of a stored key. */
export function keyGrantOf(row: ApiKeyRow): KeyGrant {
  return {
    role: row.role,
    projectIds: row.projectIds,
    vaultIds: row.vaultIds,
    scopes: row.scopes,
    expiresAt: row.expiresAt,
  };
}

/**
 * Checks a new key for consistency (not for the creator's rights): admin keys cannot be
 * limited, scopes must be permissions of the role, ids must look like ids, and the expiry must
 * lie in the future.
 * @throws InvalidRequestError naming the API field.
 */
export function checkNewApiKey(key: NewApiKey, now: number): void {
  if (key.role === 'admin' && (key.projectIds.length > 0 || key.vaultIds.length > 0)) {
    throw new InvalidRequestError(
      key.projectIds.length > 0 ? 'project_ids' : 'vault_ids',
      'An admin key reaches everything and cannot be limited; use the manager role',
    );
  }
  const badProject = key.projectIds.find((id) => !PROJECT_ID_PATTERN.test(id));
  if (badProject !== undefined) {
    throw new InvalidRequestError('project_ids', 'Must be project ids (prj_...)');
  }
  const badVault = key.vaultIds.find((id) => !VAULT_ID_PATTERN.test(id));
  if (badVault !== undefined)
    throw new InvalidRequestError('vault_ids', 'Must be vault ids (vlt_...)');
  checkScopes(key.role, key.scopes);
  checkExpiry(key.expiresAt, now);
}

/**
 * Checks that every project and vault a new key names exists (after the grant check, so that a
 * limited caller learns nothing about objects outside its reach).
 * @throws InvalidRequestError naming the first unknown id's field.
 */
export function checkKeyReferences(db: Db, key: Pick<KeyGrant, 'projectIds' | 'vaultIds'>): void {
  const unknownProject = key.projectIds.find((id) => !findProject(db, id));
  if (unknownProject !== undefined) {
    throw new InvalidRequestError('project_ids', 'Names a project that does not exist');
  }
  const unknownVault = key.vaultIds.find((id) => !findVault(db, id));
  if (unknownVault !== undefined) {
    throw new InvalidRequestError('vault_ids', 'Names a vault that does not exist');
  }
}

/** Looks vaults up for the no-escalation rules (see `VaultResolver`). */
export function vaultResolver(db: Db): VaultResolver {
  return (vaultId) => {
    const row = findVault(db, vaultId);
    return row ? vaultRefOf(row) : undefined;
  };
}

/** @throws InvalidRequestError when a scope is not a permission of the role. */
export function checkScopes(role: Role, scopes: readonly Permission[] | null): void {
  if (scopes === null) return;
  if (scopes.length === 0) {
    throw new InvalidRequestError(
      'scopes',
      "Must not be empty; omit it for all of the role's permissions",
    );
  }
  // The reason names the role (one of four known values), never the submitted scopes.
  if (scopes.some((scope) => !ROLE_PERMISSIONS[role].includes(scope))) {
    throw new InvalidRequestError(
      'scopes',
      `Not permissions of the ${role} role: a key's scopes narrow its role's permissions`,
    );
  }
}

/**
 * @throws InvalidRequestError when an expiry is not in the future, or lies beyond what the API
 * can show (a zone offset can push `9999-12-31T23:59:59-23:59` there; `secryn keys create
 * --expires-in 999999w` stored `+021192-04-06T01:02Z`).
 */
export function checkExpiry(expiresAt: number | null, now: number): void {
  if (expiresAt !== null && !(expiresAt > now)) {
    throw new InvalidRequestError('expires_at', 'Must be in the future');
  }
  if (expiresAt !== null && expiresAt > LATEST_TIMESTAMP_MS) {
    throw new InvalidRequestError(
      'expires_at',
      `Must be no later than ${toRfc3339(LATEST_TIMESTAMP_MS)}`,
    );
  }
}

const DURATION = /^([1-9][0-9]{0,5})([smhdw])$/;

/** Milliseconds of a duration such as `90d`, `12h`, `30m`, `2w`, `45s`; undefined if malformed. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * DURATION_UNIT_MS[match[2] as keyof typeof DURATION_UNIT_MS];
}

/**
 * Inserts a key with a fresh token and returns the row and the token (to be shown once).
 * Retries with a new token on the (≈ 2^-72) chance that its lookup id is taken.
 */
export function insertApiKey(
  db: Db,
  id: string,
  key: NewApiKey,
  createdBy: string,
  now: number,
): { row: ApiKeyRow; token: string } {
  noteApiKeyChange();
  for (let attempt = 1; ; attempt++) {
    const generated = generateApiToken();
    try {
      const row = db
        .insert(apiKeys)
        .values({
          id,
          name: key.name,
          role: key.role,
          lookupId: generated.lookupId,
          tokenHash: Buffer.from(hashApiToken(generated.token)),
          projectIds: [...key.projectIds],
          vaultIds: [...key.vaultIds],
          scopes: key.scopes === null ? null : [...key.scopes],
          rateLimitPerMinute: key.rateLimit?.requestsPerMinute ?? null,
          rateLimitBurst: key.rateLimit?.burst ?? null,
          expiresAt: key.expiresAt,
          createdAt: now,
          createdBy,
        })
        .returning()
        .get();
      sealApiKeyRow(db, id);
      return { row, token: generated.token };
    } catch (error) {
      if (attempt < 3 && isLookupIdCollision(error)) continue;
      throw error;
    }
  }
}

function isLookupIdCollision(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (e.message.includes('api_keys.lookup_id')) return true;
  }
  return false;
}

/**
 * The reads of every request, prepared once per connection: an unprepared drizzle query is
 * built and prepared again on each call (~100 µs here, against ~9 µs prepared).
 */
function prepareReads(db: Db) {
  return {
    byId: db
      .select()
      .from(apiKeys)
      .where(eq(apiKeys.id, sql.placeholder('id')))
      .prepare(),
    all: db.select().from(apiKeys).orderBy(desc(apiKeys.createdAt), desc(apiKeys.id)).prepare(),
  };
}

const preparedByDb = new WeakMap<Db, ReturnType<typeof prepareReads>>();

function preparedReads(db: Db): ReturnType<typeof prepareReads> {
  let reads = preparedByDb.get(db);
  if (!reads) {
    reads = prepareReads(db);
    preparedByDb.set(db, reads);
  }
  return reads;
}

/** One key by id (revoked ones included). */
export function findApiKey(db: Db, id: string): ApiKeyRow | undefined {
  return preparedReads(db).byId.get({ id });
}

/** Every key, newest first (revoked ones included). */
export function listApiKeys(db: Db): ApiKeyRow[] {
  return preparedReads(db).all.all();
}

/** Revokes a key (keeping the first revocation time) and returns it; undefined if absent. */
export function revokeApiKey(db: Db, id: string, now: number): ApiKeyRow | undefined {
  noteApiKeyChange();
  db.update(apiKeys)
    .set({ revokedAt: now })
    .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
    .run();
  sealApiKeyRow(db, id);
  return findApiKey(db, id);
}

/**
 * Records `api_key.created` / `api_key.revoked` in the outbox; call it inside the write
 * transaction of the change (the API handlers' and the CLI's), not for keys made by init. The
 * object is the key's public metadata (never the token or its hash); a key limited to exactly one
 * project belongs to that project's webhooks, any other to the instance-wide ones; either only
 * when the webhook's audience may manage the key (never for an admin key).
 */
export function emitApiKeyEvent(
  db: Db,
  type: 'api_key.created' | 'api_key.revoked',
  row: ApiKeyRow,
  now: number,
): void {
  const projectIds = row.projectIds;
  emitEvent(
    db,
    { now: () => now },
    {
      type,
      projectId: projectIds.length === 1 ? projectIds[0]! : null,
      object: { ...toApiKeyObject(row) },
      // As `GET /v1/api-keys`: only keys that may manage this one learn about it.
      visibleTo: (viewer) => canManageKey(viewer, keyGrantOf(row), vaultResolver(db)),
    },
  );
}

/** What `PUT /v1/api-keys/:id` may change. */
export type ApiKeyChanges = {
  name?: string;
  scopes?: Permission[] | null;
  expiresAt?: number | null;
};

/**
 * Applies changes to a live key and returns it.
 * @throws ConflictError when the key is revoked (or absent) by the time it is written.
 */
export function updateApiKey(db: Db, id: string, changes: ApiKeyChanges): ApiKeyRow {
  noteApiKeyChange();
  const row = db
    .update(apiKeys)
    .set(changes)
    .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
    .returning()
    .get();
  if (!row) throw new ConflictError('The API key is revoked');
  sealApiKeyRow(db, id);
  return row;
}

/** The API object of a key; `pendingLastUse` is a use not yet flushed to the row. */
export function toApiKeyObject(row: ApiKeyRow, pendingLastUse?: number): ApiKeyObject {
  const lastUsedAt =
    pendingLastUse !== undefined && (row.lastUsedAt === null || pendingLastUse > row.lastUsedAt)
      ? pendingLastUse
      : row.lastUsedAt;
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    project_ids: row.projectIds,
    vault_ids: row.vaultIds,
    scopes: row.scopes,
    expires_at: toRfc3339(row.expiresAt),
    last_used_at: toRfc3339(lastUsedAt),
    created_at: toRfc3339(row.createdAt),
    revoked_at: toRfc3339(row.revokedAt),
    prefix: `scr_${row.lookupId}`,
  };
}

/** The key `secryn init` creates: an unlimited admin key that never expires. */
export const INITIAL_ADMIN_KEY: NewApiKey = {
  name: 'initial admin',
  role: 'admin',
  projectIds: [],
  vaultIds: [],
  scopes: null,
  expiresAt: null,
};
