/** The configuration file's schema: defaults, validation and the `Config` type. */
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
      drain_delay_ms: Type.Integer({ minimum: 0, maximum: 600_000, default: 0 }),
    }),
    storage: Section({
      // "postgres" (issue 20) is configured and validated here, but `serve` and the other
      // commands refuse it until the data layer can serve from it (src/config/storage.ts).
      backend: Type.Union([Type.Literal('sqlite'), Type.Literal('postgres')], {
        default: 'sqlite',
      }),
      path: Type.String({ minLength: 1, default: './data/secryn.db' }),
      // PostgreSQL only. The password never sits in the URL or this file: it comes from
      // storage.password_file, SECRYN_DB_PASSWORD or the systemd credential secryn-db-password.
      url: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })),
      password_file: Type.Optional(NonEmpty),
      // CA to verify the server against (verify-full: chain and host name); TLS is on with it.
      ca_file: Type.Optional(NonEmpty),
      // Connections per node. 4, not Bun.sql's 10: measured on this project's machine, 4 served
      // more audited reads (15.8 k vs 12.7 k req/s) with less PostgreSQL CPU per request, since
      // group commit keeps one batch in flight; N nodes hold N × pool_size connections.
      pool_size: Type.Integer({ minimum: 1, maximum: 1000, default: 4 }),
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
      // Copies of every entry to a SIEM (src/audit/ship/): RFC 5424 syslog over TCP or TLS
      // and/or a JSON-lines file; off while neither is set.
      ship: Section({
        syslog: Type.Optional(
          Type.String({ pattern: '^(tcp|tls)://[^/\\s]+:[0-9]{1,5}$', maxLength: 300 }),
        ),
        syslog_ca_file: Type.Optional(NonEmpty),
        file: Type.Optional(NonEmpty),
      }),
    }),
    // Scheduled backups inside `serve` (src/backup/schedule.ts); off while `schedule` is unset.
    backup: Section({
      schedule: Type.Optional(
        Type.String({
          pattern: '^(daily ([01][0-9]|2[0-3]):[0-5][0-9]|every [1-9][0-9]{0,4}[mhd])$',
        }),
      ),
      directory: Type.Optional(NonEmpty),
      keep_last: Type.Integer({ minimum: 1, maximum: 10_000, default: 7 }),
      encrypt_to: Type.Array(Type.String({ pattern: '^age1[0-9a-z]+$', maxLength: 4096 }), {
        default: [],
        maxItems: 32,
      }),
    }),
    events: Section({
      retention_days: Type.Integer({ minimum: 1, maximum: 36500, default: 90 }),
      stream_heartbeat_seconds: Type.Integer({ minimum: 1, maximum: 300, default: 15 }),
      max_streams_per_key: Type.Integer({ minimum: 1, maximum: 10_000, default: 5 }),
      max_streams: Type.Integer({ minimum: 1, maximum: 100_000, default: 1000 }),
    }),
    metrics: Section({
      // GET /metrics on the API listener (admins and keys with metrics:read); live on SIGHUP.
      enabled: Type.Boolean({ default: true }),
      // A second, unauthenticated listener serving /metrics alone, e.g. "127.0.0.1:9464"; "" is off.
      listen: Type.String({ default: '', maxLength: 300 }),
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
