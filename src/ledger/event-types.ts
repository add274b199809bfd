/**
 * The event types of docs/api.md §6. Webhook subscriptions are checked against this list so that a
 * typo (`resource.create`) is a 400 at save time instead of a subscription that never fires.
 * A feature that emits a new type adds it here.
 */
export const EVENT_TYPES = [
  'resource.created',
  'resource.updated',
  'resource.deleted',
  'resource.restored',
  'resource.expiring',
  'resource.expired',
  'vault.created',
  'vault.updated',
  'vault.deleted',
  'project.created',
  'project.updated',
  'project.deleted',
  'api_key.created',
  'api_key.revoked',
  'webhook.disabled',
  'master_key.rotated',
  'backup.completed',
  'backup.failed',
  'ping',
] as const;

/** One of {@link EVENT_TYPES}. */
export type EventType = (typeof EVENT_TYPES)[number];

/** Subscribes to every type. */
export const ALL_EVENTS = '*';

/** True for a known event type. */
export function isEventType(value: string): value is EventType {
  return (EVENT_TYPES as readonly string[]).includes(value);
}
