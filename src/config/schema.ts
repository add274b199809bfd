import { Type, type Static } from '@sinclair/typebox';

/**
 * The one TOML configuration file, as a TypeBox schema. This schema is the single source of
 * truth: defaults, validation and the `Config` type all come from it. Every object rejects
 * unknown keys so that a typo (`[server] prot = 1`) is reported instead of silently ignored.
 * `config/secryn.example.toml` documents every key; `test/config.test.ts` keeps the two in step.
 */
const Section = <T extends Parameters<typeof Type.Object>[0]>(properties: T) =>
  Type.Object(properties, { additionalProperties: false, default: {} });

const NonEmpty = Type.String({ minLength: 1 });

export const ConfigSchema = Type.Object(
  {
    server: Section({
      host: Type.String({ minLength: 1, default: '127.0.0.1' }),
      port: Type.Integer({ minimum: 0, maximum: 65535, default: 8420 }),
      tls_cert_file: Type.Optional(NonEmpty),
      tls_key_file: Type.Optional(NonEmpty),
      max_body_bytes: Type.Integer({ minimum: 1024, maximum: 64 * 1024 * 1024, default: 1048576 }),
      trust_proxy: Type.Boolean({ default: false }),
      shutdown_timeout_ms: Type.Integer({ minimum: 0, maximum: 600_000, default: 10_000 }),
    }),
    storage: Section({
      path: Type.String({ minLength: 1, default: './data/secryn.db' }),
      synchronous: Type.Union([Type.Literal('full'), Type.Literal('normal')], { default: 'full' }),
      busy_timeout_ms: Type.Integer({ minimum: 0, maximum: 60_000, default: 5_000 }),
      deleted_retention_days: Type.Integer({ minimum: 0, maximum: 36500, default: 30 }),
    }),
    encryption: Section({
      master_key_file: Type.String({ minLength: 1, default: './data/master.key' }),
    }),
    rate_limit: Section({
      requests_per_minute: Type.Integer({ minimum: 1, maximum: 10_000_000, default: 600 }),
      burst: Type.Integer({ minimum: 1, maximum: 10_000_000, default: 100 }),
      max_tracked_clients: Type.Integer({ minimum: 100, maximum: 10_000_000, default: 100_000 }),
    }),
    webhooks: Section({
      timeout_ms: Type.Integer({ minimum: 100, maximum: 120_000, default: 10_000 }),
      max_attempts: Type.Integer({ minimum: 1, maximum: 100, default: 10 }),
      concurrency: Type.Integer({ minimum: 1, maximum: 256, default: 8 }),
      disable_after_hours: Type.Integer({ minimum: 1, maximum: 8760, default: 72 }),
      allowed_hosts: Type.Array(NonEmpty, { default: [] }),
      allowed_cidrs: Type.Array(NonEmpty, { default: [] }),
      per_endpoint_concurrency: Type.Integer({ minimum: 1, maximum: 256, default: 2 }),
      poll_interval_ms: Type.Integer({ minimum: 10, maximum: 60_000, default: 1_000 }),
    }),
    log: Section({
      level: Type.Union(
        [
          Type.Literal('silent'),
          Type.Literal('error'),
          Type.Literal('warn'),
          Type.Literal('info'),
          Type.Literal('debug'),
        ],
        { default: 'info' },
      ),
      format: Type.Union([Type.Literal('pretty'), Type.Literal('json')], { default: 'pretty' }),
    }),
    resources: Section({
      max_value_bytes: Type.Integer({ minimum: 1, maximum: 16 * 1024 * 1024, default: 65536 }),
    }),
    audit: Section({
      retention_days: Type.Integer({ minimum: 0, maximum: 36500, default: 0 }),
      anonymous_summary_seconds: Type.Integer({ minimum: 1, maximum: 3600, default: 60 }),
      anonymous_summary_max_addresses: Type.Integer({
        minimum: 1,
        maximum: 100_000,
        default: 256,
      }),
    }),
    events: Section({
      retention_days: Type.Integer({ minimum: 1, maximum: 36500, default: 90 }),
    }),
    notifications: Section({
      expiring_days: Type.Array(Type.Integer({ minimum: 1, maximum: 3650 }), {
        default: [30, 7, 1],
        maxItems: 16,
      }),
    }),
    console: Section({
      enabled: Type.Boolean({ default: true }),
      session_idle_minutes: Type.Integer({ minimum: 1, maximum: 1440, default: 30 }),
      session_max_hours: Type.Integer({ minimum: 1, maximum: 720, default: 12 }),
    }),
  },
  { additionalProperties: false },
);

/** The validated configuration with every default filled in. */
export type Config = Static<typeof ConfigSchema>;
