/**
 * Which webhooks a caller reaches: a webhook of a project is reached by keys with scope over that
 * project, an instance-wide one (no `project_id`) only by keys limited to no project or vault
 * (admins, unlimited managers). Anything else answers a hidden 404. Shared by the webhook and
 * the delivery handlers.
 */
import { principalOf, type KeyGrant } from '../access/principal.ts';
import { hasProjectScope, hideAsNotFound } from '../access/visibility.ts';
import type { Db } from '../db/client.ts';
import { ForbiddenError, NotFoundError } from '../errors.ts';
import { findProject } from '../projects/service.ts';
import { findWebhook } from './service.ts';
import type { WebhookRow } from '../db/schema/webhooks.ts';

/** The webhook, if it exists and the caller reaches it; else a (hidden) 404. */
export function reachableWebhook(db: Db, request: Request, id: string): WebhookRow {
  const row = findWebhook(db, id);
  if (!row) throw new NotFoundError('Webhook');
  if (!reaches(principalOf(request), row.projectId)) hideAsNotFound(request, 'Webhook');
  return row;
}

/** Checks that the caller may attach a webhook to `projectId` (null: every project). */
export function assertProjectFilter(db: Db, request: Request, projectId: string | null): void {
  const key = principalOf(request);
  if (projectId === null) {
    if (!isUnlimited(key)) {
      throw new ForbiddenError(
        'A key limited to projects or vaults must give the project_id of one of its projects',
      );
    }
    return;
  }
  if (!hasProjectScope(key, projectId)) hideAsNotFound(request, 'Project');
  if (!findProject(db, projectId)) throw new NotFoundError('Project');
}

/** True for keys limited to no project or vault: they reach instance-wide webhooks. */
function isUnlimited(key: KeyGrant): boolean {
  return key.role === 'admin' || (key.projectIds.length === 0 && key.vaultIds.length === 0);
}

/** True when the key may see and manage a webhook with this project filter. */
function reaches(key: KeyGrant, projectId: string | null): boolean {
  return projectId === null ? isUnlimited(key) : hasProjectScope(key, projectId);
}
