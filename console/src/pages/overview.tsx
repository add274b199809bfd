/** Overview: health and how many of each thing the signed-in key can see. */
import { api, type List, type Me } from '../api.ts';
import { Status, useLoad } from '../ui.tsx';

type Health = { status: string; version: string };

export function OverviewPage({ me }: { me: Me }) {
  const may = (p: string) => me.permissions.includes(p);
  const count = async (path: string, permission: string) =>
    may(permission) ? (await api<List<unknown>>('GET', `${path}?limit=1`)).pagination.total : null;
  const { data, error } = useLoad(async () => {
    const health = await fetch('/v1/health', { cache: 'no-store' }).then(
      (r) => r.json() as Promise<Health>,
    );
    const [projects, vaults, resources, keys] = await Promise.all([
      count('/v1/projects', 'projects:read'),
      count('/v1/vaults', 'vaults:read'),
      count('/v1/resources', 'resources:read'),
      count('/v1/api-keys', 'api_keys:read'),
    ]);
    return { health, projects, vaults, resources, keys };
  });
  const cards: [string, number | null | undefined][] = [
    ['Projects', data?.projects],
    ['Vaults', data?.vaults],
    ['Secrets, keys and certificates', data?.resources],
    ['API keys', data?.keys],
  ];
  return (
    <section>
      <h1>Overview</h1>
      <Status error={error} />
      {data && (
        <>
          <p>
            Server:{' '}
            <strong class={data.health.status === 'ok' ? 'good' : 'bad'}>
              {data.health.status}
            </strong>
            , version {data.health.version}.
          </p>
          <ul class="cards">
            {cards
              .filter(([, n]) => n !== null)
              .map(([label, n]) => (
                <li>
                  <span class="number">{n}</span> {label}
                </li>
              ))}
          </ul>
        </>
      )}
      <p>
        Signed in as <strong>{me.name}</strong> ({me.role})
        {me.expires_at ? `, key expires ${new Date(me.expires_at).toLocaleString()}` : ''}.
      </p>
    </section>
  );
}
