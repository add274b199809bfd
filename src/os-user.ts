/**
 * Who runs this process, by OS account: the actor of CLI actions in the audit log and of
 * locally created keys. Imports nothing of ours.
 */
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';

/**
 * The local OS user, recorded as the actor of CLI actions: the name /etc/passwd gives the
 * process's uid, else `uid:<n>`. Not `os.userInfo().username`: Bun takes it from $USER, which
 * cron and systemd leave unset (every entry read "unknown") and which anyone can set to another
 * user's name. Only where there are no uids (Windows) is the OS's own answer used.
 */
export function localActor(): string {
  const uid = process.getuid?.();
  if (uid === undefined) {
    try {
      return userInfo().username;
    } catch {
      return 'unknown';
    }
  }
  return passwdName(uid) ?? `uid:${uid}`;
}

/** The login name of `uid` in /etc/passwd, or undefined (no file, no entry: e.g. LDAP users). */
function passwdName(uid: number): string | undefined {
  let text: string;
  try {
    text = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [name, , id] = line.split(':');
    if (name && id !== undefined && /^\d+$/.test(id) && Number(id) === uid) return name;
  }
  return undefined;
}
