/**
 * Following changes to vaults (`run --watch`, `template render --watch`): a subscription to
 * `GET /v1/events/stream` filtered to `resource.*` events of the given vaults, that reconnects
 * on its own (backoff with jitter, honouring Retry-After) and resumes with `Last-Event-ID`, so no
 * change is missed across a dropped connection. Callers get a coalesced "something changed"
 * (`ChangeBatcher`) rather than the events: they refetch the state, which is always correct,
 * instead of applying events one by one.
 */
import { ExitCode } from '../cli/exit.ts';
import { ClientError, type SecrynClient } from './http.ts';

/** What the watcher reports. */
export type WatchHandlers = {
  /** A `resource.*` event of a watched vault (or, after a lost resume point, "maybe"). */
  onChange(): void;
  /** One line for stderr: a dropped stream, a reconnect (a fatal refusal is `gaveUp`). */
  onNotice(message: string): void;
};

/** Longest wait between reconnects. */
const MAX_BACKOFF_MS = 10_000;
/**
 * No byte (not even a heartbeat, default every 15 s) for this long: the connection is taken as
 * dead (a silent network drop) and reopened.
 */
const IDLE_MS = 60_000;

/** Refusals that retrying cannot cure: the key is gone, lacks the right, or lost the vault. */
const FATAL: ReadonlySet<number> = new Set([
  ExitCode.UNAUTHORIZED,
  ExitCode.FORBIDDEN,
  ExitCode.NOT_FOUND,
]);

/**
 * A running subscription: `ready` resolves at the first connection (or its first failure);
 * `gaveUp` resolves (and only then) when a refusal retrying cannot cure ended it for good, with
 * that refusal, so that each caller decides what watching no more means for it.
 */
export type Watcher = { ready: Promise<boolean>; gaveUp: Promise<ClientError>; stop(): void };

/** Subscribes to the changes of `vaultIds` until `stop()`. */
export function watchVaults(
  client: SecrynClient,
  vaultIds: readonly string[],
  handlers: WatchHandlers,
): Watcher {
  const abort = new AbortController();
  let markReady: (connected: boolean) => void = () => {};
  const ready = new Promise<boolean>((resolve) => (markReady = resolve));
  let giveUp: (error: ClientError) => void = () => {};
  const gaveUp = new Promise<ClientError>((resolve) => (giveUp = resolve));
  const path = `/v1/events/stream?type=resource.*&vault_id=${[...new Set(vaultIds)].join(',')}`;
  let lastEventId: string | undefined;

  void (async () => {
    for (let failures = 0; !abort.signal.aborted; ) {
      let retryAfter: number | undefined;
      try {
        const headers: Record<string, string> = lastEventId ? { 'last-event-id': lastEventId } : {};
        const response = await client.openStream(path, headers, abort.signal);
        if (failures > 0) handlers.onNotice('watching for changes again');
        failures = 0;
        markReady(true);
        await readEvents(response, abort.signal, (id) => {
          lastEventId = id;
          handlers.onChange();
        });
        if (abort.signal.aborted) return;
        handlers.onNotice('the change stream ended; reconnecting');
      } catch (error) {
        if (abort.signal.aborted) return;
        if (error instanceof ClientError && error.status === 410) {
          // The resume point is no longer stored: start afresh and assume a change was missed.
          lastEventId = undefined;
          handlers.onChange();
          continue;
        }
        if (error instanceof ClientError && FATAL.has(error.exitCode)) {
          markReady(false);
          giveUp(error);
          return;
        }
        const message = error instanceof Error ? error.message : String(error);
        if (failures === 0) handlers.onNotice(`the change stream failed (${message}); retrying`);
        markReady(false);
        retryAfter = error instanceof ClientError ? error.retryAfterMs : undefined;
      }
      failures++;
      const backoff = Math.min(MAX_BACKOFF_MS, 250 * 2 ** Math.min(failures, 10));
      await sleep(retryAfter ?? backoff * (0.5 + Math.random() / 2), abort.signal);
    }
  })();

  return { ready, gaveUp, stop: () => abort.abort() };
}

/** Reads Server-Sent Events until the stream ends; `onEvent` gets each message's id. */
async function readEvents(
  response: Response,
  signal: AbortSignal,
  onEvent: (id: string) => void,
): Promise<void> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let idle: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(idle);
    idle = setTimeout(() => void reader.cancel().catch(() => {}), IDLE_MS);
  };
  const onAbort = () => void reader.cancel().catch(() => {});
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    arm();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      arm();
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const id = block
          .split('\n')
          .find((line) => line.startsWith('id:'))
          ?.slice(3)
          .trim();
        if (id) onEvent(id);
      }
    }
  } finally {
    clearTimeout(idle);
    signal.removeEventListener('abort', onAbort);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
}

/**
 * Runs `work` after changes, never twice at once: changes arriving while it runs lead to one more
 * run when it ends (a burst — an `env import` of 50 secrets — costs at most two refetches).
 */
export class ChangeBatcher {
  private running = false;
  private pending = false;

  constructor(
    private readonly work: () => Promise<void>,
    /** Wait after the first change of a burst, to take the rest with it. */
    private readonly settleMs = 50,
  ) {}

  notify(): void {
    if (this.running) {
      this.pending = true;
      return;
    }
    this.running = true;
    setTimeout(() => void this.loop(), this.settleMs);
  }

  private async loop(): Promise<void> {
    do {
      this.pending = false;
      await this.work();
    } while (this.pending);
    this.running = false;
  }
}
