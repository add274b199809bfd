/**
 * Webhooks: list with health, create (the signing secret shown once, with copy), enable/disable,
 * send a test event; one webhook's deliveries with status and response code, and retry.
 */
import { useState } from 'preact/hooks';
import { api, type List, type Me } from '../api.ts';
import { Field, formValue, ShownOnce, Status, useAction, useLoad, when } from '../ui.tsx';
import { EVENT_TYPES as SERVER_EVENT_TYPES } from '../../../src/ledger/event-types.ts';

type Webhook = {
  id: string;
  url: string;
  events: string[];
  project_id: string | null;
  enabled: boolean;
  description: string;
  failing_since: string | null;
  disabled_reason: string | null;
  secret?: string;
};
type Delivery = {
  id: string;
  event_type: string;
  status: string;
  attempt: number;
  response_status: number | null;
  duration_ms: number | null;
  error: string | null;
  last_attempt_at: string | null;
  next_attempt_at: string | null;
  created_at: string;
};

/**
 * The event types a webhook can subscribe to, `*` being all of them: the server's own list
 * (shared with the bundle, so the two cannot drift), less `ping`, which only the test button
 * sends.
 */
const EVENT_TYPES = SERVER_EVENT_TYPES.filter((type) => type !== 'ping');

function health(w: Webhook): [string, string | undefined] {
  if (!w.enabled) return [`disabled${w.disabled_reason ? `: ${w.disabled_reason}` : ''}`, 'bad'];
  if (w.failing_since) return [`failing since ${when(w.failing_since)}`, 'bad'];
  return ['healthy', 'good'];
}

/** Enable/disable and test: the same buttons on the list and on a webhook's page. */
function WebhookActions({ webhook, changed }: { webhook: Webhook; changed: () => Promise<void> }) {
  const action = useAction();
  const toggle = () =>
    action.run(async () => {
      await api('PUT', `/v1/webhooks/${webhook.id}`, { body: { enabled: !webhook.enabled } });
      await changed();
      return webhook.enabled ? 'Disabled.' : 'Enabled.';
    });
  const test = () =>
    action.run(async () => {
      await api('POST', `/v1/webhooks/${webhook.id}/test`);
      await changed();
      return 'Test event queued.';
    });
  return (
    <>
      <button
        type="button"
        class="small"
        onClick={toggle}
        aria-label={`${webhook.enabled ? 'Disable' : 'Enable'} ${webhook.url}`}
      >
        {webhook.enabled ? 'Disable' : 'Enable'}
      </button>
      <button
        type="button"
        class="small"
        onClick={test}
        aria-label={`Send test event to ${webhook.url}`}
      >
        Send test event
      </button>
      <Status error={action.error} ok={action.ok} />
    </>
  );
}

