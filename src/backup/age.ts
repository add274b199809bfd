/**
 * age encryption of backup files (https://age-encryption.org, the `age-encryption` package):
 * recipients and identities as operators write them, and streaming encrypt/decrypt between
 * files, so that a large backup never sits whole in memory.
 */
import type * as AgeLibrary from 'age-encryption';
import {
  closeSync,
  constants,
  fchmodSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { BackupError, syncFile } from './backup.ts';

/**
 * The age-encryption package, loaded on first use (synchronously, so that recipient checks stay
 * synchronous): setting up its post-quantum curves takes ~15 ms, which `serve` would otherwise
 * spend before its first answer although most servers never encrypt a backup.
 */
const ageLibrary = (): typeof AgeLibrary => require('age-encryption') as typeof AgeLibrary;

/** The first line of every binary age file. */
const AGE_MAGIC = 'age-encryption.org/v1\n';

/** Recipient prefixes the library encrypts to; checked up front so a typo fails at config time. */
const RECIPIENT_PREFIXES = ['age1pq1', 'age1tagpq1', 'age1tag1', 'age1'] as const;

/** Post-quantum recipients: their files must not mix in classic X25519 stanzas (age 1.3). */
function isPostQuantum(recipient: string): boolean {
  return recipient.startsWith('age1pq1') || recipient.startsWith('age1tagpq1');
}

/**
 * The problem with one recipient string, or null when the library accepts it. Used by config
 * validation and the CLI, so that a bad recipient is refused before any backup is attempted.
 */
export function recipientProblem(recipient: string): string | null {
  if (!RECIPIENT_PREFIXES.some((prefix) => recipient.startsWith(prefix))) {
    return 'not an age recipient (expected age1…)';
  }
  try {
    new (ageLibrary().Encrypter)().addRecipient(recipient);
  } catch {
    return 'not a valid age recipient';
  }
  return null;
}

/** Whether the file at `path` starts with age's binary header (an encrypted backup). */
export function isAgeFile(path: string): boolean {
  const head = Buffer.alloc(AGE_MAGIC.length);
  const fd = openSync(path, 'r');
  try {
    return readSync(fd, head, 0, head.length, 0) === head.length && head.toString() === AGE_MAGIC;
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads an identity file as `age-keygen` writes it: one `AGE-SECRET-KEY-…` per line, `#`
 * comments and blank lines ignored. The message never quotes the file's content.
 */
export function readIdentityFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new BackupError(
      `cannot read identity file ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  const identities = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  if (identities.length === 0 || identities.some((line) => !line.startsWith('AGE-SECRET-KEY-'))) {
    throw new BackupError(`${path} is not an age identity file (expected AGE-SECRET-KEY-… lines)`);
  }
  return identities;
}

/**
 * A throwaway identity for checking a backup right after writing it: its recipient is added
 * to the file beside the operator's, so the server can decrypt what it wrote without holding
 * the operator's identity. The identity lives only in memory for the duration of the check;
 * its stanza in the file opens nothing once it is gone. Hybrid when the operator's recipients
 * are post-quantum (age does not mix the two kinds in one file).
 */
export async function ephemeralIdentity(
  recipients: readonly string[],
): Promise<{ identity: string; recipient: string }> {
  const identity = recipients.some(isPostQuantum)
    ? await ageLibrary().generateHybridIdentity()
    : await ageLibrary().generateX25519Identity();
  return { identity, recipient: await ageLibrary().identityToRecipient(identity) };
}

/**
 * Encrypts the file at `source` to `recipients` into `target`, created exclusively with mode
 * 0600 (refusing an existing file) and fsynced. On failure nothing is left at `target`.
 */
export async function encryptFile(
  source: string,
  target: string,
  recipients: readonly string[],
): Promise<void> {
  const encrypter = new (ageLibrary().Encrypter)();
  for (const recipient of recipients) encrypter.addRecipient(recipient);
  const stream = await encrypter.encrypt(Bun.file(source).stream());
  await writeStreamPrivately(stream, target);
}

/**
 * Decrypts the age file at `source` with `identities` into `target` (created exclusively, 0600,
 * fsynced). A wrong identity, a damaged or truncated file fail with a BackupError; on failure
 * nothing is left at `target`.
 */
export async function decryptFile(
  source: string,
  target: string,
  identities: readonly string[],
): Promise<void> {
  const decrypter = new (ageLibrary().Decrypter)();
  try {
    for (const identity of identities) decrypter.addIdentity(identity);
  } catch {
    throw new BackupError('the identity is not a usable age identity');
  }
  try {
    const stream = await decrypter.decrypt(Bun.file(source).stream());
    await writeStreamPrivately(stream, target);
  } catch (error) {
    if (error instanceof BackupError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new BackupError(
      /no identity matched/.test(reason)
        ? `${source} is not encrypted to the given identity`
        : `${source} cannot be decrypted (damaged or truncated: ${reason.slice(0, 120)})`,
    );
  }
}

/** Writes a stream to a new private file; the partial file is removed if anything fails. */
async function writeStreamPrivately(
  stream: ReadableStream<Uint8Array>,
  target: string,
): Promise<void> {
  const fd = createPrivate(target);
  let complete = false;
  try {
    for await (const chunk of stream) {
      let offset = 0;
      while (offset < chunk.length) offset += writeSync(fd, chunk, offset);
    }
    complete = true;
  } finally {
    closeSync(fd);
    if (!complete) rmQuietly(target);
  }
  syncFile(target);
}

function createPrivate(path: string): number {
  try {
    const fd = openSync(
      path,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
    fchmodSync(fd, 0o600);
    return fd;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST')
      throw new BackupError(`${path} already exists; refusing to overwrite it`);
    throw error;
  }
}

function rmQuietly(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    // best effort: the caller reports the original failure
  }
}
