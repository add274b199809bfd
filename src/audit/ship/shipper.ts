/**
 * Audit shipping (`[audit.ship]`): copies every audit entry, in chain order, to each configured
 * sink (./sinks.ts) from a persisted per-sink cursor (./store.ts), in the background. Requests
 * never wait for it: the local chain is the fail-closed record and shipping only reads it. A
 * batch counts as shipped once the sink has taken it (flushed); only then does the cursor move,
 * so delivery is at least once (a batch in flight when the connection drops or the process
 * stops is sent again; receivers dedupe by `seq` or `id`). A failing sink is retried with
 * exponential backoff; its backlog is `lag()`.
 */
import type { Config } from '../../config/schema.ts';
import type { Instance } from '../../instance.ts';
import { maybeIntegrityOf } from '../../keyring/integrity.ts';
import {
  FILE_SINK,
  fileSink,
  SYSLOG_SINK,
  syslogSink,
  type ShipEntry,
  type Sink,
} from './sinks.ts';
import { backlogAfter, entriesAfter, readCursor, saveCursor, type Cursor } from './store.ts';
import { commitSystemChange } from '../../changes/index.ts';

/** Entries read and sent per batch: bounds memory and the size of one write. */
const BATCH = 500;

export type ShipperOptions = {
  /** How often an idle sink looks for new entries. */
  pollMs?: number;
  /** First and longest wait after a failure (doubling in between). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Replaces the sinks built from the config (tests). */
  sinks?: Sink[];
};

/** A sink's backlog: entries after its cursor, and the age of the oldest of them. */
export type SinkLag = {
  sink: string;
  target: string;
  entries: number;
  seconds: number;
  /** Entries shipped by this process. */
  shipped: number;
  /** Failed attempts since the last success; 0 when healthy. */
  failing: number;
  lastError: string | null;
};

type SinkState = {
  sink: Sink;
  cursor: Cursor;
  /** Where the current connection started: a failure never rewinds before it. */
  connectedAt: number;
  shipped: number;
  failing: number;
  lastError: string | null;
  running: Promise<void> | null;
};

type ShipInstance = Pick<Instance, 'config' | 'sqlite' | 'db' | 'clock' | 'logger' | 'writes'>;

/**
 * The cursor names of the sinks `[audit.ship]` asks for, without opening them (what
 * {@link sinksFromConfig} builds); empty when shipping is off.
 */
export function shipSinkNames(ship: Config['audit']['ship']): string[] {
  return [...(ship.syslog ? [SYSLOG_SINK] : []), ...(ship.file ? [FILE_SINK] : [])];
}

/** The sinks `[audit.ship]` asks for (none when shipping is off). */
export function sinksFromConfig(ship: Config['audit']['ship']): Sink[] {
  const sinks: Sink[] = [];
  if (ship.syslog) sinks.push(syslogSink(ship.syslog, ship.syslog_ca_file));
  if (ship.file) sinks.push(fileSink(ship.file));
  return sinks;
}

export class AuditShipper {
  private readonly states: SinkState[];
  private stopped = false;
  private readonly pollMs: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly sleepers = new Set<() => void>();

  constructor(
    private readonly instance: ShipInstance,
    options: ShipperOptions = {},
  ) {
    this.pollMs = options.pollMs ?? 250;
    this.backoffMs = options.backoffMs ?? 500;
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000;
    const sinks = options.sinks ?? sinksFromConfig(instance.config.audit.ship);
    this.states = sinks.map(
      (sink): SinkState => ({
        sink,
        cursor: readCursor(instance.sqlite, sink.name),
        connectedAt: 0,
        shipped: 0,
        failing: 0,
        lastError: null,
        running: null,
      }),
    );
  }

  /** Starts one loop per sink. */
  start(): void {
    for (const state of this.states) {
      state.connectedAt = state.cursor.seq;
      state.running = this.loop(state);
    }
  }

  /** Stops the loops after the batch in flight (its cursor is kept if it was taken). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const wake of [...this.sleepers]) wake();
    await Promise.all(this.states.map((state) => state.running));
    for (const state of this.states) state.sink.close();
  }

  /**
   * The backlog of every sink, for metrics: `entries` not yet taken by the receiver and the age
   * in seconds of the oldest of them (0 when caught up).
   */
  lag(): SinkLag[] {
    const now = this.instance.clock.now();
    return this.states.map((state) => {
      const backlog = backlogAfter(this.instance.sqlite, state.cursor.seq);
      return {
        sink: state.sink.name,
        target: state.sink.target,
        entries: backlog.entries,
        seconds: backlog.oldestAt === null ? 0 : Math.max(0, (now - backlog.oldestAt) / 1000),
        shipped: state.shipped,
        failing: state.failing,
        lastError: state.lastError,
      };
    });
  }

