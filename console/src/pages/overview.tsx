/** Overview: health, counts, what expires soon, failing webhooks, the audit chain's status. */
import { api, type List, type Me } from '../api.ts';
import { expiresWithin, Status, useLoad, when } from '../ui.tsx';
import type { Resource } from './vault.tsx';

type Health = { status: string; version: string };
type Webhook = {
  id: string;
  url: string;
  enabled: boolean;
  failing_since: string | null;
  disabled_reason: string | null;
};
type ChainStatus = {
  intact: boolean;
  verified: number;
  head: { seq: number };
  problem: { kind: string; message: string } | null;
  checked_at: string;
};

/** "Soon": the window the overview lists expiring resources for. */
const SOON_DAYS = 30;
/** Resources scanned for expiry at most (pages of 100); the overview says when it stopped. */
const SCAN_PAGES = 5;

/** When a resource stops being usable: its expiry, or a certificate's leaf not_after. */
export function endOf(resource: Resource): string | null {
  return resource.expires_at ?? resource.not_after ?? null;
}

async function expiringSoon(): Promise<{ soon: Resource[]; scanned: number; total: number }> {
  const first = await api<List<Resource>>('GET', '/v1/resources?limit=100');
  const pages = Math.min(SCAN_PAGES, Math.ceil(first.pagination.total / 100));
  const rest = await Promise.all(
    Array.from({ length: Math.max(0, pages - 1) }, (_, i) =>
      api<List<Resource>>('GET', `/v1/resources?limit=100&page=${i + 2}`),
    ),
  );
  const all = [first, ...rest].flatMap((list) => list.data);
  const soon = all
    .filter((r) => expiresWithin(endOf(r), SOON_DAYS))
    .sort((a, b) => Date.parse(endOf(a)!) - Date.parse(endOf(b)!));
  return { soon, scanned: all.length, total: first.pagination.total };
}

export function OverviewPage({ me }: { me: Me }) {
  const may = (p: string) => me.permissions.includes(p);
  const count = async (path: string, permission: string) =>
    may(permission) ? (await api<List<unknown>>('GET', `${path}?limit=1`)).pagination.total : null;
  const { data, error } = useLoad(async () => {
    const health = await fetch('/v1/health', { cache: 'no-store' }).then(
      (r) => r.json() as Promise<Health>,
    );
    const [projects, vaults, resources, keys, webhooks, expiry] = await Promise.all([
      count('/v1/projects', 'projects:read'),
      count('/v1/vaults', 'vaults:read'),
      count('/v1/resources', 'resources:read'),
      count('/v1/api-keys', 'api_keys:read'),
      may('webhooks:read') ? api<List<Webhook>>('GET', '/v1/webhooks?limit=100') : null,
      may('resources:read') ? expiringSoon() : null,
    ]);
    return { health, projects, vaults, resources, keys, webhooks, expiry };
  });
  // The chain walk is the costly part (the server reuses one walk for a minute): loaded apart.
  const chain = useLoad(async () =>
    may('audit:read') ? api<ChainStatus>('GET', '/v1/audit-logs/verify') : null,
  );
  const cards: [string, number | null | undefined][] = [
    ['Projects', data?.projects],
    ['Vaults', data?.vaults],
    ['Secrets, keys and certificates', data?.resources],
    ['API keys', data?.keys],
    ['Webhooks', data?.webhooks?.pagination.total ?? null],
  ];
  const failing = data?.webhooks?.data.filter((w) => !w.enabled || w.failing_since) ?? [];
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
      {chain.data && (
        <div class={chain.data.intact ? 'panel' : 'panel alarm'} data-testid="chain-status">
          <h2>Audit chain</h2>
          {chain.data.intact ? (
            <p>
              <strong class="good">Intact</strong>: all {chain.data.verified} entries hash and link
              as written (checked {when(chain.data.checked_at)}).
            </p>
          ) : (
            <p role="alert">
              <strong class="bad">Broken ({chain.data.problem?.kind})</strong>:{' '}
              {chain.data.problem?.message}. {chain.data.verified} entries verified before it
              (checked {when(chain.data.checked_at)}).
            </p>
          )}
        </div>
      )}
      <Status error={chain.error} />
      {data?.expiry && (
        <>
          <h2>Expiring within {SOON_DAYS} days</h2>
          {data.expiry.soon.length === 0 ? (
            <p class="muted">Nothing expires soon.</p>
          ) : (
            <ul data-testid="expiring">
              {data.expiry.soon.map((r) => {
                const end = endOf(r)!;
                return (
                  <li key={r.id}>
                    <a href={`#/vaults/${r.vault_id}/resources/${r.id}`}>{r.name}</a> ({r.type}){' '}
                    <span class={Date.parse(end) < Date.now() ? 'bad' : 'warn'}>
                      {Date.parse(end) < Date.now() ? 'expired' : 'expires'} {when(end)}
                    </span>
                  </li>
                );
              })}
            </ul>
          )}
          {data.expiry.scanned < data.expiry.total && (
            <p class="muted">
              Checked the first {data.expiry.scanned} of {data.expiry.total} resources.
            </p>
          )}
        </>
      )}
      {data?.webhooks && (
        <>
          <h2>Webhooks failing</h2>
          {failing.length === 0 ? (
            <p class="muted">No webhook is failing or disabled.</p>
          ) : (
            <ul data-testid="failing-webhooks">
              {failing.map((w) => (
                <li key={w.id}>
                  <a href={`#/webhooks/${w.id}`}>{w.url}</a>{' '}
                  <span class="bad">
                    {w.enabled
                      ? `failing since ${when(w.failing_since)}`
                      : `disabled${w.disabled_reason ? `: ${w.disabled_reason}` : ''}`}
                  </span>
                </li>
              ))}
            </ul>
          )}
        </>
      )}
      <p>
        Signed in as <strong>{me.name}</strong> ({me.role})
        {me.expires_at ? `, key expires ${when(me.expires_at)}` : ''}.
      </p>
    </section>
  );
}
