/** The audit log: filters by action and outcome, newest first, page by page; one entry's detail. */
import { useState } from 'preact/hooks';
import { api, type List } from '../api.ts';
import { Field, Status, useLoad, when } from '../ui.tsx';

type Entry = {
  id: string;
  at: string;
  actor: { type: string; id: string | null; name: string | null };
  action: string;
  target: { type: string | null; id: string | null };
  outcome: string;
  status: number | null;
  ip?: string | null;
  user_agent?: string | null;
  request_id?: string | null;
  hash?: string;
  prev_hash?: string;
  details?: Record<string, unknown>;
};

const LIMIT = 25;

export function AuditPage({ entryId }: { entryId?: string }) {
  return entryId ? <AuditEntryPage id={entryId} /> : <AuditList />;
}

function AuditEntryPage({ id }: { id: string }) {
  const { data, error } = useLoad(() => api<Entry>('GET', `/v1/audit-logs/${id}`), [id]);
  const rows: [string, unknown][] = data
    ? [
        ['Entry', data.id],
        ['When', when(data.at)],
        [
          'Actor',
          `${data.actor.name ?? '—'} (${data.actor.type}${data.actor.id ? ` ${data.actor.id}` : ''})`,
        ],
        ['Action', data.action],
        ['Target', `${data.target.type ?? '—'} ${data.target.id ?? ''}`],
        ['Outcome', `${data.outcome}${data.status ? ` (HTTP ${data.status})` : ''}`],
        ['Client address', data.ip ?? '—'],
        ['User agent', data.user_agent ?? '—'],
        ['Request id', data.request_id ?? '—'],
        ['Hash', data.hash],
        ['Previous hash', data.prev_hash],
      ]
    : [];
  return (
    <section>
      <p>
        <a href="#/audit">← Audit log</a>
      </p>
      <h1>Audit entry</h1>
      <Status error={error} />
      {data && (
        <dl class="meta">
          {rows.map(([label, value]) => (
            <>
              <dt>{label}</dt>
              <dd>
                <code class="wrap">{String(value)}</code>
              </dd>
            </>
          ))}
          {data.details && (
            <>
              <dt>Details</dt>
              <dd>
                <pre>{JSON.stringify(data.details, null, 2)}</pre>
              </dd>
            </>
          )}
        </dl>
      )}
    </section>
  );
}

function AuditList() {
  const [filters, setFilters] = useState({ action: '', outcome: '' });
  const [page, setPage] = useState(1);
  const { data, error } = useLoad(() => {
    const query = new URLSearchParams({ page: String(page), limit: String(LIMIT) });
    if (filters.action) query.set('action', filters.action);
    if (filters.outcome) query.set('outcome', filters.outcome);
    return api<List<Entry>>('GET', `/v1/audit-logs?${query}`);
  }, [page, filters.action, filters.outcome]);
  const apply = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const read = (name: string) => (form.elements.namedItem(name) as HTMLInputElement).value.trim();
    setFilters({ action: read('action'), outcome: read('outcome') });
    setPage(1);
  };
  const pages = data ? Math.max(1, Math.ceil(data.pagination.total / LIMIT)) : 1;
  return (
    <section>
      <h1>Audit log</h1>
      <form class="inline" onSubmit={apply} aria-label="Filter the audit log">
        <Field label="Action">
          <input name="action" placeholder="resource.reveal" />
        </Field>
        <Field label="Outcome">
          <select name="outcome">
            <option value="">any</option>
            <option>success</option>
            <option>denied</option>
            <option>error</option>
          </select>
        </Field>
        <button type="submit">Filter</button>
      </form>
      <Status error={error} />
      <table>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Actor</th>
            <th scope="col">Action</th>
            <th scope="col">Target</th>
            <th scope="col">Outcome</th>
          </tr>
        </thead>
        <tbody>
          {data?.data.map((entry) => (
            <tr key={entry.id}>
              <td>
                <a
                  href={`#/audit/${entry.id}`}
                  aria-label={`Entry ${entry.action} at ${when(entry.at)}`}
                >
                  {when(entry.at)}
                </a>
              </td>
              <td>
                {entry.actor.name ?? entry.actor.type}
                {entry.details?.via === 'console' && <span class="badge">console</span>}
              </td>
              <td>{entry.action}</td>
              <td class="wrap">{entry.target.id ?? entry.target.type ?? '—'}</td>
              <td class={entry.outcome === 'success' ? undefined : 'bad'}>
                {entry.outcome} {entry.status ?? ''}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
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
