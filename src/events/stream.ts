/**
 * The event streams behind `GET /v1/events/stream`: one hub per server that bounds the open
 * streams (per key and in total), replays stored events from a resume point, then fans out each
 * newly committed event to the streams that may see it, and sends heartbeats.
 *
 * Ordering: events are read from the `events` table in `seq` (commit) order, never from memory;
 * a stream replays in batches up to the newest stored event and only then joins the hub, whose
 * reads skip what a stream already has (`cursor`), so the replay and the live part meet with no
 * gap and no duplicate. The hub reads after every commit that wrote an event (src/ledger/commit-signal.ts)
 * and once a second for events written by other processes (the CLI).
 */
import type { Database } from 'bun:sqlite';
import type { VaultResolver } from '../access/grants.ts';
import type { Principal } from '../access/principal.ts';
import { RateLimitedError } from '../access/rate-limit.ts';
import type { Clock } from '../clock.ts';
import type { Db } from '../db/client.ts';
import type { Logger } from '../log/logger.ts';
import { onEventsCommitted } from '../ledger/commit-signal.ts';
import type { EventPayload } from '../ledger/emit.ts';
import {
  eventsAfter,
  lastPosition,
  streamKeyState,
  streamVaultRef,
  type StoredEvent,
} from './stream-store.ts';
import { canSeeEvent, canSeeResourceEvent } from './visibility.ts';

/** The `[events]` stream settings. */
export type StreamSettings = {
  heartbeatMs: number;
  maxPerKey: number;
  maxTotal: number;
};

/**
 * Which events a stream wants (the filters of `GET /v1/events`, plus vaults: an event whose
 * object is in one of `vaultIds`), and under which rule it may see them: `resourcesOnly` for a
 * key without `events:read` (src/events/visibility.ts `canSeeResourceEvent`).
 */
export type StreamFilter = {
  type?: string;
  projectId?: string;
  vaultIds?: readonly string[];
  resourcesOnly?: boolean;
};

/** Events read per query, in the replay and in the hub. */
const BATCH = 500;
/** Chunks a client may leave unread before its stream is closed (it resumes from its last id). */
const MAX_UNREAD_CHUNKS = 1024;
/** How often the hub looks for events written by other processes. */
const POLL_MS = 1000;
/** What a 429 tells the client to wait before trying again. */
export const STREAM_RETRY_AFTER_SECONDS = 5;

const encoder = new TextEncoder();

/** One event as a Server-Sent Events message: its id (for Last-Event-ID) and its payload. */
function message(event: StoredEvent): string {
  const id = (JSON.parse(event.payload) as EventPayload).id;
  // The payload is JSON on one line: no `data:` line break to escape.
  return `id: ${id}\ndata: ${event.payload}\n\n`;
}

function wants(filter: StreamFilter, event: StoredEvent): boolean {
  if (filter.projectId !== undefined && event.projectId !== filter.projectId) return false;
  if (filter.type === undefined) return true;
  return filter.type.endsWith('.*')
    ? event.type.startsWith(filter.type.slice(0, -1))
    : event.type === filter.type;
}

/** The vault an event's object lies in (a vault event: the vault itself), if any. */
function vaultOf(payload: EventPayload): unknown {
  const object = payload.data.object;
  return payload.type.startsWith('vault.') ? object.id : object.vault_id;
}

type Stream = {
  key: Principal;
  filter: StreamFilter;
  /** Position of the last event considered (sent or filtered out). */
  cursor: number;
  controller: ReadableStreamDefaultController<Uint8Array>;
  /** Live: the hub delivers to it (the replay is done). */
  live: boolean;
  /** The stored grant when the stream opened: a change ends it. */
  grant: string;
  /** Heartbeats since it opened without the client having pulled once (response never sent). */
  unpulledTicks: number;
  close(reason: string): void;
};

/** The hub: create one per server (features.ts), `start` it, `stop` it on shutdown. */
export class EventStreamHub {
  private readonly streams = new Set<Stream>();
  private readonly perKey = new Map<string, number>();
  private hubCursor = 0;
  private timers: ReturnType<typeof setInterval>[] = [];
  private unsubscribe: (() => void) | undefined;
  /** The vaults' current state (restricted or not, gone), for the resource-only streams. */
  private readonly resolveVault: VaultResolver;

  constructor(
    private readonly deps: { sqlite: Database; db: Db; clock: Clock; logger: Logger },
    private readonly settings: StreamSettings,
  ) {
    this.resolveVault = (id) => streamVaultRef(deps.sqlite, id);
  }

  /** Open streams (for tests and metrics). */
  get size(): number {
    return this.streams.size;
  }

  start(): void {
    this.hubCursor = lastPosition(this.deps.sqlite);
    this.unsubscribe = onEventsCommitted(() => this.dispatch());
    this.timers = [
      setInterval(() => this.dispatch(), POLL_MS),
      setInterval(() => this.heartbeat(), this.settings.heartbeatMs),
    ];
    for (const timer of this.timers) timer.unref();
  }

  /** Ends every stream (clients reconnect elsewhere or later) and stops the timers. */
  stop(): void {
    this.unsubscribe?.();
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    for (const stream of [...this.streams]) stream.close('server stopping');
  }

