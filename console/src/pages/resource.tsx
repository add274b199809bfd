/**
 * One resource of a vault. All: metadata, tags, activation/expiry (editable). A secret: content
 * type, versions (who/when), restore, value edit guarded by If-Match. A key: algorithm and public
 * key. A certificate: parsed subject/issuer/validity/fingerprint, expiry highlighted.
 */
import { useState } from 'preact/hooks';
import { api, ApiError, type List, type Me } from '../api.ts';
import {
  expiresWithin,
  Field,
  fromLocalInput,
  Status,
  toLocalInput,
  useAction,
  useLoad,
  when,
} from '../ui.tsx';
import { EXPIRY_WARN_DAYS, type Resource } from './vault.tsx';

type Version = { version: number; created_at: string; created_by: string };

export function ResourcePage(props: { me: Me; vaultId: string; resourceId: string }) {
  const { me, vaultId, resourceId } = props;
  const may = (p: string) => me.permissions.includes(p);
  const { data, error, reload } = useLoad(async () => {
    // The list carries no value, so opening this page reveals nothing.
    const list = await api<List<Resource>>('GET', `/v1/resources?vault_id=${vaultId}&limit=100`);
    const resource = list.data.find((r) => r.id === resourceId);
    if (!resource) throw new Error('This resource does not exist or is not visible to this key.');
    const versions =
      resource.type === 'secret'
        ? (await api<List<Version>>('GET', `/v1/resources/${resourceId}/versions?limit=100`)).data
        : [];
    return { resource, versions };
  }, [resourceId]);
  const resource = data?.resource;
  return (
    <section>
      <p>
        <a href={`#/vaults/${vaultId}`}>← Vault</a>
      </p>
      <h1>
        {resource ? `${resource.type[0]!.toUpperCase()}${resource.type.slice(1)} ` : ''}
        {resource?.name ?? ''}
      </h1>
      <Status error={error} />
      {resource && <Metadata resource={resource} />}
      {resource && may('resources:write') && <EditMetadata resource={resource} saved={reload} />}
      {resource?.type === 'secret' && (
        <SecretValue
          me={me}
          resource={resource}
          versions={data!.versions}
          changed={reload}
          canWrite={may('resources:write')}
        />
      )}
    </section>
  );
}

function Metadata({ resource }: { resource: Resource }) {
  const end = resource.expires_at ?? resource.not_after ?? null;
  const expired = end !== null && Date.parse(end) < Date.now();
  const endClass = expired ? 'bad' : expiresWithin(end, EXPIRY_WARN_DAYS) ? 'warn' : undefined;
  return (
    <dl class="meta">
      {resource.type === 'secret' && (
        <>
          <dt>Current version</dt>
          <dd data-testid="current-version">{resource.version}</dd>
          <dt>Content type</dt>
          <dd data-testid="content-type">{resource.content_type}</dd>
        </>
      )}
      {resource.type === 'key' && (
        <>
          <dt>Algorithm</dt>
          <dd>{resource.algorithm}</dd>
          <dt>Public key</dt>
          <dd>{resource.public_key ? <pre>{resource.public_key}</pre> : '— (symmetric key)'}</dd>
        </>
      )}
      {resource.type === 'certificate' && (
        <>
          <dt>Subject</dt>
          <dd data-testid="subject">{resource.subject}</dd>
          <dt>Issuer</dt>
          <dd>{resource.issuer}</dd>
          <dt>Serial number</dt>
          <dd>
            <code>{resource.serial_number}</code>
          </dd>
          <dt>Valid from</dt>
          <dd>{when(resource.not_before)}</dd>
          <dt>Valid until</dt>
          <dd class={endClass} data-testid="not-after">
            {when(resource.not_after)}
            {expired ? ' (expired)' : endClass ? ' (expires soon)' : ''}
          </dd>
          <dt>SHA-256 fingerprint</dt>
          <dd>
            <code class="fingerprint">{resource.fingerprint_sha256}</code>
          </dd>
          <dt>Private key stored</dt>
          <dd>{resource.has_private_key ? 'yes' : 'no'}</dd>
        </>
      )}
      <dt>Tags</dt>
      <dd data-testid="tags">{resource.tags.length ? resource.tags.join(', ') : '—'}</dd>
      <dt>Enabled</dt>
      <dd>{resource.enabled ? 'yes' : 'no'}</dd>
      <dt>Active from</dt>
      <dd>{when(resource.activates_at)}</dd>
      {resource.type !== 'certificate' && (
        <>
          <dt>Expires</dt>
          <dd class={endClass} data-testid="expires">
            {when(resource.expires_at)}
            {expired ? ' (expired)' : endClass ? ' (expires soon)' : ''}
          </dd>
        </>
      )}
      <dt>Created</dt>
      <dd>
        {when(resource.created_at)} by {resource.created_by}
      </dd>
    </dl>
  );
}

