/**
 * Runs the heavy part of a scheduled backup (snapshot, encryption, decryption and the full
 * check) in a Worker (./backup-worker.ts), so that the server keeps answering requests while a
 * large database is backed up; renaming, the audit entry and the event stay on the server's
 * connection (./checked.ts `writeCheckedBackup`).
 */
import { BackupError, type BackupInfo } from './backup.ts';
import type { PrepareJob, PrepareRunner } from './checked.ts';
import { BackupIntegrityError } from './restore.ts';

/** What the worker posts back: the snapshot's facts, or the error as plain data. */
export type WorkerAnswer =
  | { ok: true; info: BackupInfo }
  | { ok: false; name: string; message: string; busy: boolean };

/**
 * The worker's module. The compiled binary embeds it as an extra entry point (scripts/build.ts)
 * under its path relative to src/ (resolved against the executable's root, not this module);
 * from source it sits beside this file.
 */
const workerUrl = import.meta.url.includes('$bunfs')
  ? './backup/backup-worker.ts'
  : new URL('./backup-worker.ts', import.meta.url).href;

/** {@link PrepareRunner} in a fresh Worker, ended once it has answered (or failed). */
export const prepareInWorker: PrepareRunner = (job: PrepareJob) =>
  new Promise<BackupInfo>((resolve, reject) => {
    const worker = new Worker(workerUrl);
    const finish = (settle: () => void) => {
      worker.terminate();
      settle();
    };
    worker.onmessage = (event: MessageEvent<WorkerAnswer>) => {
      const answer = event.data;
      finish(() => (answer.ok ? resolve(answer.info) : reject(asError(answer))));
    };
    worker.onerror = (event: ErrorEvent) =>
      finish(() => reject(new BackupError(`the backup worker failed: ${event.message}`)));
    // The worker gets its own copy of the key (zeroed there); the caller zeroes this one.
    worker.postMessage({ ...job, masterKey: Uint8Array.from(job.masterKey) });
  });

/** The worker's error as the class the callers (and their exit codes) expect. */
function asError(answer: Extract<WorkerAnswer, { ok: false }>): Error {
  if (answer.name === 'BackupIntegrityError') return new BackupIntegrityError(answer.message);
  if (answer.name === 'BackupError') return new BackupError(answer.message, answer.busy);
  return new BackupError(answer.message);
}
