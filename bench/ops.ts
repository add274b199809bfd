/**
 * Operations figures (issue 19): backup time and size for 100 000 secrets, plain (`secryn
 * backup`, the baseline) against age-encrypted and checked (what `[backup]` and `--encrypt-to`
 * do), and the longest event-loop stall such a backup causes on the event loop and in a worker;
 * and audit shipping: throughput draining a 100 000-entry backlog to a loopback TCP syslog
 * receiver and a JSON-lines file, and the lag while entries are appended at a steady rate.
 * In process, loopback only, ~1 min. Run: `bun bench/ops.ts`.
 */
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendAuditEntries, localAuditEntry } from '../src/ledger/audit-record.ts';
import { AuditShipper } from '../src/audit/ship/shipper.ts';
import { fileSink, syslogSink } from '../src/audit/ship/sinks.ts';
import { createBackup, withSourceDatabase } from '../src/backup/backup.ts';
import { writeCheckedBackup, type PrepareRunner } from '../src/backup/checked.ts';
import { prepareInWorker } from '../src/backup/off-thread.ts';
import { systemClock } from '../src/clock.ts';
import { loadConfig } from '../src/config/load.ts';
import { createInstance } from '../src/instance.ts';
import { createLogger } from '../src/log/logger.ts';
import { fillDatabase } from '../test/fill-database.ts';
import { writeConfig } from '../test/harness.ts';

const SECRETS = 100_000;
const dir = mkdtempSync(join(tmpdir(), 'secryn-bench-ops-'));
const logger = createLogger({ level: 'warn', format: 'pretty' });
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

try {
  const configPath = writeConfig(dir);
  const { config } = loadConfig({ path: configPath, env: {} });
  const instance = createInstance(config, logger, undefined, { env: {} });
  const { sqlite, db } = instance;
  // 100 000 audit entries too: a year of a small instance, and the backlog shipping drains.
  fillDatabase(instance, SECRETS, 100_000);
  sqlite.run('PRAGMA wal_checkpoint(TRUNCATE)');

  // --- Backups -------------------------------------------------------------------------------
  const plainStarted = performance.now();
  const plain = createBackup(config, join(dir, 'plain.db'), systemClock, {});
  const plainMs = performance.now() - plainStarted;
  const recipient = await identityToRecipient(await generateX25519Identity());
  const encryptedStarted = performance.now();
  const encrypted = await withSourceDatabase(config, join(dir, 'b.db.age'), {}, (s, source, key) =>
    writeCheckedBackup(s, source, join(dir, 'b.db.age'), {
      recipients: [recipient],
      masterKey: key,
      config,
      record: () => {},
    }),
  );
  const encryptedMs = performance.now() - encryptedStarted;
  console.log(`\n### Backup of ${SECRETS.toLocaleString('en')} secrets + 100 000 audit entries\n`);
  console.log('| backup | time | size | ratio |');
  console.log('|---|---|---|---|');
  console.log(
    `| plain \`secryn backup\` (baseline: VACUUM INTO + integrity check) | ${plainMs.toFixed(0)} ms | ${mb(plain.bytes)} | 1.00× |`,
  );
  console.log(
    `| age-encrypted + checked (decrypt, integrity, keyring, MACs, chain) | ${encryptedMs.toFixed(0)} ms | ${mb(encrypted.bytes)} | ${(encryptedMs / plainMs).toFixed(2)}× |`,
  );

  // Event-loop stall of a scheduled backup: the longest gap between 5 ms ticks while it runs,
  // checked in-process (before) against in a worker (what `serve` does now).
  const stallOf = async (name: string, prepare?: PrepareRunner) => {
    let last = performance.now();
    let worst = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last);
      last = now;
    }, 5);
    const started = performance.now();
    const target = join(dir, `${name}.db.age`);
    await withSourceDatabase(config, target, {}, (s, source, key) =>
      writeCheckedBackup(s, source, target, {
        recipients: [recipient],
        masterKey: key,
        config,
        record: () => {},
        ...(prepare ? { prepare } : {}),
      }),
    );
    clearInterval(ticker);
    return { ms: performance.now() - started, worst };
  };
  const inProcess = await stallOf('in-process');
  const inWorker = await stallOf('worker', prepareInWorker);
  console.log('\n### Event-loop stall during an encrypted, checked backup\n');
  console.log('| backup runs | time | longest event-loop stall |');
  console.log('|---|---|---|');
  console.log(
    `| on the event loop (before) | ${inProcess.ms.toFixed(0)} ms | ${inProcess.worst.toFixed(0)} ms |`,
  );
  console.log(
    `| in a worker (now) | ${inWorker.ms.toFixed(0)} ms | ${inWorker.worst.toFixed(0)} ms |`,
  );

  // --- Shipping ------------------------------------------------------------------------------
  let received = 0;
  const server = createServer((socket) => {
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      // Counting frames is enough here: each message carries one JSON object.
      pending += chunk.toString('latin1');
      let index: number;
      while ((index = pending.indexOf('\u00ef\u00bb\u00bf')) >= 0) {
        received++;
        pending = pending.slice(index + 3);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const shipper = new AuditShipper(instance, {
    pollMs: 50,
    sinks: [syslogSink(`tcp://127.0.0.1:${port}`), fileSink(join(dir, 'audit.jsonl'))],
  });
  const total = () =>
    sqlite.query<{ n: number }, []>('SELECT max(seq) AS n FROM audit_log').get()!.n;
  const drainStarted = performance.now();
  shipper.start();
  while (shipper.lag().some((lag) => lag.entries > 0)) await Bun.sleep(20);
  const drainMs = performance.now() - drainStarted;
  console.log('\n### Audit shipping (loopback syslog/TCP and JSON-lines file, both at once)\n');
  console.log('| figure | value |');
  console.log('|---|---|');
  console.log(
    `| backlog of ${total().toLocaleString('en')} entries drained in | ${drainMs.toFixed(0)} ms (${Math.round(total() / (drainMs / 1000)).toLocaleString('en')} entries/s per sink) |`,
  );
  // Steady load: 2 000 entries/s (an audited read each) for 5 s, lag sampled every 20 ms.
  let maxLagEntries = 0;
  let maxLagSeconds = 0;
  const steadyEnd = performance.now() + 5000;
  while (performance.now() < steadyEnd) {
    sqlite.transaction(() =>
      appendAuditEntries(db, systemClock, Array(40).fill(localAuditEntry('bench.read', null))),
    )();
    await Bun.sleep(20);
    for (const lag of shipper.lag()) {
      maxLagEntries = Math.max(maxLagEntries, lag.entries);
      maxLagSeconds = Math.max(maxLagSeconds, lag.seconds);
    }
  }
  console.log(
    `| lag at ~2 000 entries/s for 5 s (max) | ${maxLagEntries} entries, ${maxLagSeconds.toFixed(2)} s |`,
  );
  while (shipper.lag().some((lag) => lag.entries > 0)) await Bun.sleep(20);
  await shipper.stop();
  await Bun.sleep(300); // the receiver reads what is still in flight
  server.close();
  console.log(
    `| syslog frames received / entries | ${received.toLocaleString('en')} / ${total().toLocaleString('en')} (at least once) |`,
  );
  await instance.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
