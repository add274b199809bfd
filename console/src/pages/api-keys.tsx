/** API keys: list, create (the token shown once, with a copy button), revoke. */
import { useState } from 'preact/hooks';
import { api, type List, type Me } from '../api.ts';
import { copyText, Field, formValue, Status, useAction, useLoad, when } from '../ui.tsx';

type ApiKey = {
  id: string;
  name: string;
  role: string;
  prefix: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
  token?: string;
};

const ROLES = ['admin', 'manager', 'contributor', 'reader', 'access'];

export function ApiKeysPage({ me }: { me: Me }) {
  const mayWrite = me.permissions.includes('api_keys:write');
  const { data, error, reload } = useLoad(() => api<List<ApiKey>>('GET', '/v1/api-keys?limit=100'));
  const [created, setCreated] = useState<ApiKey>();
  const action = useAction();
  const create = (event: Event) => {
    event.preventDefault();
    const name = formValue(event, 'name');
    const role = formValue(event, 'role');
    const expires = formValue(event, 'expires');
    const form = event.currentTarget as HTMLFormElement;
    void action.run(async () => {
      const key = await api<ApiKey>('POST', '/v1/api-keys', {
        body: {
          name,
          role,
          ...(expires
            ? { expires_at: new Date(expires).toISOString().replace(/\.\d+Z$/, 'Z') }
            : {}),
        },
      });
      setCreated(key);
      form.reset();
      reload();
    });
  };
  const revoke = (key: ApiKey) =>
    action.run(async () => {
      if (!confirm(`Revoke API key ${key.name}? Anything using it stops working at once.`)) return;
      await api('DELETE', `/v1/api-keys/${key.id}`);
      reload();
      return `Key ${key.name} revoked.`;
    });
  return (
    <section>
      <h1>API keys</h1>
      <Status error={error} />
      {created?.token && (
        <div class="once" role="status">
          <h2>New key {created.name}</h2>
          <p>This token is shown once. Copy it now; it cannot be shown again.</p>
          <code class="token" data-testid="new-token">
            {created.token}
          </code>
          <div class="actions">
            <button type="button" onClick={() => copyText(created.token!)}>
              Copy token
            </button>
            <button type="button" onClick={() => setCreated(undefined)}>
              Done
            </button>
          </div>
        </div>
      )}
      {mayWrite && (
        <form onSubmit={create} aria-label="New API key">
          <h2>New API key</h2>
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
            <th scope="col">Prefix</th>
            <th scope="col">Last used</th>
            <th scope="col">Expires</th>
            <th scope="col">Status</th>
          </tr>
        </thead>
        <tbody>
          {data?.data.map((key) => (
            <tr>
              <td>{key.name}</td>
              <td>{key.role}</td>
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
