/**
 * The master key's files during a rotation (file source only):
 *
 *   master.key                        the key in use
 *   master.key.next                   the new key, written (0600, fsynced) before the database
 *                                     commits to it, renamed over master.key afterwards
 *   master.key.<UTC stamp>.bak        the previous key, kept until the operator removes it
 *
 * Every change to these files happens while holding the database write lock, so a rotating
 * process and a recovering one never act on them at the same time. See rotate.ts for the
 * protocol and open.ts for recovery.
 */
import { existsSync, linkSync, renameSync, unlinkSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fsyncDirectory } from '../crypto/atomic-file.ts';
import { MasterKeyError } from '../crypto/errors.ts';
import { masterKeyFingerprint } from '../crypto/keyring.ts';
import {
  loadMasterKey,
  writeNewMasterKeyFile,
  type LoadedMasterKey,
} from '../crypto/master-key.ts';
import type { Config } from '../config/schema.ts';

/** Where the environment comes from; `process.env` in production, a fixed object in tests. */
export type Env = Record<string, string | undefined>;

/**
 * Loads the master key from its configured source (systemd credential, env, key file; see
 * src/crypto/master-key.ts). Throws MasterKeyError for missing, too-open, invalid or unreadable.
 */
export function loadConfiguredMasterKey(config: Config, env: Env): LoadedMasterKey {
  return loadMasterKey({ env, filePath: config.encryption.master_key_file });
}

/** The absolute path of the configured key file (whether or not it is the source in use). */
export function configuredKeyPath(config: Config): string {
  return resolve(config.encryption.master_key_file);
}

/** Where a rotation writes the new key before it replaces `keyPath`. */
export function nextKeyPath(keyPath: string): string {
  return `${keyPath}.next`;
}

/**
 * A dated backup name for the key at `keyPath`, e.g. `master.key.2026-11-26T153000Z.bak`, not
 * yet taken (a second rotation within the same second gets `-2`, …).
 */
export function backupKeyPath(keyPath: string, now: number): string {
  const stamp = new Date(now)
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/:/g, '');
  for (let n = 1; ; n++) {
    const candidate = `${keyPath}.${stamp}${n === 1 ? '' : `-${n}`}.bak`;
    if (!existsSync(candidate)) return candidate;
  }
}

/** A key read from a file together with its fingerprint; the caller zeroes `key`. */
export type KeyFile = { key: Uint8Array; fingerprint: string };

/**
 * Reads a key file under the same rules as the configured one (mode 0600 or stricter, base64 of
 * 32 bytes). Returns undefined if it does not exist; throws MasterKeyError otherwise.
 */
export function readKeyFile(path: string): KeyFile | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const { key } = loadMasterKey({ env: {}, filePath: path });
    return { key, fingerprint: masterKeyFingerprint(key) };
  } catch (error) {
    if (error instanceof MasterKeyError && error.reason === 'missing') return undefined;
    throw error;
  }
}

/** {@link readKeyFile}, but a file that cannot be used (half-written, wrong mode) is undefined. */
export function readKeyFileIfUsable(path: string): KeyFile | undefined {
  try {
    return readKeyFile(path);
  } catch (error) {
    if (error instanceof MasterKeyError) return undefined;
    throw error;
  }
}

/** Removes `path` if present and makes the removal durable. */
export function removeFileDurably(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  fsyncDirectory(dirname(path));
}

/** What a swap needs to know; taken from the rotation record. */
export type PendingSwap = {
  keyFile: string;
  backupFile: string | null;
  oldFingerprint: string;
  newFingerprint: string;
};

/**
 * Makes `keyFile` hold the new key, keeping the old one at `backupFile`: link the old file to the
 * backup name (same inode, so same content and mode 0600), fsync the directory, rename
 * `keyFile.next` over `keyFile`, fsync the directory. Idempotent: every step checks whether it
 * already happened, so recovery can resume after a crash at any point. Call with the database
 * write lock held. Throws MasterKeyError if neither file holds the new key.
 */
export function finishKeyFileSwap(
  swap: PendingSwap,
  onStep: (step: 'backup-written' | 'key-file-replaced') => void = () => {},
): void {
  const { keyFile } = swap;
  const dir = dirname(keyFile);
  const next = nextKeyPath(keyFile);
  const current = readKeyFileIfUsable(keyFile);
  try {
    if (current?.fingerprint === swap.newFingerprint) {
      removeFileDurably(next); // a leftover copy of the key already in place
      return;
    }
    const incoming = readKeyFileIfUsable(next);
    if (incoming?.fingerprint !== swap.newFingerprint) {
      incoming?.key.fill(0);
      throw new MasterKeyError(
        'missing',
        `cannot finish the master key rotation: neither ${keyFile} nor ${next} holds the new ` +
          `key (fingerprint ${swap.newFingerprint}); restore the key file from your backup`,
      );
    }
    incoming.key.fill(0);
    if (swap.backupFile && existsSync(keyFile)) {
      try {
        linkSync(keyFile, swap.backupFile);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') {
          // A previous attempt made it; go on only if it really is the key being replaced.
          const existing = readKeyFileIfUsable(swap.backupFile);
          existing?.key.fill(0);
          if (current && existing?.fingerprint !== current.fingerprint) {
            throw new MasterKeyError(
              'exists',
              `cannot keep the old master key: ${swap.backupFile} exists and holds another key`,
            );
          }
        } else if (current) {
          // No hard links here (some network or FUSE file systems): write a copy instead.
          writeNewMasterKeyFile(swap.backupFile, current.key);
        } else {
          throw error;
        }
      }
      fsyncDirectory(dir);
      onStep('backup-written');
    }
    renameSync(next, keyFile);
    fsyncDirectory(dir);
    onStep('key-file-replaced');
  } finally {
    current?.key.fill(0);
  }
}
