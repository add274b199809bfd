/**
 * `secryn login [--url URL] [--profile NAME]`: reads an API token (a prompt without echo, or
 * stdin when it is not a terminal), checks it with `GET /v1/me`, and saves server, CA file and
 * token as a profile (0600 file in a 0700 directory). The token is never an argument.
 */
import { defineCommand } from 'citty';
import { resolve } from 'node:path';
import { ClientError, SecrynClient } from '../client/http.ts';
import { loadProfile, saveProfile } from '../client/profile.ts';
import { promptHidden, readStdin } from '../client/read-secret.ts';
import type { MeObject } from '../me/schemas.ts';
import { caOf, clientArgs, configuredUrl, profileName, timeoutMs } from './client-common.ts';
import { jsonArg, print } from './common.ts';
import { ExitCode } from './exit.ts';

export const loginCommand = defineCommand({
  meta: {
    name: 'login',
    description:
      'Save a server and API token as a profile (token from a hidden prompt, or from stdin)',
  },
  args: { ...clientArgs, ...jsonArg },
  async run({ args }) {
    const name = profileName(args);
    const previous = loadProfile(name);
    const url = args.url || process.env.SECRYN_URL || configuredUrl(args) || previous?.url;
    if (!url) throw new ClientError('login needs --url (or SECRYN_URL)', ExitCode.USAGE);
    const caPath = args['ca-file'] || process.env.SECRYN_CACERT || previous?.ca_file;
    const token = (
      process.stdin.isTTY
        ? await promptHidden(`API token for ${url}: `)
        : new TextDecoder().decode(await readStdin())
    ).trim();
    if (!token) throw new ClientError('no token given', ExitCode.USAGE);
    const client = new SecrynClient({
      url,
      token,
      ca: caOf({ 'ca-file': caPath }),
      timeoutMs: timeoutMs(args),
    });
    const me = await client.request<MeObject>('GET', '/v1/me');
    const path = saveProfile(name, {
      url: client.baseUrl,
      token,
      ...(caPath ? { ca_file: resolve(caPath) } : {}),
    });
    if (args.json) print(JSON.stringify({ profile: name, url: client.baseUrl, key: me }));
    else
      print(
        `Logged in to ${client.baseUrl} as "${me.name}" (${me.role}); profile "${name}" saved in ${path}`,
      );
  },
});