  /**
   * Opens a stream for `key` from position `from` (events after it are replayed first): the
   * body of the response. Takes one of the key's stream slots, freed when the stream ends.
   * @throws RateLimitedError (429) when the key or the server has no slot left.
   */
  open(key: Principal, filter: StreamFilter, from: number, signal: AbortSignal): ReadableStream {
    const held = this.perKey.get(key.keyId) ?? 0;
    if (held >= this.settings.maxPerKey || this.streams.size >= this.settings.maxTotal) {
      throw new RateLimitedError(STREAM_RETRY_AFTER_SECONDS);
    }
    const grant = streamKeyState(this.deps.sqlite, key.keyId)?.grant ?? '';
    this.perKey.set(key.keyId, held + 1);
    let stream!: Stream;
    let closed = false;
    const release = () => {
      if (closed) return;
      closed = true;
      this.streams.delete(stream);
      const left = (this.perKey.get(key.keyId) ?? 1) - 1;
      if (left > 0) this.perKey.set(key.keyId, left);
      else this.perKey.delete(key.keyId);
    };
    const body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          stream = {
            key,
            filter,
            cursor: from,
            controller,
            live: false,
            grant,
            unpulledTicks: 0,
            close: (reason) => {
              if (closed) return;
              release();
              try {
                controller.enqueue(encoder.encode(`: closed: ${reason}\n\n`));
                controller.close();
              } catch {
                // Already closed or errored by the client going away.
              }
            },
          };
          this.streams.add(stream);
          // A comment first: the client sees the response start at once.
          controller.enqueue(encoder.encode(': connected\n\n'));
        },
        pull: () => {
          stream.unpulledTicks = -1;
          if (!stream.live) this.replayBatch(stream);
        },
        cancel: release,
      },
      // One chunk buffered ahead: the replay reads a batch only when the client took the last.
      { highWaterMark: 1 },
    );
    signal.addEventListener('abort', release, { once: true });
    return body;
  }

  /** Sends the next batch of stored events after the stream's cursor; goes live when caught up. */
  private replayBatch(stream: Stream): void {
    // Until something is sent: a pull that enqueues nothing is not called again.
    for (let sent = false; !sent && !stream.live; ) {
      const rows = eventsAfter(this.deps.sqlite, stream.cursor, BATCH);
      sent = this.deliver(stream, rows);
      // Fewer than a batch: every stored event is sent; from now on the hub delivers. Nothing
      // can commit between that read and this line (both synchronous): no event falls between.
      if (rows.length < BATCH) stream.live = true;
    }
  }

  /** Sends the rows after the stream's cursor that it wants and may see; true if any. */
  private deliver(stream: Stream, rows: StoredEvent[]): boolean {
    let chunk = '';
    for (const row of rows) {
      if (row.seq <= stream.cursor) continue;
      stream.cursor = row.seq;
      if (!wants(stream.filter, row)) continue;
      const payload = JSON.parse(row.payload) as EventPayload;
      const { vaultIds, resourcesOnly } = stream.filter;
      if (vaultIds !== undefined && !vaultIds.includes(vaultOf(payload) as string)) continue;
      const visible = resourcesOnly
        ? canSeeResourceEvent(stream.key, payload, this.resolveVault)
        : canSeeEvent(this.deps.db, stream.key, { projectId: row.projectId, payload });
      if (!visible) continue;
      chunk += message(row);
    }
    if (chunk === '') return false;
    const { controller } = stream;
    // A client that stopped reading: end its stream rather than buffer without bound.
    if ((controller.desiredSize ?? 0) < -MAX_UNREAD_CHUNKS) {
      stream.close('client too slow; resume with Last-Event-ID');
      return true;
    }
    try {
      controller.enqueue(encoder.encode(chunk));
    } catch {
      stream.close('write failed');
    }
    return true;
  }

  /** Reads the events committed since the last read and hands them to the live streams. */
  private dispatch(): void {
    if (this.streams.size === 0) {
      this.hubCursor = lastPosition(this.deps.sqlite);
      return;
    }
    // Only outside a transaction: what a write job has not committed must not be sent.
    if (this.deps.sqlite.inTransaction) return void setImmediate(() => this.dispatch());
    let keyChanged = false;
    for (;;) {
      const rows = eventsAfter(this.deps.sqlite, this.hubCursor, BATCH);
      if (rows.length === 0) break;
      this.hubCursor = rows[rows.length - 1]!.seq;
      for (const stream of this.streams) if (stream.live) this.deliver(stream, rows);
      keyChanged ||= rows.some((row) => row.type.startsWith('api_key.'));
      if (rows.length < BATCH) break;
    }
    // A key revoked or changed: its streams end now rather than at the next heartbeat.
    if (keyChanged) this.checkKeys();
  }

  /** Ends the streams whose key was revoked, expired, deleted or given another grant. */
  private checkKeys(): void {
    const now = this.deps.clock.now();
    const states = new Map<string, string | undefined>();
    for (const stream of [...this.streams]) {
      const id = stream.key.keyId;
      if (!states.has(id)) {
        const state = streamKeyState(this.deps.sqlite, id);
        const usable =
          state !== undefined &&
          state.revokedAt === null &&
          (state.expiresAt === null || state.expiresAt > now);
        states.set(id, usable ? state.grant : undefined);
      }
      const grant = states.get(id);
      if (grant === undefined) stream.close('the API key is no longer valid');
      else if (grant !== stream.grant) stream.close('the API key changed; reconnect');
    }
  }

  /** A comment line on every stream, after checking that each key is still valid. */
  private heartbeat(): void {
    if (this.streams.size === 0) return;
    this.checkKeys();
    const beat = encoder.encode(': heartbeat\n\n');
    for (const stream of [...this.streams]) {
      // A response that was never sent (its request failed after the stream was opened).
      if (stream.unpulledTicks >= 0 && ++stream.unpulledTicks > 2) {
        stream.close('never read');
        continue;
      }
      try {
        stream.controller.enqueue(beat);
      } catch {
        stream.close('write failed');
      }
    }
  }
}
