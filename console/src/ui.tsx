/** Small shared pieces of the console: hash routing, data loading with refresh on focus, forms. */
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { errorText } from './api.ts';

/** The `#/a/b/c` route as its parts. Hash routing: the server only ever serves `/`. */
export function useRoute(): string[] {
  const parse = () =>
    location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const [route, setRoute] = useState(parse);
  useEffect(() => {
    const changed = () => {
      setRoute(parse());
      document.getElementById('main')?.focus();
    };
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  return route;
}

/** Pages told about live changes (the event stream); each reloads its data. */
const liveListeners = new Set<() => void>();
let liveTimer: ReturnType<typeof setTimeout> | undefined;

/**
 * Opens the event stream (`GET /v1/events/stream`, the session cookie goes along) and reloads
 * the shown page when an event arrives, a burst of events causing one reload. Only for keys
 * with `events:read`; the others keep refresh on focus. Returns the closer.
 */
export function startLiveUpdates(): () => void {
  const source = new EventSource('/v1/events/stream');
  source.onmessage = () => {
    clearTimeout(liveTimer);
    liveTimer = setTimeout(() => liveListeners.forEach((listener) => listener()), 250);
  };
  return () => {
    clearTimeout(liveTimer);
    source.close();
  };
}

/**
 * Loads data now, again when `reload` is called, whenever the window regains focus, and on
 * every live change when the event stream is open.
 */
export function useLoad<T>(
  load: () => Promise<T>,
  deps: unknown[] = [],
): { data: T | undefined; error: string | undefined; reload: () => Promise<void> } {
  const [state, setState] = useState<{ data?: T; error?: string }>({});
  const [tick, setTick] = useState(0);
  // Callers of reload wait for the new data, so a success message shows with what it changed.
  const waiting = useRef<(() => void)[]>([]);
  const reload = useCallback(
    () =>
      new Promise<void>((resolve) => {
        waiting.current.push(resolve);
        setTick((n) => n + 1);
      }),
    [],
  );
  useEffect(() => {
    // Refresh whenever the user comes back (all the live updating a key without events:read gets).
    const onFocus = () => void reload();
    const onVisible = () => document.visibilityState === 'visible' && void reload();
    addEventListener('focus', onFocus);
    document.addEventListener('visibilitychange', onVisible);
    const onLive = () => void reload();
    liveListeners.add(onLive);
    return () => {
      liveListeners.delete(onLive);
      removeEventListener('focus', onFocus);
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, []);
  useEffect(() => {
    let live = true;
    const settled = () => {
      if (live) for (const resolve of waiting.current.splice(0)) resolve();
    };
    load().then(
      (data) => live && (setState({ data }), settled()),
      (error: unknown) => live && (setState({ error: errorText(error) }), settled()),
    );
    return () => {
      live = false;
    };
  }, [tick, ...deps]);
  return { data: state.data, error: state.error, reload };
}

/** A one-line status message, announced to screen readers. */
export function Status({ error, ok }: { error?: string; ok?: string }) {
  if (error)
    return (
      <p class="error" role="alert">
        {error}
      </p>
    );
  if (ok)
    return (
      <p class="ok" role="status">
        {ok}
      </p>
    );
  return null;
}

/** Runs an action, remembering its error or success message, and whether it is running. */
export function useAction() {
  const [state, setState] = useState<{ error?: string; ok?: string; busy?: boolean }>({});
  const run = async (action: () => Promise<string | void>) => {
    setState({ busy: true });
    try {
      const ok = await action();
      setState({ ok: ok || undefined });
    } catch (error) {
      setState({ error: errorText(error) });
    }
  };
  return { ...state, run, clear: () => setState({}) };
}

/** A labelled form field. */
export function Field(props: { label: string; children: ComponentChildren; hint?: string }) {
  return (
    <label class="field">
      <span>{props.label}</span>
      {props.children}
      {props.hint && <small>{props.hint}</small>}
    </label>
  );
}

/** Copies text to the clipboard without ever putting it on screen. */
export async function copyText(text: string): Promise<void> {
  await navigator.clipboard.writeText(text);
}

/** A readable local time for an RFC 3339 timestamp. */
export function when(at: string | null | undefined): string {
  if (!at) return '—';
  return new Date(at).toLocaleString();
}

/** The value of a named input of a submitted form. */
export function formValue(event: Event, name: string): string {
  const form = event.currentTarget as HTMLFormElement;
  const element = form.elements.namedItem(name) as HTMLInputElement | null;
  return element?.value.trim() ?? '';
}

/** A datetime-local input's value for an RFC 3339 timestamp (local time), or ''. */
export function toLocalInput(at: string | null | undefined): string {
  if (!at) return '';
  const date = new Date(at);
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 16);
}

/** An RFC 3339 timestamp for a datetime-local input's value, or null when empty. */
export function fromLocalInput(value: string): string | null {
  return value ? new Date(value).toISOString().replace(/\.\d+Z$/, 'Z') : null;
}

/** True when `at` is within `days` days from now (or already past). */
export function expiresWithin(at: string | null | undefined, days: number): boolean {
  return !!at && Date.parse(at) - Date.now() < days * 86_400_000;
}

/** A secret shown once (a new token or signing secret), with a copy button. */
export function ShownOnce(props: {
  title: string;
  value: string;
  testId: string;
  onDone: () => void;
}) {
  const [copied, setCopied] = useState(false);
  return (
    <div class="once" role="status">
      <h2>{props.title}</h2>
      <p>This is shown once. Copy it now; it cannot be shown again.</p>
      <code class="token" data-testid={props.testId}>
        {props.value}
      </code>
      <div class="actions">
        <button type="button" onClick={() => copyText(props.value).then(() => setCopied(true))}>
          {copied ? 'Copied' : 'Copy'}
        </button>
        <button type="button" onClick={props.onDone}>
          Done
        </button>
      </div>
    </div>
  );
}
