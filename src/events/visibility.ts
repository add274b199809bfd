/**
 * Which events a key may see (`GET /v1/events`, `GET /v1/events/:id`, and any later stream): an
 * event follows the visibility of the object it describes. Its project decides first (a key
 * limited to projects sees those projects' events; instance-wide events are for keys limited to
 * nothing); an `api_key.*` event is further seen only by keys that may manage that key, exactly
 * as `GET /v1/api-keys` lists it (so an admin key's metadata stays with admins). Webhook
 * deliveries apply the same rule through `EventInput.visibleTo`.
 *
 * Keys without `events:read` (readers, contributors, access keys: the keys that run programs)
 * may still follow the stream of the resources they read: {@link canSeeResourceEvent}.
 */
import { and, not, or, sql, type SQL } from 'drizzle-orm';
import { canManageKey, type VaultResolver } from '../access/grants.ts';
import type { KeyGrant } from '../access/principal.ts';
import { canSeeVault, hasProjectScope, projectScopeFilter } from '../access/visibility.ts';
import type { Db } from '../db/client.ts';
import { keyGrantOf, listApiKeys, vaultResolver } from '../keys/service.ts';
import type { EventPayload } from '../ledger/emit.ts';
import { events } from '../db/schema/events.ts';

const API_KEY_EVENT_PREFIX = 'api_key.';
/** The events a key without `events:read` may stream. */
export const RESOURCE_EVENT_PREFIX = 'resource.';

/** The ids of the API keys `viewer` may manage (every key for an admin: not computed). */
function manageableKeyIds(db: Db, viewer: KeyGrant): string[] {
  const resolveVault = vaultResolver(db);
  return listApiKeys(db)
    .filter((row) => canManageKey(viewer, keyGrantOf(row), resolveVault))
    .map((row) => row.id);
}

/** A WHERE condition selecting the events `viewer` may see; undefined for admins. */
export function visibleEventFilter(db: Db, viewer: KeyGrant): SQL | undefined {
  if (viewer.role === 'admin') return undefined;
  const keyIds = JSON.stringify(manageableKeyIds(db, viewer));
  const isKeyEvent = sql`substr(${events.type}, 1, ${API_KEY_EVENT_PREFIX.length}) = ${API_KEY_EVENT_PREFIX}`;
  return and(
    projectScopeFilter(viewer, events.projectId),
    or(
      not(isKeyEvent),
      sql`json_extract(${events.payload}, '$.data.object.id') IN (SELECT value FROM json_each(${keyIds}))`,
    ),
  );
}

/** True when `viewer` may see one event (the rule of {@link visibleEventFilter}). */
export function canSeeEvent(
  db: Db,
  viewer: KeyGrant,
  event: { projectId: string | null; payload: EventPayload },
): boolean {
  if (viewer.role === 'admin') return true;
  const inScope =
    event.projectId === null
      ? viewer.projectIds.length === 0 && viewer.vaultIds.length === 0
      : hasProjectScope(viewer, event.projectId);
  if (!inScope) return false;
  if (!event.payload.type.startsWith(API_KEY_EVENT_PREFIX)) return true;
  return manageableKeyIds(db, viewer).includes(String(event.payload.data.object.id));
}

/**
 * The stream rule for a key without `events:read`: a `resource.*` event of a vault the key
 * reaches now (`canSeeVault`: its grants, its projects, restricted vaults only by grant or as a
 * manager), exactly the resources it could list. `resolveVault` gives the vault's current state
 * (undefined once it is gone: nothing more of it is seen).
 */
export function canSeeResourceEvent(
  viewer: KeyGrant,
  payload: EventPayload,
  resolveVault: VaultResolver,
): boolean {
  if (!payload.type.startsWith(RESOURCE_EVENT_PREFIX)) return false;
  const vaultId = payload.data.object.vault_id;
  if (typeof vaultId !== 'string') return false;
  const vault = resolveVault(vaultId);
  return vault !== undefined && canSeeVault(viewer, vault);
}
