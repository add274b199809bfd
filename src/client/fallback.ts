/**
 * The `run --fallback PATH` copy: the last environment fetched, sealed with AES-256-GCM under a
 * key derived from the API token (HKDF-SHA256 with a random salt), so the file alone opens for
 * no one but a holder of the token, and written atomically with mode 0600. The header (format,
 * time of fetch, vaults) is authenticated as associated data: a copy cannot be made to look
 * younger, nor be used for other vaults, without the open failing.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../crypto/atomic-file.ts';
import type { EnvEntry } from './env-format.ts';
import { DURATION_UNIT_MS } from '../clock.ts';

const INFO = 'secryn run fallback v1';

/** What derives the sealing key: the client, holding the token. */
export type KeySource = { deriveKey(salt: Uint8Array, info: string): Buffer };

type SealedFile = {
  format: 1;
  /** Epoch ms when the secrets were fetched. */
  fetched_at: number;
  vaults: string[];
  salt: string;
  iv: string;
  tag: string;
  ciphertext: string;
};

const aadOf = (file: Pick<SealedFile, 'format' | 'fetched_at' | 'vaults'>) =>
  Buffer.from(JSON.stringify([file.format, file.fetched_at, file.vaults]));

/** Seals `entries` (the environment of `vaults`, fetched at `now`) into `path`. */
export function writeFallback(
  path: string,
  keys: KeySource,
  vaults: readonly string[],
  entries: readonly EnvEntry[],
  now: number,
): void {
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const header = { format: 1 as const, fetched_at: now, vaults: [...vaults] };
  const cipher = createCipheriv('aes-256-gcm', keys.deriveKey(salt, INFO), iv);
  cipher.setAAD(aadOf(header));
  const ciphertext = Buffer.concat([
    cipher.update(JSON.stringify(entries.map((e) => [e.name, e.value]))),
    cipher.final(),
  ]);
  const file: SealedFile = {
    ...header,
    salt: salt.toString('base64'),
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    ciphertext: ciphertext.toString('base64'),
  };
  writeFileAtomic(path, JSON.stringify(file) + '\n', 0o600);
}

/** Why a fallback copy cannot be used. */
export class FallbackError extends Error {}

/** Opens the copy at `path`; refuses one that is missing, older than `maxAgeMs`, or does not open. */
export function readFallback(
  path: string,
  keys: KeySource,
  vaults: readonly string[],
  maxAgeMs: number,
  now: number,
): { entries: EnvEntry[]; fetchedAt: number } {
  if (!existsSync(path)) throw new FallbackError(`no fallback copy at ${path}`);
  let file: SealedFile;
  try {
    file = JSON.parse(readFileSync(path, 'utf8')) as SealedFile;
    if (file.format !== 1 || typeof file.fetched_at !== 'number') throw 0;
  } catch {
    throw new FallbackError(`${path} is not a secryn fallback copy`);
  }
  if (JSON.stringify(file.vaults) !== JSON.stringify(vaults)) {
    throw new FallbackError(`${path} holds other vaults (${file.vaults.join(', ')})`);
  }
  let plain: string;
  try {
    const decipher = createDecipheriv(
      'aes-256-gcm',
      keys.deriveKey(Buffer.from(file.salt, 'base64'), INFO),
      Buffer.from(file.iv, 'base64'),
    );
    decipher.setAAD(aadOf(file));
    decipher.setAuthTag(Buffer.from(file.tag, 'base64'));
    plain = Buffer.concat([
      decipher.update(Buffer.from(file.ciphertext, 'base64')),
      decipher.final(),
    ]).toString('utf8');
  } catch {
    throw new FallbackError(`${path} does not open with this token (another key, or altered)`);
  }
  const age = now - file.fetched_at;
  if (age > maxAgeMs) {
    throw new FallbackError(
      `the fallback copy is ${formatAge(age)} old, older than --fallback-max-age ${formatAge(maxAgeMs)}`,
    );
  }
  const pairs = JSON.parse(plain) as [string, string][];
  return { entries: pairs.map(([name, value]) => ({ name, value })), fetchedAt: file.fetched_at };
}

/** `90s`, `30m`, `24h`, `7d` → ms; undefined for anything else. */
export function parseMaxAge(text: string): number | undefined {
  const match = /^([1-9][0-9]{0,6})([smhd])$/.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * DURATION_UNIT_MS[match[2] as 's' | 'm' | 'h' | 'd'];
}

function formatAge(ms: number): string {
  if (ms < 120_000) return `${Math.round(ms / 1000)}s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)}m`;
  if (ms < 172_800_000) return `${Math.round(ms / 3_600_000)}h`;
  return `${Math.round(ms / 86_400_000)}d`;
}
