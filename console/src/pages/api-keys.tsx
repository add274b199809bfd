/**
 * API keys: list, create with role, scopes, project and vault limits and expiry (the token shown
 * once, with a copy button), revoke. The server refuses a key stronger than the signed-in one
 * (403, naming the field); the page shows that reason as it is.
 */
import { useState } from 'preact/hooks';
import { api, ApiError, type List, type Me } from '../api.ts';
import {
  Field,
  formValue,
  fromLocalInput,
  ShownOnce,
  Status,
  useAction,
  useLoad,
  when,
} from '../ui.tsx';

type ApiKey = {
  id: string;
  name: string;
  role: string;
  prefix: string;
  project_ids: string[];
  vault_ids: string[];
  scopes: string[] | null;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
  token?: string;
};
type Named = { id: string; name: string };

const ROLES = ['admin', 'manager', 'contributor', 'reader', 'access'];

/** The ids chosen in a multiple select. */
function selected(form: HTMLFormElement, name: string): string[] {
  const select = form.elements.namedItem(name) as HTMLSelectElement | null;
  return select ? [...select.selectedOptions].map((option) => option.value) : [];
}

export function ApiKeysPage({ me }: { me: Me }) {
  const may = (p: string) => me.permissions.includes(p);
  const mayWrite = may('api_keys:write');
  const { data, error, reload } = useLoad(async () => {
    const none = Promise.resolve({ data: [] as Named[] });
    const [keys, projects, vaults] = await Promise.all([
      api<List<ApiKey>>('GET', '/v1/api-keys?limit=100'),
      mayWrite && may('projects:read') ? api<List<Named>>('GET', '/v1/projects?limit=100') : none,
      mayWrite && may('vaults:read') ? api<List<Named>>('GET', '/v1/vaults?limit=100') : none,
    ]);
    return { keys: keys.data, projects: projects.data, vaults: vaults.data };
  });
  const [created, setCreated] = useState<ApiKey>();
  const action = useAction();
  const create = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const scopes = [...form.querySelectorAll<HTMLInputElement>('input[name=scope]:checked')].map(
      (box) => box.value,
    );
    const projectIds = selected(form, 'project_ids');
    const vaultIds = selected(form, 'vault_ids');
    const expires = fromLocalInput(formValue(event, 'expires'));
    const body = {
      name: formValue(event, 'name'),
      role: formValue(event, 'role'),
      ...(scopes.length ? { scopes } : {}),
      ...(projectIds.length ? { project_ids: projectIds } : {}),
      ...(vaultIds.length ? { vault_ids: vaultIds } : {}),
      ...(expires ? { expires_at: expires } : {}),
    };
    void action.run(async () => {
      try {
        setCreated(await api<ApiKey>('POST', '/v1/api-keys', { body }));
      } catch (caught) {
        if (caught instanceof ApiError && caught.status === 403)
          throw new Error(
            `Refused${caught.field ? ` (${caught.field})` : ''}: ${caught.message}. ` +
              'A key can never be given more than the key creating it holds.',
          );
        throw caught;
      }
      form.reset();
      // reset() would leave the first role (admin) chosen: back to the least one offered.
      (form.elements.namedItem('role') as HTMLSelectElement).value = 'reader';
      await reload();
    });
  };
  const revoke = (key: ApiKey) =>
    action.run(async () => {
      if (!confirm(`Revoke API key ${key.name}? Anything using it stops working at once.`)) return;
      await api('DELETE', `/v1/api-keys/${key.id}`);
      await reload();
      return `Key ${key.name} revoked.`;
    });
  const names = new Map(
    [...(data?.projects ?? []), ...(data?.vaults ?? [])].map((n) => [n.id, n.name]),
  );
  const limits = (key: ApiKey) =>
    [...key.project_ids, ...key.vault_ids].map((id) => names.get(id) ?? id).join(', ') || 'all';
  return (
    <section>
      <h1>API keys</h1>
      <Status error={error} />
      {created?.token && (
        <ShownOnce
          title={`New key ${created.name}`}
          value={created.token}
          testId="new-token"
          onDone={() => setCreated(undefined)}
        />
      )}
      {mayWrite && (
        <form onSubmit={create} aria-labelledby="new-key-heading" class="panel">
          <h2 id="new-key-heading">New API key</h2>
          <Field label="Name">
            <input name="name" required maxLength={100} />
          </Field>
          <Field label="Role" hint="A key can never have more power than the key creating it.">
            <select name="role">
              {ROLES.map((role) => (
                <option selected={role === 'reader'}>{role}</option>
              ))}
            </select>
          </Field>
          <fieldset>
            <legend>Scopes (optional: narrow the role to these)</legend>
            <div class="checks">
              {me.permissions.map((permission) => (
                <label class="check">
                  <input type="checkbox" name="scope" value={permission} /> {permission}
                </label>
              ))}
            </div>
          </fieldset>
          {data && data.projects.length > 0 && (
            <Field label="Limit to projects (optional)" hint="Ctrl/Cmd-click to choose several.">
              <select name="project_ids" multiple size={Math.min(4, data.projects.length)}>
                {data.projects.map((p) => (
                  <option value={p.id}>{p.name}</option>
                ))}
              </select>
            </Field>
          )}
          {data && data.vaults.length > 0 && (
            <Field label="Limit to vaults (optional)" hint="Also grants restricted vaults.">
              <select name="vault_ids" multiple size={Math.min(4, data.vaults.length)}>
                {data.vaults.map((v) => (
                  <option value={v.id}>{v.name}</option>
                ))}
              </select>
            </Field>
          )}
          <Field label="Expires (optional)">
            <input name="expires" type="datetime-local" />
          </Field>
          <button type="submit" disabled={action.busy}>
            Create key
          </button>
        </form>
      )}
      <Status error={action.error} ok={action.ok} />
      <table>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Role</th>
            <th scope="col">Limited to</th>
            <th scope="col">Prefix</th>
            <th scope="col">Last used</th>
            <th scope="col">Expires</th>
            <th scope="col">Status</th>
          </tr>
        </thead>
        <tbody>
          {data?.keys.map((key) => (
            <tr key={key.id}>
              <td>{key.name}</td>
              <td>
                {key.role}
                {key.scopes && <small class="muted"> ({key.scopes.join(', ')})</small>}
              </td>
              <td>{limits(key)}</td>
              <td>
                <code>{key.prefix}</code>
              </td>
              <td>{when(key.last_used_at)}</td>
              <td>{when(key.expires_at)}</td>
              <td>
                {key.revoked_at ? (
                  `revoked ${when(key.revoked_at)}`
                ) : mayWrite && key.id !== me.id ? (
                  <button
                    type="button"
                    class="small danger"
                    onClick={() => revoke(key)}
                    aria-label={`Revoke ${key.name}`}
                  >
                    Revoke
                  </button>
                ) : (
                  'active'
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