  private async loop(state: SinkState): Promise<void> {
    const { logger } = this.instance;
    while (!this.stopped) {
      let rows;
      try {
        rows = entriesAfter(this.instance.sqlite, state.cursor.seq, BATCH);
      } catch (error) {
        logger.error('audit shipping cannot read the audit log', {
          sink: state.sink.name,
          reason: String(error),
        });
        await this.sleep(this.maxBackoffMs);
        continue;
      }
      if (rows.length === 0) {
        await this.sleep(this.pollMs);
        continue;
      }
      const first = rows[0]!;
      if (state.cursor.seq > 0 && first.seq !== state.cursor.seq + 1) {
        // Retention pruned entries this sink had not shipped: the receiver will see the gap
        // (and the audit.prune entry that explains it); say so here too.
        logger.error('audit entries were pruned before they were shipped', {
          sink: state.sink.name,
          from_seq: state.cursor.seq + 1,
          to_seq: first.seq - 1,
        });
      }
      const keyedFrom = maybeIntegrityOf(this.instance.sqlite)?.auditKeyedFrom ?? Infinity;
      const entries: ShipEntry[] = rows.map((row) => ({
        ...row,
        chain: row.seq >= keyedFrom ? 'secryn.audit.v2' : 'secryn.audit.v1',
      }));
      try {
        await state.sink.send(entries);
      } catch (error) {
        state.sink.close();
        // What the lost connection may have dropped in flight is sent again (receivers dedupe
        // by seq); only in memory: the saved cursor moves on with the next success.
        const rewound = Math.max(state.connectedAt, state.cursor.seq - state.sink.resendOnFailure);
        state.cursor = { seq: rewound, hash: '' };
        state.connectedAt = rewound;
        state.failing++;
        state.lastError = error instanceof Error ? error.message : String(error);
        // Logged on the first failure and then every 10th, so a long outage does not flood.
        if (state.failing === 1 || state.failing % 10 === 0) {
          logger.warn('audit shipping failed; retrying', {
            sink: state.sink.name,
            target: state.sink.target,
            attempts: state.failing,
            reason: state.lastError,
          });
        }
        const delay = Math.min(
          this.maxBackoffMs,
          this.backoffMs * 2 ** Math.min(state.failing - 1, 16),
        );
        // Jitter, so that many instances do not reconnect in step.
        await this.sleep(delay * (0.5 + Math.random() / 2));
        continue;
      }
      const last = rows.at(-1)!;
      const cursor = { seq: last.seq, hash: last.hash };
      try {
        await commitSystemChange(this.instance, () =>
          saveCursor(this.instance.sqlite, state.sink.name, cursor, this.instance.clock.now()),
        );
      } catch (error) {
        // Not saved: after a restart the batch is sent again (at least once). Ship on.
        logger.warn('audit shipping cursor not saved', {
          sink: state.sink.name,
          reason: String(error),
        });
      }
      state.cursor = cursor;
      state.shipped += rows.length;
      if (state.failing > 0) {
        logger.info('audit shipping resumed', {
          sink: state.sink.name,
          after_attempts: state.failing,
        });
      }
      state.failing = 0;
      state.lastError = null;
    }
  }

  /** Waits `ms`, or less when stopping. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleepers.add(done);
    });
  }
}

const shippers = new WeakMap<object, AuditShipper>();

/** The running server's shipper, for metrics (`lag()`); undefined when shipping is off. */
export function auditShipperFor(instance: Pick<Instance, 'sqlite'>): AuditShipper | undefined {
  return shippers.get(instance.sqlite);
}

/** Starts shipping when `[audit.ship]` names a sink; returns how to stop it. */
export function startAuditShipping(
  instance: ShipInstance,
  options: ShipperOptions = {},
): { stop(): Promise<void> } {
  const shipper = new AuditShipper(instance, options);
  if (shipper.lag().length === 0) return { stop: async () => {} };
  shipper.start();
  shippers.set(instance.sqlite, shipper);
  return {
    stop: async () => {
      shippers.delete(instance.sqlite);
      await shipper.stop();
    },
  };
}
