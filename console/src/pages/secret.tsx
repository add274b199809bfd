/** A secret: metadata, versions (who/when), restore a version, edit guarded by If-Match. */
import { useState } from 'preact/hooks';
import { api, ApiError, type List, type Me } from '../api.ts';
import { Field, Status, useAction, useLoad, when } from '../ui.tsx';
import type { Resource } from './vault.tsx';

type Version = { version: number; created_at: string; created_by: string };

export function SecretPage(props: { me: Me; vaultId: string; resourceId: string }) {
  const { me, vaultId, resourceId } = props;
  const may = (p: string) => me.permissions.includes(p);
  const { data, error, reload } = useLoad(async () => {
    // The list carries no value, so opening this page reveals nothing.
    const [list, versions] = await Promise.all([
      api<List<Resource>>('GET', `/v1/resources?vault_id=${vaultId}&limit=100`),
      api<List<Version>>('GET', `/v1/resources/${resourceId}/versions?limit=100`),
    ]);
    const secret = list.data.find((r) => r.id === resourceId);
    if (!secret) throw new Error('This secret does not exist or is not visible to this key.');
    return { secret, versions: versions.data };
  }, [resourceId]);
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
        await api('PUT', `/v1/resources/${resourceId}`, {
          body: { value },
          headers: { 'if-match': String(editingFrom) },
        });
      } catch (caught) {
        if (caught instanceof ApiError && caught.status === 409) {
          setConflict(
            `Someone else saved a new version after version ${editingFrom}, which your edit was based on. ` +
              'Your text is still in the box: review the latest version below, then start the edit again.',
          );
          reload();
          return;
        }
        throw caught;
      }
      setEditingFrom(undefined);
      reload();
      return 'Saved as a new version.';
    });
  };
  const restore = (version: number) =>
    action.run(async () => {
      await api('POST', `/v1/resources/${resourceId}/versions/${version}/restore`);
      reload();
      return `Version ${version} restored as a new version.`;
    });
  const secret = data?.secret;
  return (
    <section>
      <p>
        <a href={`#/vaults/${vaultId}`}>← Vault</a>
      </p>
      <h1>Secret {secret?.name ?? ''}</h1>
      <Status error={error} />
      {secret && (
        <dl class="meta">
          <dt>Current version</dt>
          <dd data-testid="current-version">{secret.version}</dd>
          <dt>Content type</dt>
          <dd>{secret.content_type}</dd>
          <dt>Tags</dt>
          <dd>{secret.tags.length ? secret.tags.join(', ') : '—'}</dd>
          <dt>Enabled</dt>
          <dd>{secret.enabled ? 'yes' : 'no'}</dd>
          <dt>Active from</dt>
          <dd>{when(secret.activates_at)}</dd>
          <dt>Expires</dt>
          <dd>{when(secret.expires_at)}</dd>
          <dt>Created</dt>
          <dd>
            {when(secret.created_at)} by {secret.created_by}
          </dd>
        </dl>
      )}
      {conflict && (
        <div class="conflict" role="alert">
          <h2>Not saved: conflict</h2>
          <p>{conflict}</p>
        </div>
      )}
      {secret && may('resources:write') && editingFrom === undefined && (
        <button type="button" onClick={() => setEditingFrom(secret.version)}>
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
            {may('resources:write') && <th scope="col">Action</th>}
          </tr>
        </thead>
        <tbody>
          {data?.versions.map((v) => (
            <tr>
              <td>{v.version}</td>
              <td>{when(v.created_at)}</td>
              <td>{v.created_by}</td>
              {may('resources:write') && (
                <td>
                  {v.version !== secret?.version && (
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
    </section>
  );
}
