/**
 * Test-only crash injection for the rotation protocol. When the environment variable
 * `SECRYN_TEST_CRASH_AT` names a step (optionally `step#n` for its n-th occurrence, default 1),
 * the process sends itself SIGKILL when it reaches that step — the same as `kill -9` from
 * outside, with no cleanup, no `finally` and no flush. Tests use it to prove that every
 * intermediate state on disk is recoverable. Operators never set it, and release builds do not
 * contain it: scripts/build.ts defines `SECRYN_TEST_HOOKS` as false, which turns
 * {@link crashPoint} into a no-op and drops the variable's name (test/binary.test.ts checks).
 */

/** Every step at which a rotation can be killed, in the order a rotation passes them. */
export const CRASH_STEPS = [
  /** env/credential source: the new key file is written, the database not yet changed. */
  'rotate:new-key-file-written',
  /** file source: master.key.next is written and fsynced inside the open transaction. */
  'rotate:next-key-written',
  /** the keyring is re-wrapped and the rotation recorded, the transaction not yet committed. */
  'rotate:keyring-rewrapped',
  /** the transaction is committed; master.key still holds the old key. */
  'rotate:committed',
  /** the old key file is linked to its dated backup name. */
  'rotate:backup-written',
  /** master.key.next was renamed over master.key; the rotation is not yet marked complete. */
  'rotate:key-file-replaced',
  /** the rotation is complete; re-encryption (if asked) has not started. */
  'rotate:completed',
  /** a re-encryption batch is written, its transaction not yet committed. */
  'reencrypt:batch-written',
  /** a re-encryption batch is committed. */
  'reencrypt:batch-committed',
  /** every value is re-encrypted; the rotation is not yet marked re-encrypted. */
  'reencrypt:before-complete',
] as const;

/** A step name accepted by {@link crashPoint} and `SECRYN_TEST_CRASH_AT`. */
export type CrashStep = (typeof CRASH_STEPS)[number];

const reached = new Map<string, number>();

/** Kills the process with SIGKILL if `SECRYN_TEST_CRASH_AT` names this step (test-only). */
export function crashPoint(step: CrashStep): void {
  if (typeof SECRYN_TEST_HOOKS !== 'undefined' && !SECRYN_TEST_HOOKS) return;
  const wanted = process.env.SECRYN_TEST_CRASH_AT;
  if (!wanted) return;
  const [name, nth] = wanted.split('#');
  if (name !== step) return;
  const count = (reached.get(step) ?? 0) + 1;
  reached.set(step, count);
  if (count === Number(nth ?? 1)) process.kill(process.pid, 'SIGKILL');
}
