/**
 * Worker entry point of a server's scheduled backup (started by ./off-thread.ts): opens its own
 * read-only connection to the live database (WAL lets it read while the server writes), makes
 * the snapshot, encrypts it and checks it (./checked.ts `prepareCheckedBackup`), and answers
 * with what the snapshot holds or the error, so the server's event loop never waits on it.
 * Listed as an entry point in scripts/build.ts so that the compiled binary embeds it.
 */
import { Database } from 'bun:sqlite';
import { prepareCheckedBackup, type PrepareJob } from './checked.ts';
import type { WorkerAnswer } from './off-thread.ts';

declare const self: Worker;

self.onmessage = async (event: MessageEvent<PrepareJob>) => {
  const job = event.data;
  let answer: WorkerAnswer;
  let sqlite: Database | undefined;
  try {
    sqlite = new Database(job.source, { readonly: true, strict: true });
    sqlite.run(`PRAGMA busy_timeout = ${Math.trunc(job.config.storage.busy_timeout_ms)}`);
    answer = { ok: true, info: await prepareCheckedBackup(sqlite, job) };
  } catch (error) {
    answer = {
      ok: false,
      name: error instanceof Error ? error.name : 'Error',
      message: error instanceof Error ? error.message : String(error),
      busy: (error as { busy?: unknown }).busy === true,
    };
  } finally {
    sqlite?.close();
    // This thread's copy of the master key.
    job.masterKey.fill(0);
  }
  postMessage(answer);
};
