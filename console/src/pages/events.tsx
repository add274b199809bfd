/** Events: what changed, newest first, filtered by type, each with its metadata (never a value). */
import { useState } from 'preact/hooks';
import { api, type List } from '../api.ts';
import { Field, Status, useLoad, when } from '../ui.tsx';

type EventItem = {
  id: string;
  type: string;
  created_at: string;
  data: { object: Record<string, unknown> };
};

const LIMIT = 25;

export function EventsPage() {
  const [type, setType] = useState('');
  const [page, setPage] = useState(1);
  const { data, error } = useLoad(() => {
    const query = new URLSearchParams({ page: String(page), limit: String(LIMIT) });
    if (type) query.set('type', type);
    return api<List<EventItem>>('GET', `/v1/events?${query}`);
  }, [page, type]);
  const apply = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    setType((form.elements.namedItem('type') as HTMLInputElement).value.trim());
    setPage(1);
  };
  const pages = data ? Math.max(1, Math.ceil(data.pagination.total / LIMIT)) : 1;
  return (
    <section>
      <h1>Events</h1>
      <form class="inline" onSubmit={apply} aria-label="Filter events">
        <Field label="Event type">
          <input name="type" placeholder="resource.created" />
        </Field>
        <button type="submit">Filter</button>
      </form>
      <Status error={error} />
      <table>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Type</th>
            <th scope="col">Object</th>
          </tr>
        </thead>
        <tbody>
          {data?.data.map((event) => {
            const object = event.data.object;
            const label = String(object.name ?? object.url ?? object.id ?? '—');
            return (
              <tr key={event.id}>
                <td>{when(event.created_at)}</td>
                <td>{event.type}</td>
                <td>
                  <details>
                    <summary>{label}</summary>
                    <pre>{JSON.stringify(object, null, 2)}</pre>
                  </details>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {data && data.data.length === 0 && <p class="muted">No events.</p>}
      <nav class="pager" aria-label="Pages">
        <button type="button" disabled={page <= 1} onClick={() => setPage(page - 1)}>
          Newer
        </button>
        <span>
          Page {page} of {pages}
        </span>
        <button type="button" disabled={page >= pages} onClick={() => setPage(page + 1)}>
          Older
        </button>
      </nav>
    </section>
  );
}
