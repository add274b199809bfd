/** The health routes (`/health`, `/v1/health`). */
import { Elysia, t } from 'elysia';

export type HealthOptions = {
  version: string;
  /**
   * The names of the readiness checks failing now (e.g. `database`, `keyring`); empty when the
   * database accepts writes and the keyring can open every stored value.
   */
  failingChecks: () => Promise<string[]>;
};

const HealthBody = t.Object({
  status: t.Union([t.Literal('ok'), t.Literal('unavailable')]),
  version: t.String(),
  /** On 503 only: which checks fail, by name (why is in the server log). */
  failing: t.Optional(t.Array(t.String())),
});

/**
 * `GET /health` and `GET /v1/health` (docs/api.md §2): no auth, no internals; 503 with
 * `status: unavailable` when the instance cannot serve writes.
 */
export function healthRoutes(options: HealthOptions) {
  const handler = async ({ set }: { set: { status?: number | string } }) => {
    const failing = await options.failingChecks();
    if (failing.length === 0) {
      set.status = 200;
      return { status: 'ok' as const, version: options.version };
    }
    set.status = 503;
    return { status: 'unavailable' as const, version: options.version, failing };
  };
  const detail = {
    summary: 'Health check',
    description: 'Liveness and writability; no authentication.',
    tags: ['system'],
    security: [],
  };
  return new Elysia({ name: 'health' })
    .get('/health', handler, {
      response: { 200: HealthBody, 503: HealthBody },
      detail: { ...detail, hide: true },
    })
    .get('/v1/health', handler, { response: { 200: HealthBody, 503: HealthBody }, detail });
}
