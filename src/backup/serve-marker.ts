/** The serve marker: a pid file saying a `secryn serve` runs on a database (restore checks it). */
import { SQLiteError, type Database } from 'bun:sqlite';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { writeFileAtomic } from '../crypto/atomic-file.ts';

/**
 * A pid file beside the database (`<db>.serve.pid`) that says a `secryn serve` is running on it.
 * `restore` refuses to swap the database under a live server, and a second `serve` on the same
 * file is refused (two writers on one SQLite file only slow each other down).
 *
 * A server killed without cleaning up (OOM kill, power loss) leaves its marker, and its pid may
 * since belong to another process. So the marker also records, where Linux tells them, the boot
 * it was written in and the writer's start time, and the file's owner is the user the writer
 * ran as. A marker is stale when:
 *  - its boot id is not the current one (both known; /proc/sys is hidden under ProcSubset=pid);
 *  - /proc shows the pid as a zombie, as another user's process than the marker's owner, or
 *    with another start time than the recorded one;
 *  - /proc does not show the pid (not Linux, or hidden by ProtectProc=invisible) and kill(pid,
 *    0) says there is no such process, or refuses (EPERM: another user's process) while the
 *    marker was written by this very user, who could signal its own writer;
 *  - it is in the old format and names this process, which writes the new format.
 * When none of these decides, the marker counts as live: refusing to start is recoverable,
 * two servers (or a restore under one) are not.
 *
 * Format: the pid on the first line (what other pid-file readers expect), then `key=value`
 * lines. A marker from before this format is the pid alone and is judged by the pid only.
 */
export function serveMarkerPath(databasePath: string): string {
  return `${databasePath}.serve.pid`;
}

/** What a marker says about the process that wrote it. */
export type ServeMarker = {
  pid: number;
  /** /proc/sys/kernel/random/boot_id when written; absent where /proc/sys is hidden. */
  bootId?: string;
  /** Field 22 of /proc/<pid>/stat (clock ticks after boot) of the writer; absent off Linux. */
  startTime?: string;
};

/** The pid of a live `secryn serve` on this database, if any (a stale marker counts as none). */
export function runningServePid(databasePath: string): number | undefined {
  const found = readServeMarker(serveMarkerPath(databasePath));
  if (!found) return undefined;
  return isMarkerLive(found.marker, found.ownerUid) ? found.marker.pid : undefined;
}

/**
 * Writes this process's marker, unless a live `secryn serve` holds it; returns the function that
 * removes it again, and only if it is still this process's. The check and the write happen
 * under the database's write lock (`BEGIN IMMEDIATE` on `sqlite`, an open connection to
 * `databasePath`): two servers starting together take turns, so they cannot both judge the same
 * stale marker and both replace it. SQLite drops the lock with a dying process, so a crash here
 * blocks no one. The marker is written to a temp file and hard-linked into place, so a reader
 * never sees it half-written and an existing one is never replaced.
 * @throws Error when another live `secryn serve` holds the marker.
 */
export function claimServeMarker(databasePath: string, sqlite: Database): () => void {
  const path = serveMarkerPath(databasePath);
  const mine = formatServeMarker(ownServeMarker());
  try {
    sqlite
      .transaction(() => {
        const other = runningServePid(databasePath);
        if (other !== undefined) {
          throw new Error(`another secryn serve (pid ${other}) is running on ${databasePath}`);
        }
        rmSync(path, { force: true });
        publishMarker(path, mine, databasePath);
      })
      .immediate();
  } catch (error) {
    if (error instanceof SQLiteError) {
      throw new Error(`could not lock ${databasePath} to claim ${path}: ${error.message}`, {
        cause: error,
      });
    }
    throw error;
  }
  return () => releaseServeMarker(path, mine);
}

/** Removes the marker at `path` if it still reads `mine`: never another server's. */
function releaseServeMarker(path: string, mine: string): void {
  let current: string;
  try {
    current = readFileSync(path, 'utf8');
  } catch {
    return; // already gone
  }
  if (current === mine) rmSync(path, { force: true });
}

