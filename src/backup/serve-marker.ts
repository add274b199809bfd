import { closeSync, existsSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';

/**
 * A pid file beside the database (`<db>.serve.pid`) that says a `secryn serve` is running on it.
 * `restore` refuses to swap the database under a live server, and a second `serve` on the same
 * file is refused (two writers on one SQLite file only slow each other down).
 */
export function serveMarkerPath(databasePath: string): string {
  return `${databasePath}.serve.pid`;
}

/** The pid of a live `secryn serve` on this database, if any (a stale marker counts as none). */
export function runningServePid(databasePath: string): number | undefined {
  const path = serveMarkerPath(databasePath);
  if (!existsSync(path)) return undefined;
  const pid = Number(readFileSync(path, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (error) {
    // EPERM: the process exists but belongs to another user; it is still running.
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

/**
 * Writes this process's marker; returns a release function.
 * @throws Error when another live `secryn serve` holds the marker.
 */
export function claimServeMarker(databasePath: string): () => void {
  const path = serveMarkerPath(databasePath);
  const other = runningServePid(databasePath);
  if (other !== undefined && other !== process.pid) {
    throw new Error(`another secryn serve (pid ${other}) is running on ${databasePath}`);
  }
  rmSync(path, { force: true });
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, `${process.pid}\n`);
  } finally {
    closeSync(fd);
  }
  return () => {
    if (runningServePid(databasePath) === process.pid || !existsSync(path))
      rmSync(path, { force: true });
  };
}
