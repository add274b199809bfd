/** Loads and validates the TOML configuration file (errors exit 78 with one line per problem). */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { parse as parseToml, TomlError } from 'smol-toml';
import { parseCidrList } from '../net/ip.ts';
import { ConfigSchema, type Config } from './schema.ts';
import { storageErrors } from './storage.ts';

/** sysexits.h EX_CONFIG: the process was given a configuration it cannot use. */
export const EXIT_CONFIG = 78;

/**
 * A configuration that cannot be used. `lines` holds one human-readable line per problem
 * (parse errors name line and column; schema errors name the dotted key path and why), and is
 * all the CLI prints before exiting with {@link EXIT_CONFIG}.
 */
export class ConfigError extends Error {
  constructor(readonly lines: string[]) {
    super(lines.join('\n'));
    this.name = 'ConfigError';
  }
}

/** Where the configuration came from, so paths inside it can be resolved and `serve` can say. */
export type ConfigSource = { kind: 'file'; path: string } | { kind: 'defaults' };

export type LoadedConfig = { config: Config; source: ConfigSource };

/**
 * Loads the configuration: `--config PATH`, else `$SECRYN_CONFIG`, else the embedded defaults.
 * Relative paths in a file (`storage.path`, `encryption.master_key_file`, TLS, CA and password
 * files) are
 * resolved against the file's directory, so a unit file or cron job works from any working
 * directory; with the embedded defaults they are resolved against the working directory.
 * @throws ConfigError for unreadable files, TOML syntax errors and schema violations.
 */
export function loadConfig(
  opts: { path?: string; env?: Record<string, string | undefined>; cwd?: string } = {},
): LoadedConfig {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const chosen = opts.path || env.SECRYN_CONFIG;
  if (!chosen) {
    return { config: resolvePaths(validateConfig({}), cwd), source: { kind: 'defaults' } };
  }
  const path = resolve(cwd, chosen);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : 'unreadable';
    throw new ConfigError([`${path}: ${reason}`]);
  }
  return {
    config: resolvePaths(parseConfigText(text, path), dirname(path)),
    source: { kind: 'file', path },
  };
}

/**
 * Parses and validates TOML text. `label` prefixes every error line (normally the file path).
 * @throws ConfigError listing every problem found.
 */
export function parseConfigText(text: string, label = 'config'): Config {
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (error) {
    if (error instanceof TomlError) {
      const reason = error.message.split('\n')[0]?.trim() || 'invalid TOML';
      throw new ConfigError([`${label}:${error.line}:${error.column}: ${reason}`]);
    }
    throw new ConfigError([`${label}: invalid TOML`]);
  }
  try {
    return validateConfig(raw);
  } catch (error) {
    if (error instanceof ConfigError) {
      throw new ConfigError(error.lines.map((line) => `${label}: ${line}`));
    }
    throw error;
  }
}

/**
 * Fills defaults into a parsed document and validates it against {@link ConfigSchema}.
 * @throws ConfigError naming every bad key by its dotted path.
 */
export function validateConfig(raw: unknown): Config {
  const withDefaults = Value.Default(ConfigSchema, structuredClone(raw ?? {}));
  const lines: string[] = [];
  const seen = new Set<string>();
  for (const error of Value.Errors(ConfigSchema, withDefaults)) {
    const line = describeSchemaError(error.path, error.message, error.schema);
    if (!seen.has(line)) {
      seen.add(line);
      lines.push(line);
    }
  }
  const config = withDefaults as Config;
  if (lines.length === 0) lines.push(...crossFieldErrors(config));
  if (lines.length > 0) throw new ConfigError(lines);
  return config;
}

function crossFieldErrors(config: Config): string[] {
  const lines: string[] = [];
  const { tls_cert_file, tls_key_file } = config.server;
  if (Boolean(tls_cert_file) !== Boolean(tls_key_file)) {
    lines.push(
      `${tls_cert_file ? 'server.tls_key_file' : 'server.tls_cert_file'}: required when ${
        tls_cert_file ? 'server.tls_cert_file' : 'server.tls_key_file'
      } is set`,
    );
  }
  lines.push(...storageErrors(config.storage));
  if (config.backup.schedule && !config.backup.directory) {
    lines.push('backup.directory: required when backup.schedule is set');
  }
  if (config.audit.ship.syslog_ca_file && !config.audit.ship.syslog?.startsWith('tls://')) {
    lines.push('audit.ship.syslog_ca_file: only used with audit.ship.syslog = "tls://…"');
  }
  const cidrs = parseCidrList(config.webhooks.allowed_cidrs);
  if (!cidrs.ok) lines.push(`webhooks.allowed_cidrs.${cidrs.index}: ${cidrs.reason}`);
  if (config.metrics.listen !== '' && parseListenAddress(config.metrics.listen) === undefined) {
    lines.push('metrics.listen: must be "host:port" (e.g. "127.0.0.1:9464"; IPv6 as "[::1]:9464")');
  }
  return lines;
}

/** `host:port` (IPv6 in brackets) as its parts, or undefined when it is not one. */
export function parseListenAddress(value: string): { host: string; port: number } | undefined {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^\s:\[\]]+):(\d{1,5})$/.exec(value);
  if (!match) return undefined;
  const port = Number(match[2]);
  if (port > 65535) return undefined;
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

function describeSchemaError(
  pointer: string,
  message: string,
  schema: { [key: string]: unknown },
): string {
  const dotted = pointer.replace(/^\//, '').split('/').filter(Boolean).join('.') || '(root)';
  // TypeBox reports an unknown key against its parent object with the key as the value path.
  if (schema.additionalProperties === false && message.startsWith('Unexpected property')) {
    return `${dotted}: unknown key`;
  }
  const literals = Array.isArray(schema.anyOf)
    ? (schema.anyOf as { const?: unknown }[]).map((s) => s.const).filter((c) => c !== undefined)
    : [];
  if (literals.length > 0) {
    return `${dotted}: must be one of ${literals.map((l) => JSON.stringify(l)).join(', ')}`;
  }
  return `${dotted}: ${message.toLowerCase()}`;
}

function resolvePaths(config: Config, base: string): Config {
  const at = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  config.storage.path = config.storage.path === ':memory:' ? ':memory:' : at(config.storage.path);
  config.encryption.master_key_file = at(config.encryption.master_key_file);
  if (config.storage.password_file) config.storage.password_file = at(config.storage.password_file);
  if (config.storage.ca_file) config.storage.ca_file = at(config.storage.ca_file);
  if (config.server.tls_cert_file) config.server.tls_cert_file = at(config.server.tls_cert_file);
  if (config.server.tls_key_file) config.server.tls_key_file = at(config.server.tls_key_file);
  const { ship } = config.audit;
  if (ship.file) ship.file = at(ship.file);
  if (ship.syslog_ca_file) ship.syslog_ca_file = at(ship.syslog_ca_file);
  if (config.backup.directory) config.backup.directory = at(config.backup.directory);
  return config;
}