/** Writes the marker (0600) through a temp file linked to `path`, never over an existing one. */
function publishMarker(path: string, content: string, databasePath: string): void {
  try {
    writeFileAtomic(path, content, 0o600, { replace: false });
  } catch (error) {
    // Only a server that does not take the lock (an older build) can have written it meanwhile.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new Error(`another secryn serve is starting on ${databasePath}`);
    }
    throw error;
  }
}

/** The marker this process writes. */
export function ownServeMarker(): ServeMarker {
  return {
    pid: process.pid,
    bootId: currentBootId(),
    startTime: inspectProcess(process.pid)?.startTime,
  };
}

/** The marker's file content: the pid line, then one `key=value` line per known field. */
export function formatServeMarker(marker: ServeMarker): string {
  const lines = [String(marker.pid)];
  if (marker.bootId !== undefined) lines.push(`boot_id=${marker.bootId}`);
  if (marker.startTime !== undefined) lines.push(`start_time=${marker.startTime}`);
  return lines.join('\n') + '\n';
}

/** Parses a marker; undefined when the first line is not a pid (an empty or foreign file). */
export function parseServeMarker(text: string): ServeMarker | undefined {
  const [first = '', ...rest] = text.split('\n');
  const pid = Number(first.trim());
  if (first.trim() === '' || !Number.isInteger(pid) || pid <= 0) return undefined;
  const fields = new Map<string, string>();
  for (const line of rest) {
    const at = line.indexOf('=');
    if (at > 0) fields.set(line.slice(0, at).trim(), line.slice(at + 1).trim());
  }
  return { pid, bootId: fields.get('boot_id'), startTime: fields.get('start_time') };
}

/**
 * Whether the process that wrote `marker` may still be running, by the rules above.
 * @param ownerUid the uid that owns the marker file: the user the writer ran as.
 */
export function isMarkerLive(marker: ServeMarker, ownerUid: number): boolean {
  const bootId = currentBootId();
  if (marker.bootId !== undefined && bootId !== undefined && marker.bootId !== bootId) {
    return false;
  }
  // This process writes the new format, so an old-format marker naming it is an earlier one's.
  if (marker.startTime === undefined && marker.pid === process.pid) return false;
  const seen = inspectProcess(marker.pid);
  if (!seen) return signalSaysLive(marker.pid, ownerUid);
  if (seen.zombie || seen.uid !== ownerUid) return false;
  return marker.startTime === undefined || marker.startTime === seen.startTime;
}

/** kill(pid, 0), for when /proc cannot tell (not Linux, or the process is hidden from us). */
function signalSaysLive(pid: number, ownerUid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return false;
    if (code !== 'EPERM') return true;
    // Signalling is refused only for another user's process (root is never refused); a writer
    // that ran as this user could be signalled, so it is not that process.
    const euid = process.geteuid?.();
    return euid === undefined || euid === 0 || euid !== ownerUid;
  }
}

/** The marker at `path` and the uid owning the file, or undefined if none or unparsable. */
function readServeMarker(path: string): { marker: ServeMarker; ownerUid: number } | undefined {
  let text: string;
  let ownerUid: number;
  try {
    ownerUid = statSync(path).uid;
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const marker = parseServeMarker(text);
  return marker ? { marker, ownerUid } : undefined;
}

/** This boot's id; undefined where /proc/sys is not readable (not Linux, ProcSubset=pid). */
function currentBootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** What /proc shows of a process: enough to tell whether it wrote a marker. */
type ProcessView = {
  /** Field 22 of /proc/<pid>/stat: clock ticks after boot; unique per pid within a boot. */
  startTime: string;
  zombie: boolean;
  /** Effective uid (from /proc/<pid>/status): the owner of files it creates. */
  uid: number;
};

/** The process as /proc shows it; undefined when /proc does not (none, hidden, not Linux). */
function inspectProcess(pid: number): ProcessView | undefined {
  let stat: string;
  let status: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  // Field 2 is the command name in parentheses and may itself hold spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const startTime = fields[22 - 3];
  const uid = Number(/^Uid:\s+\d+\s+(\d+)/m.exec(status)?.[1]);
  if (!state || !startTime || !Number.isInteger(uid)) return undefined;
  return { startTime, zombie: state === 'Z' || state === 'X', uid };
}
