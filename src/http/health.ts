/** The health routes (`/health`, `/v1/health`). */
import { Elysia, t } from 'elysia';

export type HealthOptions = {
  version: string;
  /**
   * The names of the readiness checks failing now (e.g. `database`, `keyring`); empty when the
   * database accepts writes and the keyring can open every stored value.
   */
  failingChecks: () => Promise<string[]>;
  /**
   * The names of the readiness checks failing now: everything {@link failingChecks} names plus
   * `audit` (the audit log cannot commit) and `draining` (the server is shutting down). Without
   * it, readiness answers as liveness does.
   */
  notReady?: () => Promise<string[]>;
};

const HealthBody = t.Object({
  status: t.Union([t.Literal('ok'), t.Literal('unavailable')]),
  version: t.String(),
  /** On 503 only: which checks fail, by name (why is in the server log). */
  failing: t.Optional(t.Array(t.String())),
});

/**
 * `GET /health` and `GET /v1/health` (docs/api.md §2): liveness, for a supervisor deciding whether to
 * restart the process; no auth, no internals; 503 with `status: unavailable` when the instance
 * cannot serve writes. `GET /v1/health/ready`: readiness, for a load balancer deciding whether
 * to send traffic (README "Operations"); the same answers, and 503 also while the audit log
 * cannot commit or the server drains on shutdown.
 */
export function healthRoutes(options: HealthOptions) {
  const answer =
    (checks: () => Promise<string[]>) =>
    async ({ set }: { set: { status?: number | string } }) => {
      const failing = await checks();
      if (failing.length === 0) {
        set.status = 200;
        return { status: 'ok' as const, version: options.version };
      }
      set.status = 503;
      return { status: 'unavailable' as const, version: options.version, failing };
    };
  const handler = answer(options.failingChecks);
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
    .get('/v1/health', handler, { response: { 200: HealthBody, 503: HealthBody }, detail })
    .get('/v1/health/ready', answer(options.notReady ?? options.failingChecks), {
      response: { 200: HealthBody, 503: HealthBody },
      detail: {
        ...detail,
        summary: 'Readiness check',
        description:
          'For load balancers: 503 with the failing checks named (database, disk_full, keyring, ' +
          'audit, draining) whenever this instance should not get traffic; no authentication.',
      },
    });
}

/**
 * `probe`'s verdict, reused for `ttlMs` after it settles; callers arriving while a probe runs
 * share it, so a burst of health checks costs one probe. Used by liveness (the write probe) and
 * readiness (the audit probe).
 */
export function cachedProbe(probe: () => Promise<boolean>, ttlMs: number): () => Promise<boolean> {
  let last: { at: number; ok: boolean; pending?: Promise<boolean> } = { at: -Infinity, ok: false };
  return async () => {
    if (!last.pending && performance.now() - last.at >= ttlMs) {
      const pending = probe().then((ok) => {
        last = { at: performance.now(), ok };
        return ok;
      });
      last = { ...last, pending };
    }
    return last.pending ? await last.pending : last.ok;
  };
}
