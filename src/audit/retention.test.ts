import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manualClock } from '../clock.ts';
import { validateConfig } from '../config/load.ts';
import { createInstance, type Instance } from '../instance.ts';
import { createLogger } from '../log/logger.ts';
import { appendAuditEntry, localAuditEntry } from '../ledger/audit-record.ts';
import { metricsFor } from '../metrics/metrics.ts';
import {
  pruneAuditLog,
  RETENTION_ACTOR,
  retentionHeldBack,
  startAuditRetention,
} from './retention.ts';
import { verifyChain } from './verify.ts';

const DAY = 86_400_000;

describe('audit retention', () => {
  let dir: string;
  let instance: Instance;
  const clock = manualClock(Date.UTC(2026, 0, 1));

  let lines: string[] = [];
  const open = (retentionDays: number, ship: Record<string, string> = {}) => {
    dir = mkdtempSync(join(tmpdir(), 'secryn-'));
    const config = validateConfig({
      storage: { path: join(dir, 'secryn.db') },
      encryption: { master_key_file: join(dir, 'master.key') },
      audit: { retention_days: retentionDays, ship },
    });
    lines = [];
    instance = createInstance(
      config,
      createLogger({ level: 'warn', format: 'json', write: (line) => void lines.push(line) }),
      undefined,
      {
        clock,
      },
    );
  };
  /** `count` entries, one every `stepMs`, starting now. */
  const append = (count: number, stepMs: number) =>
    instance.sqlite.transaction(() => {
      for (let i = 0; i < count; i++) {
        appendAuditEntry(instance.db, clock, localAuditEntry('thing.read', null));
        clock.advance(stepMs);
      }
    })();
  const count = () =>
    instance.sqlite.query<{ n: number }, []>('SELECT count(*) AS n FROM audit_log').get()!.n;

  beforeEach(() => clock.set(Date.UTC(2026, 0, 1)));
  afterEach(async () => {
    await instance.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('prunes only entries older than the period; verify passes from the checkpoint', async () => {
    open(30);
    append(40, DAY); // one a day for 40 days; now = day 40
    const result = await pruneAuditLog(instance, { retentionDays: 30, actor: RETENTION_ACTOR });
    // Entries of days 0..9 are older than 30 days.
    expect(result.pruned).toBe(10);
    expect(result.checkpoint?.throughSeq).toBe(10);
    expect(count()).toBe(30 + 1); // the rest plus the prune's own entry
    const verified = verifyChain(instance.sqlite);
    expect(verified).toMatchObject({ intact: true, verified: 31 });
    expect(verified.start).toMatchObject({ seq: 10, checkpoint: true });

    const again = await pruneAuditLog(instance, { retentionDays: 30, actor: RETENTION_ACTOR });
    expect(again.pruned).toBe(0);
    expect(count()).toBe(31);

    // New entries keep joining the chain after pruning.
    append(3, 1000);
    expect(verifyChain(instance.sqlite).intact).toBe(true);
  });

  test('a large backlog is pruned in batches; each batch moves the checkpoint and is recorded', async () => {
    open(1);
    append(12_000, 10); // two minutes of entries
    clock.advance(2 * DAY);
    const result = await pruneAuditLog(instance, { retentionDays: 1, actor: RETENTION_ACTOR });
    expect(result.pruned).toBe(12_000);
    const prunes = instance.sqlite
      .query<{ n: number }, []>("SELECT count(*) AS n FROM audit_log WHERE action = 'audit.prune'")
      .get()!.n;
    expect(prunes).toBe(3);
    expect(count()).toBe(3);
    expect(verifyChain(instance.sqlite)).toMatchObject({ intact: true, verified: 3 });

    // Pruning the prune entries themselves later still leaves a verifiable chain.
    clock.advance(2 * DAY);
    const later = await pruneAuditLog(instance, { retentionDays: 1, actor: RETENTION_ACTOR });
    expect(later.pruned).toBe(3);
    expect(count()).toBe(1);
    expect(verifyChain(instance.sqlite).intact).toBe(true);
  });

  test('removing entries after the checkpoint, or moving the checkpoint, is still caught', async () => {
    open(30);
    append(40, DAY);
    await pruneAuditLog(instance, { retentionDays: 30, actor: RETENTION_ACTOR });
    instance.sqlite.run('DELETE FROM audit_log WHERE seq = 11');
    expect(verifyChain(instance.sqlite).problem).toMatchObject({ kind: 'removed', seq: 11 });

    // Hide the removal by moving the checkpoint over it: the chain never recorded that one.
    const eleventh = instance.sqlite
      .query<{ hash: string }, []>('SELECT prev_hash AS hash FROM audit_log WHERE seq = 12')
      .get()!;
    instance.sqlite.run('UPDATE audit_checkpoint SET through_seq = 11, through_hash = ?', [
      eleventh.hash,
    ]);
    expect(verifyChain(instance.sqlite).problem).toMatchObject({ kind: 'checkpoint', seq: 11 });
  });

  test('never deletes an entry younger than the period, even behind a skewed older one', async () => {
    open(30);
    append(5, DAY); // days 0..4
    clock.set(Date.UTC(2026, 0, 1) + 20 * DAY);
    append(1, 0); // day 20: young at pruning time
    clock.set(Date.UTC(2026, 0, 1) + 5 * DAY);
    append(1, 0); // day 5, but appended after (another process's clock lagging)
    clock.set(Date.UTC(2026, 0, 1) + 40 * DAY);
    const result = await pruneAuditLog(instance, { retentionDays: 30, actor: RETENTION_ACTOR });
    expect(result.pruned).toBe(5);
    expect(count()).toBe(2 + 1);
    expect(verifyChain(instance.sqlite).intact).toBe(true);
  });

  test('retention 0 keeps everything; the maintenance loop prunes on start when set', async () => {
    open(0);
    append(5, 400 * DAY);
    const loop = startAuditRetention(instance, 60_000);
    await loop.stop();
    expect(count()).toBe(5);
    await instance.close();
    rmSync(dir, { recursive: true, force: true });

    open(7);
    append(20, DAY);
    const running = startAuditRetention(instance, 60_000);
    await running.stop();
    expect(count()).toBe(7 + 1);
    expect(verifyChain(instance.sqlite).intact).toBe(true);
  });

  test('never prunes past what every [audit.ship] sink has taken; says so once, and in metrics', async () => {
    open(30, { syslog: 'tcp://127.0.0.1:9', file: join(tmpdir(), 'unused.jsonl') });
    append(40, DAY); // days 0..39; days 0..9 are past the period
    const ship = (sink: string, seq: number) =>
      instance.sqlite.run(
        `INSERT INTO audit_ship_cursor (sink, through_seq, through_hash, updated_at)
         VALUES (?1, ?2, 'h', 0)
         ON CONFLICT (sink) DO UPDATE SET through_seq = ?2`,
        [sink, seq],
      );
    // Nothing shipped yet: nothing pruned, all ten held back.
    let result = await pruneAuditLog(instance, { retentionDays: 30, actor: RETENTION_ACTOR });
    expect(result).toMatchObject({ pruned: 0, heldBack: 10 });
    expect(count()).toBe(40);
    // The file has taken everything, syslog only #4: the lowest cursor bounds the pruning.
    ship('file', 40);
    ship('syslog', 4);
    result = await pruneAuditLog(instance, { retentionDays: 30, actor: RETENTION_ACTOR });
    expect(result).toMatchObject({ pruned: 4, heldBack: 6 });
    expect(retentionHeldBack(instance)).toBe(6);
    const scraped = await metricsFor(instance).render();
    expect(scraped).toContain('secryn_audit_retention_held_back_entries 6');
    expect(verifyChain(instance.sqlite).intact).toBe(true);

    // The maintenance loop logs that it is holding back once, not at every tick.
    const loop = startAuditRetention(instance, 5);
    await Bun.sleep(60);
    await loop.stop();
    expect(lines.filter((line) => line.includes('holding back')).length).toBe(1);
    expect(lines.join('\n')).toContain('"held_back":6');

    // Once syslog catches up, the rest goes.
    ship('syslog', 45);
    result = await pruneAuditLog(instance, { retentionDays: 30, actor: RETENTION_ACTOR });
    expect(result).toMatchObject({ pruned: 6, heldBack: 0 });
    expect(retentionHeldBack(instance)).toBe(0);
    expect(verifyChain(instance.sqlite).intact).toBe(true);
  });
});
