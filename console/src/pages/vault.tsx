/** A vault: its secrets, keys and certificates in one table with search; values masked. */
import { useEffect, useState } from 'preact/hooks';
import { api, type List, type Me } from '../api.ts';
import { copyText, Field, formValue, Status, useAction, useLoad, when } from '../ui.tsx';

export type Resource = {
  id: string;
  type: 'secret' | 'key' | 'certificate';
  vault_id: string;
  name: string;
  description: string | null;
  tags: string[];
  enabled: boolean;
  version?: number;
  content_type?: string;
  activates_at: string | null;
  expires_at: string | null;
  created_at: string;
  updated_at: string;
  created_by: string;
  value?: string;
};

/** How long a revealed value stays on screen. */
const REVEAL_MS = 20_000;

export function VaultPage({ me, vaultId }: { me: Me; vaultId: string }) {
  const may = (p: string) => me.permissions.includes(p);
  const [search, setSearch] = useState('');
  const { data, error, reload } = useLoad(async () => {
    const [vault, resources] = await Promise.all([
      api<{ name: string }>('GET', `/v1/vaults/${vaultId}?secrets=names`),
      api<List<Resource>>('GET', `/v1/resources?vault_id=${vaultId}&limit=100`),
    ]);
    return { vault, resources: resources.data };
  }, [vaultId]);
  const action = useAction();
  const create = (event: Event) => {
    event.preventDefault();
    const name = formValue(event, 'name');
    const form = event.currentTarget as HTMLFormElement;
    const value = (form.elements.namedItem('value') as HTMLTextAreaElement).value;
    void action.run(async () => {
      await api('POST', '/v1/resources', {
        body: { type: 'secret', vault_id: vaultId, name, value },
      });
      form.reset();
      reload();
      return `Secret ${name} created.`;
    });
  };
  const shown = data?.resources.filter((r) =>
    r.name.toLowerCase().includes(search.trim().toLowerCase()),
  );
  return (
    <section>
      <p>
        <a href="#/projects">← Projects and vaults</a>
      </p>
      <h1>Vault {data?.vault.name ?? ''}</h1>
      <Status error={error} />
      <Field label="Search by name">
        <input type="search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
      </Field>
      <table>
        <caption class="visually-hidden">Secrets, keys and certificates</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Type</th>
            <th scope="col">Value</th>
            <th scope="col">Version</th>
            <th scope="col">Updated</th>
            <th scope="col">Expires</th>
          </tr>
        </thead>
        <tbody>
          {shown?.map((resource) => (
            <ResourceRow resource={resource} canReveal={may('resources:reveal')} />
          ))}
        </tbody>
      </table>
      {shown && shown.length === 0 && <p class="muted">No matching resources.</p>}
      {may('resources:write') && (
        <form onSubmit={create} aria-label="New secret">
          <h2>New secret</h2>
          <Field label="Name">
            <input name="name" required maxLength={200} />
          </Field>
          <Field label="Value">
            <textarea name="value" required rows={3} spellcheck={false} autocomplete="off" />
          </Field>
          <button type="submit" disabled={action.busy}>
            Create secret
          </button>
        </form>
      )}
      <Status error={action.error} ok={action.ok} />
    </section>
  );
}

function ResourceRow({ resource, canReveal }: { resource: Resource; canReveal: boolean }) {
  const [value, setValue] = useState<string>();
  const action = useAction();
  useEffect(() => {
    if (value === undefined) return;
    const timer = setTimeout(() => setValue(undefined), REVEAL_MS);
    return () => clearTimeout(timer);
  }, [value]);
  // Each reveal or copy is one GET with the value, which the server audits as resource.reveal.
  const fetchValue = async () =>
    (await api<Resource>('GET', `/v1/resources/${resource.id}`)).value ?? '';
  const reveal = () =>
    action.run(async () => {
      setValue(await fetchValue());
    });
  const copy = () =>
    action.run(async () => {
      await copyText(await fetchValue());
      return 'Copied.';
    });
  const expired = resource.expires_at !== null && Date.parse(resource.expires_at) < Date.now();
  return (
    <tr>
      <td>
        {resource.type === 'secret' ? (
          <a href={`#/vaults/${resource.vault_id}/secrets/${resource.id}`}>{resource.name}</a>
        ) : (
          resource.name
        )}
      </td>
      <td>{resource.type}</td>
      <td class="value">
        {value === undefined ? (
          <span aria-label="hidden value">••••••••</span>
        ) : (
          <code class="revealed">{value}</code>
        )}
        {canReveal && resource.enabled && !expired && (
          <>
            {value === undefined ? (
              <button
                type="button"
                class="small"
                onClick={reveal}
                aria-label={`Reveal ${resource.name}`}
              >
                Reveal
              </button>
            ) : (
              <button
                type="button"
                class="small"
                onClick={() => setValue(undefined)}
                aria-label={`Hide ${resource.name}`}
              >
                Hide
              </button>
            )}
            <button type="button" class="small" onClick={copy} aria-label={`Copy ${resource.name}`}>
              Copy
            </button>
          </>
        )}
        <Status error={action.error} ok={action.ok} />
      </td>
      <td>{resource.version ?? '—'}</td>
      <td>{when(resource.updated_at)}</td>
      <td class={expired ? 'bad' : undefined}>{when(resource.expires_at)}</td>
    </tr>
  );
}
