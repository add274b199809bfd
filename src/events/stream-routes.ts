/**
 * `GET /v1/events/stream` (docs/api.md §10): the event log as Server-Sent Events, for `secryn run
 * --watch` and the console. The same events and filters as `GET /v1/events` (./visibility.ts),
 * or, for a key without `events:read`, the resource events of the vaults it reaches; resumable with `Last-Event-ID`, heartbeats, and a bounded number of streams (./stream.ts).
 *
 * Routes:
 *   GET /v1/events/stream   streamEvents
 */
import { Elysia, t } from 'elysia';
import { principalOf } from '../access/principal.ts';
import {
  canSeeProject,
  canSeeVault,
  hasProjectScope,
  hideAsNotFound,
} from '../access/visibility.ts';
import { ForbiddenError, GoneError, InvalidRequestError } from '../errors.ts';
import { parseTimestamp, strictObject, VAULT_ID_PATTERN } from '../http/schemas.ts';
import type { Instance } from '../instance.ts';
import { EventListQuery } from './schemas.ts';
import { STREAM_RETRY_AFTER_SECONDS, type EventStreamHub } from './stream.ts';
import { lastPosition, positionBefore, positionOfEvent, streamVaultRef } from './stream-store.ts';

const VAULT_ID = VAULT_ID_PATTERN.source.slice(1, -1);
const EVENT_ID = /^evt_[0-7][0-9a-hjkmnp-tv-z]{25}$/;

export const EventStreamQuery = strictObject({
  type: EventListQuery.properties.type,
  project_id: EventListQuery.properties.project_id,
  since: EventListQuery.properties.since,
  vault_id: t.Optional(
    t.String({
      maxLength: 20 * 31,
      pattern: `^${VAULT_ID}(,${VAULT_ID}){0,19}$`,
      description: 'Only the events of these vaults (comma-separated ids, at most 20)',
      error: 'Must be up to 20 vault ids (vlt_…), comma-separated',
    }),
  ),
  last_event_id: t.Optional(
    t.String({
      maxLength: 64,
      description: 'For clients that cannot send the Last-Event-ID header',
      error: 'Must be an event id',
    }),
  ),
});

/** The route. */
export function eventStreamRoutes(instance: Instance, hub: EventStreamHub) {
  return new Elysia({ name: 'event-stream' }).get(
    '/v1/events/stream',
    ({ query, request, set, server }) => {
      const key = principalOf(request);
      // Without events:read (the keys that run programs): resource.* events of reachable vaults.
      const resourcesOnly = !key.permissions.has('events:read');
      if (resourcesOnly && query.type !== undefined && !query.type.startsWith('resource.')) {
        throw new ForbiddenError(
          'Without events:read, a key may stream resource.* events only (type=resource.*)',
        );
      }
      const resolveVault = (id: string) => streamVaultRef(instance.sqlite, id);
      const grantedProjects = key.vaultIds.flatMap((id) => resolveVault(id)?.projectId ?? []);
      if (
        query.project_id !== undefined &&
        !(resourcesOnly
          ? canSeeProject(key, query.project_id, grantedProjects)
          : hasProjectScope(key, query.project_id))
      ) {
        hideAsNotFound(request, 'Project');
      }
      const vaultIds =
        query.vault_id === undefined ? undefined : [...new Set(query.vault_id.split(','))];
      for (const id of vaultIds ?? []) {
        const vault = resolveVault(id);
        if (vault === undefined || !canSeeVault(key, vault)) hideAsNotFound(request, 'Vault');
      }
      const from = resumePosition(instance, request, query);
      let body: ReadableStream;
      try {
        body = hub.open(
          key,
          { type: query.type, projectId: query.project_id, vaultIds, resourcesOnly },
          from,
          request.signal,
        );
      } catch (error) {
        set.headers['retry-after'] = String(STREAM_RETRY_AFTER_SECONDS);
        throw error;
      }
      // The stream stays quiet between heartbeats: Bun's idle timeout must not cut it.
      server?.timeout(request, 0);
      const headers = new Headers(set.headers as Record<string, string>);
      headers.set('content-type', 'text/event-stream; charset=utf-8');
      headers.set('cache-control', 'no-store');
      // Reverse proxies (nginx) must pass events on as they come.
      headers.set('x-accel-buffering', 'no');
      return new Response(body, { status: 200, headers });
    },
    {
      query: EventStreamQuery,
      detail: {
        summary: 'Stream events (Server-Sent Events)',
        description:
          '`text/event-stream` of the events the key may see, exactly as `GET /v1/events` ' +
          'lists them (filters type, project_id, and vault_id: comma-separated vault ids). A ' +
          'key without events:read (resources:read suffices) is sent only the resource.* ' +
          'events of the vaults it reaches, restricted ones by grant. Each message is `id: evt_…` and ' +
          '`data: <event JSON>`; comment lines (`: heartbeat`) every ' +
          'events.stream_heartbeat_seconds. Without a resume point the stream starts with ' +
          'the next event. `Last-Event-ID` (header, or `last_event_id`) replays every stored ' +
          'event after that one, in order, then continues live, with no gap and no ' +
          'duplicate; an id no longer stored (events.retention_days) is a 410: reload the ' +
          'state and reconnect without it. `since` replays from a time instead. At most ' +
          'events.max_streams_per_key streams per key and events.max_streams in all: 429 ' +
          'with Retry-After beyond. The stream ends when the key is revoked, expires or ' +
          'changes.',
        tags: ['events'],
        responses: {
          200: {
            description: 'The event stream',
            content: { 'text/event-stream': { schema: { type: 'string' } } },
          },
        },
      },
    },
  );
}

/** The position after which events are replayed: the resume id, else `since`, else now. */
function resumePosition(
  instance: Instance,
  request: Request,
  query: { since?: string; last_event_id?: string },
): number {
  const header = request.headers.get('last-event-id');
  const id = header !== null && header.trim() !== '' ? header.trim() : query.last_event_id;
  const field = header !== null && header.trim() !== '' ? 'Last-Event-ID' : 'last_event_id';
  if (id !== undefined) {
    if (!EVENT_ID.test(id)) throw new InvalidRequestError(field, 'Must be an event id (evt_…)');
    const position = positionOfEvent(instance.sqlite, id);
    if (position === undefined) {
      throw new GoneError(
        'This event is no longer stored (events.retention_days): read the current state, ' +
          'then reconnect without a resume point',
      );
    }
    return position;
  }
  if (query.since !== undefined) {
    return positionBefore(instance.sqlite, parseTimestamp(query.since, 'since'));
  }
  return lastPosition(instance.sqlite);
}
