/** Sign-in: an API key, exchanged once for a session cookie; the key is not kept anywhere. */
import { useState } from 'preact/hooks';
import { api, errorText, type Session } from '../api.ts';
import { Field, Status } from '../ui.tsx';

export function SignIn({ onSignedIn }: { onSignedIn: (session: Session) => void }) {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const input = form.elements.namedItem('token') as HTMLInputElement;
    const token = input.value.trim();
    setBusy(true);
    setError(undefined);
    try {
      const session = await api<Session>('POST', '/v1/sessions', {
        headers: { authorization: `Bearer ${token}` },
      });
      input.value = '';
      onSignedIn(session);
    } catch (caught) {
      setError(errorText(caught));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="sign-in">
      <h1>Sign in to Secryn</h1>
      <form onSubmit={submit}>
        <Field
          label="API key"
          hint="Paste a key (scr_…). It is exchanged for a session cookie and not stored by this page."
        >
          <input
            name="token"
            type="password"
            autocomplete="off"
            required
            autofocus
            spellcheck={false}
          />
        </Field>
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        <Status error={error} />
      </form>
    </main>
  );
}
