/** A vault: its secrets, keys and certificates in one table with type filter and search. */
import { useEffect, useState } from 'preact/hooks';
import { api, type List, type Me } from '../api.ts';
import {
  copyText,
  expiresWithin,
  Field,
  formValue,
  Status,
  useAction,
  useLoad,
  when,
} from '../ui.tsx';

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
  algorithm?: string;
  public_key?: string | null;
  subject?: string;
  issuer?: string;
  serial_number?: string;
  not_before?: string;
  not_after?: string;
  fingerprint_sha256?: string;
  has_private_key?: boolean;
  value?: string;
};

/** How long a revealed value stays on screen. */
const REVEAL_MS = 20_000;
/** Certificates and keys expiring within this many days are highlighted. */
export const EXPIRY_WARN_DAYS = 30;
const ALGORITHMS = ['ed25519', 'ec-p256', 'ec-p384', 'rsa-2048', 'rsa-4096', 'aes-256'];
type Kind = 'secret' | 'generate' | 'key' | 'certificate';

export function VaultPage({ me, vaultId }: { me: Me; vaultId: string }) {
  const may = (p: string) => me.permissions.includes(p);
  const [search, setSearch] = useState('');
  const [type, setType] = useState('');
  const { data, error, reload } = useLoad(async () => {
    const query = new URLSearchParams({ vault_id: vaultId, limit: '100' });
    if (type) query.set('type', type);
    const [vault, resources] = await Promise.all([
      api<{ name: string }>('GET', `/v1/vaults/${vaultId}?secrets=names`),
      api<List<Resource>>('GET', `/v1/resources?${query}`),
    ]);
    return { vault, resources: resources.data, total: resources.pagination.total };
  }, [vaultId, type]);
  const needle = search.trim().toLowerCase();
  const shown = data?.resources.filter(
    (r) =>
      r.name.toLowerCase().includes(needle) ||
      r.tags.some((tag) => tag.toLowerCase().includes(needle)),
  );
  return (
    <section>
      <p>
        <a href="#/projects">← Projects and vaults</a>
      </p>
      <h1>Vault {data?.vault.name ?? ''}</h1>
      <Status error={error} />
      <form class="inline" role="search" onSubmit={(e) => e.preventDefault()}>
        <Field label="Search by name or tag">
          <input type="search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
        </Field>
        <Field label="Type">
          <select value={type} onChange={(e) => setType(e.currentTarget.value)}>
            <option value="">all</option>
            <option value="secret">secrets</option>
            <option value="key">keys</option>
            <option value="certificate">certificates</option>
          </select>
        </Field>
      </form>
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
            <ResourceRow
              key={resource.id}
              resource={resource}
              canReveal={may('resources:reveal')}
            />
          ))}
        </tbody>
      </table>
      {shown && shown.length === 0 && <p class="muted">No matching resources.</p>}
      {data && data.total > data.resources.length && (
        <p class="muted">
          Showing the first {data.resources.length} of {data.total}; narrow with the type filter.
        </p>
      )}
      {may('resources:write') && <AddResource vaultId={vaultId} added={reload} />}
    </section>
  );
}

