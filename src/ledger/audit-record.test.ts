import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manualClock } from '../clock.ts';
import { validateConfig } from '../config/load.ts';
import { createInstance, type Instance } from '../instance.ts';
import { createLogger } from '../log/logger.ts';
import { appendAuditEntry, fallbackAction, localAuditEntry, outcomeOf } from './audit-record.ts';
import { verifyChain } from '../audit/verify.ts';

describe('outcome and fallback action of a status', () => {
  test('2xx/3xx success; 401/403/429 denied; a hiding 404 denied; the rest error', () => {
    expect([200, 201, 204, 302].map((s) => outcomeOf(s))).toEqual(Array(4).fill('success'));
    expect([401, 403, 429].map((s) => outcomeOf(s))).toEqual(Array(3).fill('denied'));
    expect(outcomeOf(404, true)).toBe('denied');
    expect([400, 404, 405, 409, 410, 413, 500, 503].map((s) => outcomeOf(s))).toEqual(
      Array(8).fill('error'),
    );
    expect(fallbackAction(401)).toBe('request.unauthenticated');
    expect(fallbackAction(429)).toBe('request.rate_limited');
    expect(fallbackAction(404)).toBe('request.unmatched');
    expect(fallbackAction(400)).toBe('request.rejected');
  });
});

describe('appending', () => {
  let dir: string;
  let instance: Instance;
  const clock = manualClock();

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'secryn-'));
    const config = validateConfig({
      storage: { path: join(dir, 'secryn.db') },
      encryption: { master_key_file: join(dir, 'master.key') },
    });
    instance = createInstance(
      config,
      createLogger({ level: 'silent', format: 'json' }),
      undefined,
      {
        clock,
      },
    );
    instance.sqlite.run('CREATE TABLE changes (id INTEGER PRIMARY KEY, what TEXT)');
  });
  afterEach(async () => {
    await instance.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const rows = () =>
    instance.sqlite
      .query<
        { action: string; outcome: string; actor_type: string },
        []
      >('SELECT action, outcome, actor_type FROM audit_log ORDER BY seq')
      .all();
  const changes = () =>
    instance.sqlite.query<{ n: number }, []>('SELECT count(*) AS n FROM changes').get()!.n;

  test('refuses to run outside a transaction, where the head could move under it', () => {
    expect(() => appendAuditEntry(instance.db, clock, localAuditEntry('x.y', null))).toThrow(
      /inside a write transaction/,
    );
    expect(rows()).toEqual([]);
  });

  test('group-committed appends from concurrent jobs form one chain; a failed job leaves no trace', async () => {
    const jobs = Array.from({ length: 50 }, (_, i) =>
      instance.writes.run(() => {
        appendAuditEntry(instance.db, clock, localAuditEntry(`job.${i}`, null));
        if (i % 10 === 3) throw new Error('job failed after appending');
      }),
    );
    const settled = await Promise.allSettled(jobs);
    expect(settled.filter((s) => s.status === 'rejected')).toHaveLength(5);
    expect(rows()).toHaveLength(45);
    expect(verifyChain(instance.sqlite)).toMatchObject({ intact: true, verified: 45 });
  });

  test('fields are clipped, so a client cannot bloat the log through its user agent', async () => {
    await instance.writes.run(() =>
      appendAuditEntry(instance.db, clock, {
        ...localAuditEntry('x.y', null),
        userAgent: 'u'.repeat(10_000),
        requestId: 'r'.repeat(10_000),
      }),
    );
    const lengths = instance.sqlite
      .query<
        { ua: number; rid: number },
        []
      >('SELECT length(user_agent) AS ua, length(request_id) AS rid FROM audit_log')
      .get()!;
    expect(lengths).toEqual({ ua: 256, rid: 128 });
    expect(verifyChain(instance.sqlite).intact).toBe(true);
  });
});
