/**
 * Crash-safe file writes: after a crash the target holds either the old or the new content (or,
 * without replacing, nothing), never a mix or an empty file. Used for the serve marker; the
 * master key files use the fsync helpers.
 */
import {
  closeSync,
  constants,
  existsSync,
  fchmodSync,
  fsyncSync,
  linkSync,
  openSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

/**
 * Flushes a directory's entries (creations, renames) to disk. A no-op on Windows, which cannot
 * open directories for fsync and orders renames itself.
 */
export function fsyncDirectory(dir: string): void {
  if (process.platform === 'win32') return;
  const fd = openSync(dir, constants.O_RDONLY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes all of `data` to `fd`, looping over short writes. */
export function writeAllSync(fd: number, data: Uint8Array): void {
  let offset = 0;
  while (offset < data.byteLength) {
    offset += writeSync(fd, data, offset, data.byteLength - offset);
  }
}

/**
 * Atomically replaces `path` with `data` (strings as UTF-8) and permission bits `mode`: writes a
 * temp file in the same directory (created exclusively with `mode`, then fchmod'ed so the umask
 * cannot loosen or tighten it), fsyncs it, renames it over `path`, and fsyncs the directory.
 * With `replace: false` an existing `path` is left alone and the call fails with EEXIST
 * ({@link renameNoReplace}). On failure the temp file is removed and `path` is untouched.
 */
export function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  mode: number,
  options: { replace?: boolean } = {},
): void {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  const dir = dirname(path);
  const tempPath = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tempPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  let renamed = false;
  try {
    try {
      fchmodSync(fd, mode);
      writeAllSync(fd, bytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (options.replace === false) renameNoReplace(tempPath, path);
    else renameSync(tempPath, path);
    renamed = true;
    fsyncDirectory(dir);
  } finally {
    if (!renamed) {
      try {
        unlinkSync(tempPath);
      } catch {
        // already gone; the original error is the one worth reporting
      }
    }
  }
}

/**
 * Renames `from` to `to`, failing with EEXIST instead of replacing `to` (rename(2) would
 * replace it). Where the file system has no hard links, falls back to rename after a check.
 */
export function renameNoReplace(from: string, to: string): void {
  try {
    linkSync(from, to);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw error;
    if (existsSync(to)) throw Object.assign(new Error(`${to} exists`), { code: 'EEXIST' });
    renameSync(from, to);
    return;
  }
  unlinkSync(from);
}
