import { Elysia, t } from 'elysia';

export type HealthOptions = {
  version: string;
  /** True when the database accepts writes and the keyring is loaded. */
  isHealthy: () => Promise<boolean>;
  /**
   * Asked only when unhealthy: a short stable code naming a known cause (e.g. `disk_full`),
   * never internals such as paths or error texts; undefined when no known cause applies.
   */
  unavailableReason?: () => string | undefined;
};

const HealthBody = t.Object({
  status: t.Union([t.Literal('ok'), t.Literal('unavailable')]),
  version: t.String(),
  reason: t.Optional(t.String({ description: 'Why unavailable, e.g. `disk_full`' })),
});

/**
 * `GET /health` and `GET /v1/health` (API.md §2): no auth, no internals; 503 with
 * `status: unavailable` when the instance cannot serve writes.
 */
export function healthRoutes(options: HealthOptions) {
  const handler = async ({ set }: { set: { status?: number | string } }) => {
    const healthy = await options.isHealthy();
    set.status = healthy ? 200 : 503;
    const reason = healthy ? undefined : options.unavailableReason?.();
    return {
      status: healthy ? ('ok' as const) : ('unavailable' as const),
      version: options.version,
      ...(reason === undefined ? {} : { reason }),
    };
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