/** Tags, enabled, activation/expiry and (secrets) content type: a metadata-only update. */
function EditMetadata({ resource, saved }: { resource: Resource; saved: () => Promise<void> }) {
  const [open, setOpen] = useState(false);
  const action = useAction();
  const submit = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const read = (name: string) =>
      (form.elements.namedItem(name) as HTMLInputElement | null)?.value.trim() ?? '';
    const body: Record<string, unknown> = {
      tags: read('tags')
        .split(',')
        .map((tag) => tag.trim())
        .filter(Boolean),
      enabled: (form.elements.namedItem('enabled') as HTMLInputElement).checked,
      activates_at: fromLocalInput(read('activates_at')),
    };
    if (resource.type !== 'certificate') body.expires_at = fromLocalInput(read('expires_at'));
    if (resource.type === 'secret') body.content_type = read('content_type');
    void action.run(async () => {
      await api('PUT', `/v1/resources/${resource.id}`, { body });
      setOpen(false);
      await saved();
      return 'Details saved.';
    });
  };
  if (!open)
    return (
      <>
        <button type="button" onClick={() => (action.clear(), setOpen(true))}>
          Edit details
        </button>
        <Status error={action.error} ok={action.ok} />
      </>
    );
  return (
    <form onSubmit={submit} aria-labelledby="details-heading" class="panel">
      <h2 id="details-heading">Edit details</h2>
      <Field label="Tags" hint="Comma-separated">
        <input name="tags" defaultValue={resource.tags.join(', ')} />
      </Field>
      {resource.type === 'secret' && (
        <Field label="Content type">
          <input name="content_type" required defaultValue={resource.content_type} />
        </Field>
      )}
      <Field label="Active from (empty: at once)">
        <input
          name="activates_at"
          type="datetime-local"
          defaultValue={toLocalInput(resource.activates_at)}
        />
      </Field>
      {resource.type !== 'certificate' && (
        <Field label="Expires (empty: never)">
          <input
            name="expires_at"
            type="datetime-local"
            defaultValue={toLocalInput(resource.expires_at)}
          />
        </Field>
      )}
      <label class="check">
        <input name="enabled" type="checkbox" defaultChecked={resource.enabled} /> Enabled
      </label>
      <div class="actions">
        <button type="submit" disabled={action.busy}>
          Save details
        </button>
        <button type="button" onClick={() => setOpen(false)}>
          Cancel
        </button>
      </div>
      <Status error={action.error} />
    </form>
  );
}

function SecretValue(props: {
  me: Me;
  resource: Resource;
  versions: Version[];
  changed: () => Promise<void>;
  canWrite: boolean;
}) {
  const { resource, versions, changed, canWrite } = props;
  // The version the edit is based on: fixed when editing starts, so a concurrent write shows.
  const [editingFrom, setEditingFrom] = useState<number>();
  const [conflict, setConflict] = useState<string>();
  const action = useAction();
  const save = (event: Event) => {
    event.preventDefault();
    const value = (
      (event.currentTarget as HTMLFormElement).elements.namedItem('value') as HTMLTextAreaElement
    ).value;
    setConflict(undefined);
    void action.run(async () => {
      try {
        await api('PUT', `/v1/resources/${resource.id}`, {
          body: { value },
          headers: { 'if-match': String(editingFrom) },
        });
      } catch (caught) {
        if (caught instanceof ApiError && caught.status === 409) {
          setConflict(
            `Someone else saved a new version after version ${editingFrom}, which your edit was based on. ` +
              'Your text is still in the box: review the latest version below, then start the edit again.',
          );
          await changed();
          return;
        }
        throw caught;
      }
      setEditingFrom(undefined);
      await changed();
      return 'Saved as a new version.';
    });
  };
  const restore = (version: number) =>
    action.run(async () => {
      await api('POST', `/v1/resources/${resource.id}/versions/${version}/restore`);
      await changed();
      return `Version ${version} restored as a new version.`;
    });
  return (
    <>
      {conflict && (
        <div class="conflict" role="alert">
          <h2>Not saved: conflict</h2>
          <p>{conflict}</p>
        </div>
      )}
      {canWrite && editingFrom === undefined && (
        <button type="button" onClick={() => setEditingFrom(resource.version)}>
          Edit value
        </button>
      )}
      {editingFrom !== undefined && (
        <form onSubmit={save} aria-label="Edit value">
          <Field label={`New value (based on version ${editingFrom})`}>
            <textarea name="value" required rows={4} spellcheck={false} autocomplete="off" />
          </Field>
          <button type="submit" disabled={action.busy}>
            Save new version
          </button>
          <button type="button" onClick={() => (setEditingFrom(undefined), setConflict(undefined))}>
            Cancel
          </button>
        </form>
      )}
      <Status error={action.error} ok={action.ok} />
      <h2>Versions</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">Version</th>
            <th scope="col">Created</th>
            <th scope="col">By</th>
            {canWrite && <th scope="col">Action</th>}
          </tr>
        </thead>
        <tbody>
          {versions.map((v) => (
            <tr key={v.version}>
              <td>{v.version}</td>
              <td>{when(v.created_at)}</td>
              <td>{v.created_by}</td>
              {canWrite && (
                <td>
                  {v.version !== resource.version && (
                    <button type="button" class="small" onClick={() => restore(v.version)}>
                      Restore version {v.version}
                    </button>
                  )}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
