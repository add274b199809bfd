/** Small shared pieces of the console: hash routing, data loading with refresh on focus, forms. */
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
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

/** Loads data now, again when `reload` is called, and whenever the window regains focus. */
export function useLoad<T>(
  load: () => Promise<T>,
  deps: unknown[] = [],
): { data: T | undefined; error: string | undefined; reload: () => void } {
  const [state, setState] = useState<{ data?: T; error?: string }>({});
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  useEffect(() => {
    // Live updates until the event stream exists: refresh whenever the user comes back.
    const onFocus = () => reload();
    const onVisible = () => document.visibilityState === 'visible' && reload();
    addEventListener('focus', onFocus);
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      removeEventListener('focus', onFocus);
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, []);
  useEffect(() => {
    let live = true;
    load().then(
      (data) => live && setState({ data }),
      (error: unknown) => live && setState({ error: errorText(error) }),
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
