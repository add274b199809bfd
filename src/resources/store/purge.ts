/** Purging soft-deleted resources for good, with their versions (values included). */
import { and, eq, isNotNull, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { resources, resourceVersions } from '../../db/schema/resources.ts';
import { resourcesChanged } from './lists.ts';

/**
 * Permanently deletes up to `limit` resources deleted before `deletedBefore`, with all their
 * versions (values included), and returns their ids.
 */
export function purgeDeletedResources(db: Db, deletedBefore: number, limit: number): string[] {
  const ids = db
    .select({ id: resources.id })
    .from(resources)
    .where(and(isNotNull(resources.deletedAt), sql`${resources.deletedAt} < ${deletedBefore}`))
    .limit(limit)
    .all()
    .map((row) => row.id);
  if (ids.length > 0) resourcesChanged(db);
  for (const id of ids) {
    db.delete(resourceVersions).where(eq(resourceVersions.resourceId, id)).run();
    db.delete(resources).where(eq(resources.id, id)).run();
  }
  return ids;
}
