/**
 * Scheduled backups inside `serve` (`[backup]` in the config): one timer, the next run computed
 * from the schedule and the clock, each backup written and checked (./checked.ts), encrypted to
 * `encrypt_to`, recorded in the audit log with a `backup.completed` event, old ones pruned to
 * `keep_last` only after a new one succeeded; a failure is logged, audited and emitted as
 * `backup.failed`, and the next run is tried at the next scheduled time.
 */
import { readdirSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { AuditActor, AuditEntryInput } from '../ledger/audit-record.ts';
import { commitSystemChange } from '../changes/index.ts';
import type { Config } from '../config/schema.ts';
import { toRfc3339 } from '../db/columns.ts';
import type { Instance } from '../instance.ts';
import { loadConfiguredMasterKey, type Env } from '../keyring/key-files.ts';
import { recipientProblem } from './age.ts';
import { BackupError } from './backup.ts';
import {
  TEMP_SUFFIX,
  writeCheckedBackup,
  type CheckedBackup,
  type PrepareRunner,
} from './checked.ts';
import { prepareInWorker } from './off-thread.ts';
import { DAY_MS, DURATION_UNIT_MS } from '../clock.ts';

type BackupConfig = Config['backup'];

/** When backups run: every day at a UTC time, or every fixed interval (aligned to the epoch). */
export type Schedule = { kind: 'daily'; minuteOfDay: number } | { kind: 'every'; ms: number };

/**
 * Parses `backup.schedule`: `daily HH:MM` (UTC) or `every N[m|h|d]` (at least 1 minute).
 * @throws BackupError naming the expected forms.
 */
export function parseSchedule(text: string): Schedule {
  const daily = /^daily ([01]\d|2[0-3]):([0-5]\d)$/.exec(text);
  if (daily) return { kind: 'daily', minuteOfDay: Number(daily[1]) * 60 + Number(daily[2]) };
  const every = /^every ([1-9]\d{0,4})([mhd])$/.exec(text);
  if (every)
    return { kind: 'every', ms: Number(every[1]) * DURATION_UNIT_MS[every[2] as 'm' | 'h' | 'd'] };
  throw new BackupError(
    `backup.schedule: "${text.slice(0, 40)}" is not "daily HH:MM" or "every N[m|h|d]"`,
  );
}

/**
 * The first run strictly after `now`. An interval is aligned to the epoch ("every 6h" runs at
 * 00:00, 06:00, 12:00 and 18:00 UTC), so a restart neither skips nor repeats a run.
 */
export function nextRunAfter(schedule: Schedule, now: number): number {
  if (schedule.kind === 'every') return (Math.floor(now / schedule.ms) + 1) * schedule.ms;
  const today = Math.floor(now / DAY_MS) * DAY_MS + schedule.minuteOfDay * 60_000;
  return today > now ? today : today + DAY_MS;
}

/** Names of scheduled backups: `secryn-<UTC time>[-n].db[.age]`; sorting them sorts by time. */
const BACKUP_NAME = /^secryn-(\d{8}T\d{6}Z)(?:-(\d+))?\.db(?:\.age)?$/;

/** The file name of a backup made at `at`. */
export function backupFileName(at: number, encrypted: boolean, n = 1): string {
  const stamp = new Date(at)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
  return `secryn-${stamp}${n > 1 ? `-${n}` : ''}.db${encrypted ? '.age' : ''}`;
}

/** The scheduled backups in `directory`, oldest first (other files are never touched). */
export function listBackups(directory: string): string[] {
  let names: string[];
  try {
    names = readdirSync(directory);
  } catch {
    return [];
  }
  return names
    .filter((name) => BACKUP_NAME.test(name))
    .sort((a, b) => {
      const [, stampA, nA] = BACKUP_NAME.exec(a)!;
      const [, stampB, nB] = BACKUP_NAME.exec(b)!;
      return stampA! < stampB! ? -1 : stampA! > stampB! ? 1 : Number(nA ?? 1) - Number(nB ?? 1);
    });
}

/**
 * Removes all but the newest `keepLast` scheduled backups of `directory`; returns the names
 * removed.
 */
export function pruneBackups(directory: string, keepLast: number): string[] {
  const all = listBackups(directory);
  const doomed = all.slice(0, Math.max(0, all.length - keepLast));
  for (const name of doomed) rmSync(join(directory, name), { force: true });
  return doomed;
}

/** What the metrics and an operator can know about scheduled backups. */
export type BackupStatus = {
  /** Epoch ms of the last backup that was written and checked (this run or a file found at start). */
  lastSuccessAt: number | null;
  lastFailureAt: number | null;
  /** Why the last run failed; null once one succeeds. */
  lastError: string | null;
  /** Duration and size (as stored) of the last good backup made by this process. */
  lastDurationMs: number | null;
  lastBytes: number | null;
  successes: number;
  failures: number;
  /** Epoch ms of the next run; null when no schedule is configured. */
  nextRunAt: number | null;
  running: boolean;
};

/** The timer the scheduler sets; injectable so tests drive time by hand. */
export type Timers = {
  set(callback: () => void, delayMs: number): unknown;
  clear(handle: unknown): void;
};

/** setTimeout, unref'd (a pending backup never keeps the process alive); long delays re-arm. */
const realTimers: Timers = {
  set(callback, delayMs) {
    const timer = setTimeout(callback, Math.min(delayMs, 2 ** 31 - 1));
    timer.unref();
    return timer;
  },
  clear: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Who makes scheduled backups, in the audit log. */
export const BACKUP_ACTOR: AuditActor = {
  type: 'system',
  id: 'backup-scheduler',
  name: 'scheduled backup',
};

/** How old a leftover temporary file must be before a start removes it (another run may own it). */
const STALE_TEMP_MS = 60 * 60_000;

/** `prepare` replaces the worker (./off-thread.ts) that snapshots and checks each backup. */
type SchedulerOptions = { timers?: Timers; env?: Env; prepare?: PrepareRunner };

type SchedulerInstance = Pick<Instance, 'config' | 'sqlite' | 'db' | 'clock' | 'logger' | 'writes'>;

/**
 * The one backup timer of a server. `start()` arms it from `config.backup`; `reschedule()`
 * applies a new `[backup]` section (SIGHUP) without restarting; `runNow()` makes one backup
 * (what the timer calls); `status()` is for metrics; `stop()` waits for a running backup.
 */
export class BackupScheduler {
  private config: BackupConfig;
  private schedule: Schedule | null = null;
  private timer: unknown = null;
  private running: Promise<unknown> | null = null;
  private stopped = false;
  private readonly state: BackupStatus = {
    lastSuccessAt: null,
    lastFailureAt: null,
    lastError: null,
    lastDurationMs: null,
    lastBytes: null,
    successes: 0,
    failures: 0,
    nextRunAt: null,
    running: false,
  };

  constructor(
    private readonly instance: SchedulerInstance,
    private readonly options: SchedulerOptions = {},
  ) {
    this.config = instance.config.backup;
  }

  /** Arms the timer (nothing when no schedule is configured). @throws BackupError on bad config. */
  start(): void {
    this.reschedule(this.config);
  }

  /**
   * Applies a `[backup]` section: validated first (a bad one changes nothing and throws), then
   * the timer is re-armed for the new schedule. A backup already running finishes.
   */
  reschedule(config: BackupConfig): void {
    const schedule = config.schedule ? parseSchedule(config.schedule) : null;
    for (const [index, recipient] of config.encrypt_to.entries()) {
      const problem = recipientProblem(recipient);
      if (problem) throw new BackupError(`backup.encrypt_to.${index}: ${problem}`);
    }
    if (schedule && !config.directory)
      throw new BackupError('backup.directory: required when backup.schedule is set');
    this.config = config;
    this.schedule = schedule;
    if (config.directory) this.adoptDirectory(config.directory);
    this.arm();
  }

  status(): BackupStatus {
    return { ...this.state, running: this.running !== null };
  }

  /**
   * Makes one backup now into `backup.directory` and prunes; resolves with it, or with null
   * when it failed (already logged, audited and emitted). Runs one at a time.
   */
  async runNow(): Promise<CheckedBackup | null> {
    while (this.running) await this.running;
    const run = this.backupOnce();
    this.running = run;
    try {
      return await run;
    } finally {
      this.running = null;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) this.timers.clear(this.timer);
    this.timer = null;
    this.state.nextRunAt = null;
    while (this.running) await this.running;
  }

  private get timers(): Timers {
    return this.options.timers ?? realTimers;
  }

  private arm(): void {
    if (this.timer !== null) this.timers.clear(this.timer);
    this.timer = null;
    this.state.nextRunAt = null;
    if (this.stopped || !this.schedule) return;
    const at = nextRunAfter(this.schedule, this.instance.clock.now());
    this.state.nextRunAt = at;
    this.timer = this.timers.set(() => void this.fire(at), at - this.instance.clock.now());
  }

  /** The timer went off: run if it is time (a long delay may wake early), then re-arm. */
  private async fire(at: number): Promise<void> {
    this.timer = null;
    if (this.stopped) return;
    if (this.instance.clock.now() < at) {
      this.timer = this.timers.set(() => void this.fire(at), at - this.instance.clock.now());
      return;
    }
    await this.runNow();
    this.arm();
  }

  /**
   * The newest scheduled backup found in the directory counts as the last good one (only
   * checked backups get such a name); temporary files left by a crash are removed.
   */
  private adoptDirectory(directory: string): void {
    const newest = listBackups(directory).at(-1);
    if (newest && this.state.lastSuccessAt === null) {
      this.state.lastSuccessAt = statSync(join(directory, newest)).mtimeMs;
    }
    try {
      const now = Date.now();
      for (const name of readdirSync(directory)) {
        if (!name.startsWith('.secryn-') || !name.endsWith(TEMP_SUFFIX)) continue;
        const path = join(directory, name);
        if (now - statSync(path).mtimeMs > STALE_TEMP_MS) rmSync(path, { force: true });
      }
    } catch {
      // a missing directory is reported by the next backup
    }
  }

  private async backupOnce(): Promise<CheckedBackup | null> {
    const { config, clock, logger } = this.instance;
    const backup = this.config;
    const started = clock.now();
    const startedPerf = performance.now();
    const encrypted = backup.encrypt_to.length > 0;
    let target = '';
    try {
      if (!backup.directory) throw new BackupError('backup.directory is not set');
      target = this.freeName(backup.directory, started, encrypted);
      const masterKey = loadConfiguredMasterKey(config, this.options.env ?? process.env).key;
      let result: CheckedBackup;
      try {
        result = await writeCheckedBackup(this.instance.sqlite, config.storage.path, target, {
          recipients: backup.encrypt_to,
          masterKey,
          config,
          // Snapshot and check off the event loop: requests keep being answered meanwhile.
          prepare: this.options.prepare ?? prepareInWorker,
          record: () => this.record('success', target, started, { encrypted }),
        });
      } finally {
        masterKey.fill(0);
      }
      const pruned = pruneBackups(backup.directory, backup.keep_last);
      const durationMs = Math.round(performance.now() - startedPerf);
      Object.assign(this.state, {
        lastSuccessAt: clock.now(),
        lastError: null,
        lastDurationMs: durationMs,
        lastBytes: result.bytes,
        successes: this.state.successes + 1,
      });
      logger.info('backup completed', {
        file: result.path,
        bytes: result.bytes,
        encrypted,
        duration_ms: durationMs,
        pruned: pruned.length,
      });
      return result;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      Object.assign(this.state, {
        lastFailureAt: clock.now(),
        lastError: reason,
        failures: this.state.failures + 1,
      });
      logger.error('backup failed', { file: target || null, reason });
      try {
        await this.record('error', target, started, { encrypted, error: reason.slice(0, 500) });
      } catch (recordError) {
        logger.error('backup failure could not be recorded', {
          reason: recordError instanceof Error ? recordError.message : String(recordError),
        });
      }
      return null;
    }
  }

  /** The audit entry and the `backup.completed` / `backup.failed` event, in one transaction. */
  private record(
    outcome: 'success' | 'error',
    target: string,
    started: number,
    facts: { encrypted: boolean; error?: string },
  ): Promise<void> {
    const { db, clock } = this.instance;
    const entry: AuditEntryInput = {
      actor: BACKUP_ACTOR,
      action: 'instance.backup',
      target: { type: 'instance', id: null },
      outcome,
      status: null,
      ip: null,
      userAgent: null,
      requestId: null,
    };
    return commitSystemChange(this.instance, (tx) => {
      tx.audit(entry);
      tx.emit({
        type: outcome === 'success' ? 'backup.completed' : 'backup.failed',
        projectId: null,
        // Metadata only: the file's name, never its content or a key.
        object: {
          file: target ? basename(target) : null,
          encrypted: facts.encrypted,
          recipients: this.config.encrypt_to.length,
          started_at: toRfc3339(Math.trunc(started)),
          ...(facts.error === undefined ? {} : { error: facts.error }),
        },
      });
    });
  }

  /** A backup name not taken yet (two runs in one second get `-2`, `-3`, …). */
  private freeName(directory: string, at: number, encrypted: boolean): string {
    const taken = new Set(listBackups(directory));
    for (let n = 1; ; n++) {
      const name = backupFileName(at, encrypted, n);
      if (!taken.has(name)) return join(directory, name);
    }
  }
}

const schedulers = new WeakMap<object, BackupScheduler>();

/**
 * The backup scheduler of a running server (created by `startBackupScheduler`), for metrics
 * (`status().lastSuccessAt`) and for SIGHUP (`reschedule(config.backup)`); undefined before.
 */
export function backupSchedulerFor(
  instance: Pick<Instance, 'sqlite'>,
): BackupScheduler | undefined {
  return schedulers.get(instance.sqlite);
}

/** Creates and starts the server's scheduler. @throws BackupError on a bad `[backup]` section. */
export function startBackupScheduler(
  instance: SchedulerInstance,
  options: SchedulerOptions = {},
): BackupScheduler {
  const scheduler = new BackupScheduler(instance, options);
  scheduler.start();
  schedulers.set(instance.sqlite, scheduler);
  return scheduler;
}