export function WebhooksPage({ me }: { me: Me }) {
  const mayWrite = me.permissions.includes('webhooks:write');
  const { data, error, reload } = useLoad(async () => {
    const [webhooks, projects] = await Promise.all([
      api<List<Webhook>>('GET', '/v1/webhooks?limit=100'),
      me.permissions.includes('projects:read')
        ? api<List<{ id: string; name: string }>>('GET', '/v1/projects?limit=100')
        : Promise.resolve({ data: [] }),
    ]);
    return { webhooks: webhooks.data, projects: projects.data };
  });
  const [created, setCreated] = useState<Webhook>();
  const action = useAction();
  const create = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const chosen = [...form.querySelectorAll<HTMLInputElement>('input[name=event]:checked')].map(
      (box) => box.value,
    );
    const projectId = formValue(event, 'project_id');
    const description = formValue(event, 'description');
    const body = {
      url: formValue(event, 'url'),
      events: chosen.length ? chosen : ['*'],
      ...(projectId ? { project_id: projectId } : {}),
      ...(description ? { description } : {}),
    };
    void action.run(async () => {
      setCreated(await api<Webhook>('POST', '/v1/webhooks', { body }));
      form.reset();
      await reload();
    });
  };
  return (
    <section>
      <h1>Webhooks</h1>
      <Status error={error} />
      {created?.secret && (
        <ShownOnce
          title={`Signing secret of ${created.url}`}
          value={created.secret}
          testId="new-secret"
          onDone={() => setCreated(undefined)}
        />
      )}
      <table>
        <thead>
          <tr>
            <th scope="col">URL</th>
            <th scope="col">Events</th>
            <th scope="col">Health</th>
            {mayWrite && <th scope="col">Actions</th>}
          </tr>
        </thead>
        <tbody>
          {data?.webhooks.map((w) => {
            const [text, tone] = health(w);
            return (
              <tr key={w.id}>
                <td class="url">
                  <a href={`#/webhooks/${w.id}`}>{w.url}</a>
                  {w.description && <div class="muted">{w.description}</div>}
                </td>
                <td>{w.events.join(', ')}</td>
                <td class={tone}>{text}</td>
                {mayWrite && (
                  <td>
                    <WebhookActions webhook={w} changed={reload} />
                  </td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
      {data && data.webhooks.length === 0 && <p class="muted">No webhooks yet.</p>}
      {mayWrite && (
        <form onSubmit={create} aria-labelledby="new-webhook-heading" class="panel">
          <h2 id="new-webhook-heading">New webhook</h2>
          <Field label="URL" hint="Where signed events are POSTed (https, or an allowed host).">
            <input name="url" type="url" required maxLength={2048} />
          </Field>
          <fieldset>
            <legend>Events (none chosen: all)</legend>
            <div class="checks">
              {EVENT_TYPES.map((type) => (
                <label class="check">
                  <input type="checkbox" name="event" value={type} /> {type}
                </label>
              ))}
            </div>
          </fieldset>
          {data && data.projects.length > 0 && (
            <Field label="Only events of project (optional)">
              <select name="project_id">
                <option value="">all projects</option>
                {data.projects.map((p) => (
                  <option value={p.id}>{p.name}</option>
                ))}
              </select>
            </Field>
          )}
          <Field label="Description (optional)">
            <input name="description" maxLength={500} />
          </Field>
          <button type="submit" disabled={action.busy}>
            Create webhook
          </button>
        </form>
      )}
      <Status error={action.error} ok={action.ok} />
    </section>
  );
}

export function WebhookPage({ me, webhookId }: { me: Me; webhookId: string }) {
  const mayWrite = me.permissions.includes('webhooks:write');
  const { data, error, reload } = useLoad(async () => {
    const [webhook, deliveries] = await Promise.all([
      api<Webhook>('GET', `/v1/webhooks/${webhookId}`),
      api<List<Delivery>>('GET', `/v1/webhooks/${webhookId}/deliveries?limit=50`),
    ]);
    return { webhook, deliveries: deliveries.data };
  }, [webhookId]);
  const action = useAction();
  const retry = (delivery: Delivery) =>
    action.run(async () => {
      await api('POST', `/v1/webhooks/${webhookId}/deliveries/${delivery.id}/retry`);
      await reload();
      return 'Delivery queued again.';
    });
  const webhook = data?.webhook;
  const [text, tone] = webhook ? health(webhook) : ['', undefined];
  return (
    <section>
      <p>
        <a href="#/webhooks">← Webhooks</a>
      </p>
      <h1 class="url">Webhook {webhook?.url ?? ''}</h1>
      <Status error={error} />
      {webhook && (
        <>
          <dl class="meta">
            <dt>Events</dt>
            <dd>{webhook.events.join(', ')}</dd>
            <dt>Health</dt>
            <dd class={tone}>{text}</dd>
            <dt>Description</dt>
            <dd>{webhook.description || '—'}</dd>
          </dl>
          {mayWrite && (
            <div class="actions">
              <WebhookActions webhook={webhook} changed={reload} />
            </div>
          )}
        </>
      )}
      <h2>Deliveries</h2>
      <Status error={action.error} ok={action.ok} />
      <table>
        <thead>
          <tr>
            <th scope="col">Created</th>
            <th scope="col">Event</th>
            <th scope="col">Status</th>
            <th scope="col">Response</th>
            <th scope="col">Attempts</th>
            <th scope="col">Error</th>
            {mayWrite && <th scope="col">Action</th>}
          </tr>
        </thead>
        <tbody>
          {data?.deliveries.map((d) => (
            <tr key={d.id}>
              <td>{when(d.created_at)}</td>
              <td>{d.event_type}</td>
              <td
                class={
                  d.status === 'failed' ? 'bad' : d.status === 'succeeded' ? 'good' : undefined
                }
              >
                {d.status}
                {d.next_attempt_at && <small class="muted"> next {when(d.next_attempt_at)}</small>}
              </td>
              <td>{d.response_status ?? '—'}</td>
              <td>{d.attempt}</td>
              <td class="wrap">{d.error ?? '—'}</td>
              {mayWrite && (
                <td>
                  {d.status !== 'succeeded' && d.status !== 'in_flight' && (
                    <button type="button" class="small" onClick={() => retry(d)}>
                      Retry
                    </button>
                  )}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {data && data.deliveries.length === 0 && <p class="muted">No deliveries yet.</p>}
    </section>
  );
}