/** The forms that add a secret, generate or upload a key, or upload a certificate. */
function AddResource({ vaultId, added }: { vaultId: string; added: () => Promise<void> }) {
  const [kind, setKind] = useState<Kind>('secret');
  const action = useAction();
  const text = (form: HTMLFormElement, name: string) =>
    ((form.elements.namedItem(name) as HTMLTextAreaElement | null)?.value ?? '').trim();
  const submit = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const name = formValue(event, 'name');
    const tags = text(form, 'tags')
      .split(',')
      .map((tag) => tag.trim())
      .filter(Boolean);
    const base = { vault_id: vaultId, name, ...(tags.length ? { tags } : {}) };
    let body: Record<string, unknown>;
    if (kind === 'secret') {
      const value = (form.elements.namedItem('value') as HTMLTextAreaElement).value;
      const contentType = text(form, 'content_type');
      body = {
        ...base,
        type: 'secret',
        value,
        ...(contentType ? { content_type: contentType } : {}),
      };
    } else if (kind === 'generate') {
      body = { ...base, type: 'key', generate: { algorithm: text(form, 'algorithm') } };
    } else if (kind === 'key') {
      body = { ...base, type: 'key', value: text(form, 'pem') + '\n' };
    } else {
      const privateKey = text(form, 'private_key');
      body = {
        ...base,
        type: 'certificate',
        value: text(form, 'pem') + '\n',
        ...(privateKey ? { private_key: privateKey + '\n' } : {}),
      };
    }
    void action.run(async () => {
      await api('POST', '/v1/resources', { body });
      form.reset();
      await added();
      return `${name} added.`;
    });
  };
  const labels: Record<Kind, string> = {
    secret: 'Create secret',
    generate: 'Generate key',
    key: 'Upload key',
    certificate: 'Upload certificate',
  };
  return (
    <form onSubmit={submit} aria-labelledby="add-heading" class="panel">
      <h2 id="add-heading">Add to this vault</h2>
      <Field label="What">
        <select value={kind} onChange={(e) => setKind(e.currentTarget.value as Kind)}>
          <option value="secret">a secret</option>
          <option value="generate">a key generated by the server</option>
          <option value="key">a key (upload PEM)</option>
          <option value="certificate">a certificate (upload PEM chain and key)</option>
        </select>
      </Field>
      <Field label="Name">
        <input name="name" required maxLength={200} />
      </Field>
      {kind === 'secret' && (
        <>
          <Field label="Value">
            <textarea name="value" required rows={3} spellcheck={false} autocomplete="off" />
          </Field>
          <Field label="Content type (optional)" hint="Default text/plain">
            <input name="content_type" placeholder="text/plain" />
          </Field>
        </>
      )}
      {kind === 'generate' && (
        <Field label="Algorithm">
          <select name="algorithm">
            {ALGORITHMS.map((algorithm) => (
              <option>{algorithm}</option>
            ))}
          </select>
        </Field>
      )}
      {kind === 'key' && (
        <Field label="Private key PEM">
          <textarea name="pem" required rows={5} spellcheck={false} autocomplete="off" />
        </Field>
      )}
      {kind === 'certificate' && (
        <>
          <Field label="Certificate chain PEM" hint="Leaf first.">
            <textarea name="pem" required rows={5} spellcheck={false} />
          </Field>
          <Field label="Private key PEM (optional)">
            <textarea name="private_key" rows={5} spellcheck={false} autocomplete="off" />
          </Field>
        </>
      )}
      <Field label="Tags (optional)" hint="Comma-separated">
        <input name="tags" />
      </Field>
      <button type="submit" disabled={action.busy}>
        {labels[kind]}
      </button>
      <Status error={action.error} ok={action.ok} />
    </form>
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
  const end = resource.expires_at ?? resource.not_after ?? null;
  const expired = end !== null && Date.parse(end) < Date.now();
  const usable =
    canReveal &&
    resource.enabled &&
    !expired &&
    (resource.activates_at === null || Date.parse(resource.activates_at) <= Date.now());
  const kind = resource.type === 'key' ? 'keys' : 'certificates';
  return (
    <tr>
      <td>
        <a href={`#/vaults/${resource.vault_id}/resources/${resource.id}`}>{resource.name}</a>
        {resource.tags.map((tag) => (
          <span class="badge">{tag}</span>
        ))}
      </td>
      <td>
        {resource.type}
        {resource.algorithm && <span class="muted"> {resource.algorithm}</span>}
      </td>
      <td class="value">
        {resource.type !== 'secret' ? (
          usable && (
            <a
              class="button small"
              href={`/v1/vaults/${resource.vault_id}/${kind}/${resource.id}/download`}
              download={`${resource.name}.pem`}
            >
              Download <span class="visually-hidden">{resource.name} </span>PEM
            </a>
          )
        ) : (
          <>
            {value === undefined ? (
              <span aria-label="hidden value">••••••••</span>
            ) : (
              <code class="revealed">{value}</code>
            )}
            {usable && (
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
                <button
                  type="button"
                  class="small"
                  onClick={copy}
                  aria-label={`Copy ${resource.name}`}
                >
                  Copy
                </button>
              </>
            )}
          </>
        )}
        <Status error={action.error} ok={action.ok} />
      </td>
      <td>{resource.version ?? '—'}</td>
      <td>{when(resource.updated_at)}</td>
      <td class={expired ? 'bad' : expiresWithin(end, EXPIRY_WARN_DAYS) ? 'warn' : undefined}>
        {when(end)}
        {expired && ' (expired)'}
      </td>
    </tr>
  );
}
