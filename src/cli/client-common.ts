/**
 * What every client command (`secret`, `project`, `vault`, `env`, `run`, `whoami`…) shares: the
 * connection flags, and building a `SecrynClient` from them, the environment and the saved
 * profile. The token never comes from an argument (it would show in `ps` and shell history):
 * `SECRYN_TOKEN`, else the profile written by `secryn login`.
 */
import type { ArgsDef } from 'citty';
import { ClientError, readCaFile, SecrynClient } from '../client/http.ts';
import { DEFAULT_PROFILE, loadProfile, type Profile } from '../client/profile.ts';
import { commonArgs, loadCliConfig } from './common.ts';
import { ExitCode } from './exit.ts';

/** Connection flags of the client commands. */
export const clientArgs = {
  // On the server's own host: the server address comes from its configuration file.
  config: {
    ...commonArgs.config,
    description:
      'A server configuration file: talk to the server it configures (its [server] address), unless --url or $SECRYN_URL is given',
  },
  url: {
    type: 'string',
    description:
      'Server URL, e.g. https://secryn.internal:8443 (default: $SECRYN_URL, else the profile)',
    valueHint: 'url',
  },
  profile: {
    type: 'string',
    description: 'Saved login to use (default: $SECRYN_PROFILE, else "default")',
    valueHint: 'name',
  },
  'ca-file': {
    type: 'string',
    description:
      'Extra CA certificate(s) to trust, PEM (default: $SECRYN_CACERT, else the profile)',
    valueHint: 'path',
  },
  timeout: {
    type: 'string',
    description: 'Seconds to wait for each answer (default 30)',
    valueHint: 'seconds',
  },
} as const satisfies ArgsDef;

export type ClientArgs = {
  config?: string;
  url?: string;
  profile?: string;
  'ca-file'?: string;
  caFile?: string;
  timeout?: string;
};

/** The profile name the flags and environment select. */
export function profileName(args: ClientArgs): string {
  return args.profile || process.env.SECRYN_PROFILE || DEFAULT_PROFILE;
}

/** The timeout flag in ms. */
export function timeoutMs(args: ClientArgs): number | undefined {
  if (args.timeout === undefined) return undefined;
  const seconds = Number(args.timeout);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600) {
    throw new ClientError('--timeout must be a number of seconds (0 < s ≤ 3600)', ExitCode.USAGE);
  }
  return seconds * 1000;
}

/** The CA PEM the flags, the environment or the profile name (undefined: system trust only). */
export function caOf(args: ClientArgs, profile?: Pick<Profile, 'ca_file'>): string | undefined {
  const path = args['ca-file'] || args.caFile || process.env.SECRYN_CACERT || profile?.ca_file;
  return path ? readCaFile(path) : undefined;
}

/** The address of the server `--config` configures (a wildcard host means this host). */
export function configuredUrl(args: ClientArgs): string | undefined {
  if (args.config === undefined) return undefined;
  const { server } = loadCliConfig(args, { postgres: 'handled' }).config;
  const host = ['0.0.0.0', '::', ''].includes(server.host) ? '127.0.0.1' : server.host;
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return `${server.tls_cert_file ? 'https' : 'http'}://${hostPart}:${server.port}`;
}

/** A client for the server and token the flags, the environment and the profile name. */
export function connect(args: ClientArgs): SecrynClient {
  const name = profileName(args);
  const profile = loadProfile(name);
  const url = args.url || process.env.SECRYN_URL || configuredUrl(args) || profile?.url;
  if (!url) {
    throw new ClientError(
      'no server: give --url or SECRYN_URL, or run `secryn login --url URL` first',
      ExitCode.NOT_LOGGED_IN,
      'NOT_LOGGED_IN',
    );
  }
  const token = process.env.SECRYN_TOKEN || profile?.token;
  // Taken once, then kept out of the environment that `secryn run` hands to its child.
  delete process.env.SECRYN_TOKEN;
  if (!token) {
    throw new ClientError(
      `no token: set SECRYN_TOKEN or run \`secryn login\`${name === DEFAULT_PROFILE ? '' : ` --profile ${name}`}`,
      ExitCode.NOT_LOGGED_IN,
      'NOT_LOGGED_IN',
    );
  }
  return new SecrynClient({ url, token, ca: caOf(args, profile), timeoutMs: timeoutMs(args) });
}
