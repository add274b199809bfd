/**
 * Saved logins of the `secryn` client: `$XDG_CONFIG_HOME/secryn/profiles.json` (default
 * `~/.config/secryn/`), directory 0700, file 0600, written atomically. It holds each profile's
 * server URL, CA file path and token: the one place a token is kept on disk, readable by its
 * owner only, as `~/.docker/config.json` or `~/.vault-token` do.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../crypto/atomic-file.ts';
import { CliFailure, ExitCode } from '../cli/exit.ts';

/** One saved login. */
export type Profile = { url: string; token: string; ca_file?: string };

type ProfileFile = { profiles: Record<string, Profile> };

/** The profile used when none is named (`--profile`, `SECRYN_PROFILE`). */
export const DEFAULT_PROFILE = 'default';

/** The client's configuration directory. */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME?.startsWith('/')
    ? env.XDG_CONFIG_HOME
    : join(env.HOME || homedir(), '.config');
  return join(base, 'secryn');
}

/** The file holding every profile. */
export function profilesPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), 'profiles.json');
}

function readProfiles(path: string): ProfileFile {
  if (!existsSync(path)) return { profiles: {} };
  // A token file others can read is already a leak; say so rather than keep using it quietly.
  if ((statSync(path).mode & 0o077) !== 0) {
    throw new CliFailure(
      `${path} is readable by other users; fix it with: chmod 600 ${path} (and consider revoking the keys it holds)`,
      ExitCode.NOT_LOGGED_IN,
    );
  }
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as ProfileFile;
    if (!parsed || typeof parsed.profiles !== 'object' || parsed.profiles === null) throw 0;
    return parsed;
  } catch {
    throw new CliFailure(`${path} is not a secryn profile file`, ExitCode.NOT_LOGGED_IN);
  }
}

/** The named profile, or undefined when there is none. */
export function loadProfile(
  name: string,
  env: NodeJS.ProcessEnv = process.env,
): Profile | undefined {
  return readProfiles(profilesPath(env)).profiles[name];
}

/** Saves (or replaces) a profile; creates the directory 0700 and the file 0600. */
export function saveProfile(
  name: string,
  profile: Profile,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const dir = configDir(env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const path = profilesPath(env);
  const file = readProfiles(path);
  file.profiles[name] = profile;
  writeFileAtomic(path, JSON.stringify(file, null, 2) + '\n', 0o600);
  return path;
}

/** Removes a profile; true when there was one. */
export function removeProfile(name: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const path = profilesPath(env);
  const file = readProfiles(path);
  if (!(name in file.profiles)) return false;
  delete file.profiles[name];
  writeFileAtomic(path, JSON.stringify(file, null, 2) + '\n', 0o600);
  return true;
}
