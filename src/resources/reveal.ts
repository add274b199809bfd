/**
 * Who gets a value, and when (docs/api.md §4): the helpers every resource read uses, so that the
 * single reads, version reads and the vault read API decide alike.
 *
 * - A value is returned only to keys holding `resources:reveal`, only by single reads, and only
 *   while the resource is enabled and active. The request's audit action then becomes a reveal.
 * - An expired resource answers 410 on every single read.
 * - Deleted resources and those outside the key's vaults are 404 (the latter marked as a denial).
 */
import type { Database } from 'bun:sqlite';
import { principalOf } from '../access/principal.ts';
import { assertVaultVisible } from '../access/visibility.ts';
import { toRfc3339 } from '../db/columns.ts';
import { AppError, GoneError, NotFoundError } from '../errors.ts';
import { requestMeta } from '../http/request-meta.ts';
import { findResource, resourceState, type ResourceRecord } from './store.ts';
import type { ResourceRow } from '../db/schema/resources.ts';

/** The audit action of a request that returned a value. */
export const REVEAL_ACTION = 'resource.reveal';

/**
 * A value that exists but cannot be handed out right now (disabled, or not active yet), on the
 * vault read API, whose single reads exist to return a value: 404 with the reason.
 */
export class ResourceUnavailableError extends AppError {
  constructor(reason: string) {
    super('NOT_FOUND', 'Resource not available', { reason });
  }
}

/** True when the caller's key holds `resources:reveal`. */
export function canReveal(request: Request): boolean {
  return principalOf(request).permissions.has('resources:reveal');
}

/** Records that this request returns a value (its audit entry says so). */
export function markReveal(request: Request, action = REVEAL_ACTION): void {
  requestMeta(request).action = action;
}

/** @throws GoneError (410) when the resource has expired at `now`. */
export function assertNotExpired(
  row: Pick<ResourceRow, 'enabled' | 'activatesAt' | 'expiresAt'>,
  now: number,
): void {
  if (resourceState(row, now) === 'expired') {
    throw new GoneError(`The resource expired at ${toRfc3339(row.expiresAt)}`);
  }
}

/**
 * For reads whose purpose is the value (vault read API): 410 when expired, 404 with a reason
 * when disabled or not active yet.
 */
export function assertServable(
  row: Pick<ResourceRow, 'enabled' | 'activatesAt' | 'expiresAt'>,
  now: number,
): void {
  switch (resourceState(row, now)) {
    case 'expired':
      throw new GoneError(`The resource expired at ${toRfc3339(row.expiresAt)}`);
    case 'disabled':
      throw new ResourceUnavailableError('The resource is disabled');
    case 'inactive':
      throw new ResourceUnavailableError(
        `The resource is not active until ${toRfc3339(row.activatesAt)}`,
      );
    case 'active':
      return;
  }
}

/** Whether a single read by this caller returns the value of `row` at `now`. */
export function revealsValue(
  request: Request,
  row: Pick<ResourceRow, 'enabled' | 'activatesAt' | 'expiresAt'>,
  now: number,
): boolean {
  return canReveal(request) && resourceState(row, now) === 'active';
}

/** Throws a hidden 404 unless the caller reaches the resource's vault. */
export function assertResourceVisible(request: Request, record: ResourceRecord): void {
  assertVaultVisible(
    request,
    { id: record.vaultId, projectId: record.projectId, restricted: record.vaultRestricted },
    'Resource',
  );
}

/** A live (not deleted) resource that the caller reaches; else 404. */
export function visibleLiveResource(
  sqlite: Database,
  request: Request,
  id: string,
): ResourceRecord {
  const record = findResource(sqlite, id);
  if (!record || record.deletedAt !== null) throw new NotFoundError('Resource');
  assertResourceVisible(request, record);
  return record;
}
