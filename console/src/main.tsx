/** The Secryn web console: a Preact app served at `/`, talking to `/v1` with a session cookie. */
import { render } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api, bindSession, type Me, type Session } from './api.ts';
import { ApiKeysPage } from './pages/api-keys.tsx';
import { AuditPage } from './pages/audit.tsx';
import { OverviewPage } from './pages/overview.tsx';
import { ProjectsPage } from './pages/projects.tsx';
import { ResourcePage } from './pages/resource.tsx';
import { SignIn } from './pages/sign-in.tsx';
import { VaultPage } from './pages/vault.tsx';
import { startLiveUpdates, useRoute } from './ui.tsx';
import { EventsPage } from './pages/events.tsx';
import { WebhookPage, WebhooksPage } from './pages/webhooks.tsx';
import './style.css';

function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const signedOut = useCallback(() => setSession(null), []);

  // A reloaded page asks for its session (and CSRF token) again; the token is never stored.
  useEffect(() => {
    api<Session>('GET', '/v1/sessions/current')
      .then(setSession)
      .catch(() => setSession(null));
  }, []);
  if (session) bindSession(session.csrf_token, signedOut);

  if (session === undefined) return <p class="loading">Loading…</p>;
  if (session === null) return <SignIn onSignedIn={setSession} />;
  return <Shell me={session.key} onSignOut={signedOut} />;
}

function Shell({ me, onSignOut }: { me: Me; onSignOut: () => void }) {
  const route = useRoute();
  const may = (permission: string) => me.permissions.includes(permission);
  // Live updates over the event stream when the key may read events; else refresh on focus.
  useEffect(() => (may('events:read') ? startLiveUpdates() : undefined), [me.id]);
  const signOut = async () => {
    try {
      await api('DELETE', '/v1/sessions/current');
    } finally {
      onSignOut();
    }
  };
  const nav: [string, string, boolean][] = [
    ['#/', 'Overview', true],
    ['#/projects', 'Projects and vaults', may('vaults:read') || may('projects:read')],
    ['#/api-keys', 'API keys', may('api_keys:read')],
    ['#/webhooks', 'Webhooks', may('webhooks:read')],
    ['#/events', 'Events', may('events:read')],
    ['#/audit', 'Audit log', may('audit:read')],
  ];
  let page;
  const [section, id, sub, subId] = route;
  if (section === 'projects') page = <ProjectsPage me={me} />;
  else if (section === 'vaults' && id && sub === 'resources' && subId)
    page = <ResourcePage me={me} vaultId={id} resourceId={subId} />;
  else if (section === 'vaults' && id) page = <VaultPage me={me} vaultId={id} />;
  else if (section === 'api-keys') page = <ApiKeysPage me={me} />;
  else if (section === 'webhooks' && id) page = <WebhookPage me={me} webhookId={id} />;
  else if (section === 'webhooks') page = <WebhooksPage me={me} />;
  else if (section === 'events') page = <EventsPage />;
  else if (section === 'audit') page = <AuditPage entryId={id} />;
  else page = <OverviewPage me={me} />;
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header>
        <span class="brand">Secryn</span>
        <nav aria-label="Main">
          {nav
            .filter(([, , shown]) => shown)
            .map(([href, label]) => (
              <a
                href={href}
                aria-current={
                  ('#/' + (section ?? '')).startsWith(href) && (href !== '#/' || !section)
                    ? 'page'
                    : undefined
                }
              >
                {label}
              </a>
            ))}
        </nav>
        <span class="who">
          {me.name} <span class="badge">{me.role}</span>
        </span>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        {page}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
