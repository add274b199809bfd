import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manualClock } from '../clock.ts';
import { validateConfig } from '../config/load.ts';
import { createInstance, type Instance } from '../instance.ts';
import { createLogger } from '../log/logger.ts';
import { listAuditEntries } from './query.ts';
import { appendAuditEntry, localAuditEntry } from '../ledger/audit-record.ts';
import { pruneAuditLog, RETENTION_ACTOR } from './retention.ts';

const DAY = 86_400_000;

describe('listAuditEntries', () => {
  let dir: string;
  let instance: Instance;
  const clock = manualClock(Date.UTC(2026, 0, 1));
  afterEach(async () => {
    await instance.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('unfiltered: computed totals and pages match count(*) and OFFSET, also after a prune', async () => {
    dir = mkdtempSync(join(tmpdir(), 'secryn-'));
    instance = createInstance(
      validateConfig({
        storage: { path: join(dir, 'secryn.db') },
        encryption: { master_key_file: join(dir, 'master.key') },
      }),
      createLogger({ level: 'silent', format: 'json' }),
      undefined,
      { clock },
    );
    const append = (count: number) =>
      instance.sqlite.transaction(() => {
        for (let i = 0; i < count; i++) {
          appendAuditEntry(instance.db, clock, localAuditEntry(`thing.${i}`, null));
        }
      })();
    const expectMatchesScan = () => {
      const { n } = instance.sqlite
        .query<{ n: number }, []>('SELECT count(*) AS n FROM audit_log')
        .get()!;
      for (const limit of [1, 7, 50]) {
        for (let page = 1; page <= Math.ceil(n / limit) + 1; page++) {
          const listed = listAuditEntries(instance.sqlite, {}, { page, limit });
          const scanned = instance.sqlite
            .query<
              { id: string },
              [number, number]
            >('SELECT id FROM audit_log ORDER BY seq DESC LIMIT ? OFFSET ?')
            .all(limit, (page - 1) * limit);
          expect(listed.total).toBe(n);
          expect(listed.rows.map((row) => row.id)).toEqual(scanned.map((row) => row.id));
        }
      }
    };
    expect(listAuditEntries(instance.sqlite, {}, { page: 1, limit: 10 })).toEqual({
      rows: [],
      total: 0,
      maxSeq: 0,
    });
    append(40);
    expectMatchesScan();
    clock.advance(10 * DAY);
    append(23);
    await pruneAuditLog(instance, { retentionDays: 5, actor: RETENTION_ACTOR });
    expectMatchesScan();
  });

  test('since/until match a plain scan even when the clock stepped back', () => {
    dir = mkdtempSync(join(tmpdir(), 'secryn-'));
    const stepping = manualClock(Date.UTC(2026, 5, 1));
    instance = createInstance(
      validateConfig({
        storage: { path: join(dir, 'secryn.db') },
        encryption: { master_key_file: join(dir, 'master.key') },
      }),
      createLogger({ level: 'silent', format: 'json' }),
      undefined,
      { clock: stepping },
    );
    // Times go 0, 2, …, 118 s, then back to 21 s and on in odd seconds: a time range's entries
    // sit apart in seq, and its earliest time can belong to a later seq than others in it.
    instance.sqlite.transaction(() => {
      for (let i = 0; i < 120; i++) {
        if (i === 60) stepping.set(Date.UTC(2026, 5, 1) + 21_000);
        appendAuditEntry(instance.db, stepping, localAuditEntry(`thing.${i % 3}`, null));
        stepping.advance(2_000);
      }
    })();
    const t = (seconds: number) => Date.UTC(2026, 5, 1) + seconds * 1_000;
    for (const [since, until] of [
      [t(21), undefined],
      [t(21), t(61)],
      [undefined, t(50)],
      [t(100), t(130)],
      [t(500), undefined],
    ] as const) {
      for (const action of [undefined, 'thing.1']) {
        const listed = listAuditEntries(
          instance.sqlite,
          { since, until, action },
          { page: 1, limit: 500 },
        );
        const scanned = instance.sqlite
          .query<{ id: string }, [number, number, string | null]>(
            `SELECT id FROM audit_log WHERE at >= ? AND at < ? AND (?3 IS NULL OR action = ?3)
             ORDER BY seq DESC`,
          )
          .all(since ?? 0, until ?? Number.MAX_SAFE_INTEGER, action ?? null);
        expect(listed.rows.map((row) => row.id)).toEqual(scanned.map((row) => row.id));
        expect(listed.total).toBe(scanned.length);
      }
    }
  });
});
