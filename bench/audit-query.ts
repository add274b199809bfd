/**
 * How long `GET /v1/audit-logs` takes on a large log, by filter. The log is indexed by `seq`,
 * `id` and `at` only (an index on actor or target would cost every audited request a random
 * index page), so a filter on actor, target, action or outcome reads the log newest first; this
 * bench shows what that costs against the unfiltered page (the baseline, measured in the same
 * run) and a time-range filter.
 *
 *   ./node_modules/.bin/bun bench/audit-query.ts             (1 000 000 entries, ~1 min)
 *   ./node_modules/.bin/bun bench/audit-query.ts --entries 200000
 *
 * Entries: 20 API keys reading 100 000 resources round-robin, one entry per ms of a clock that
 * starts 1 000 000 ms before the queries. Each query runs through the whole app in process
 * (`app.handle`, admin key), 5 times; the median is shown.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendAuditEntries, type AuditEntryInput } from '../src/ledger/audit-record.ts';
import { manualClock } from '../src/clock.ts';
import { validateConfig } from '../src/config/load.ts';
import { buildFeatures } from '../src/features.ts';
import { createInstance } from '../src/instance.ts';
import { insertApiKey, newApiKeyId } from '../src/keys/service.ts';
import { createLogger } from '../src/log/logger.ts';
import { buildApp } from '../src/server.ts';
import { formatCount, formatMs, machineSummary, markdownTable, median } from './lib/load.ts';

const argIndex = process.argv.indexOf('--entries');
const ENTRIES = argIndex > 0 ? Number(process.argv[argIndex + 1]) : 1_000_000;
const ACTORS = 20;
const TARGETS = 100_000;
const RUNS = 5;

const dir = mkdtempSync(join(tmpdir(), 'secryn-audit-query-'));
try {
  const start = Date.UTC(2026, 0, 1);
  const clock = manualClock(start);
  const instance = createInstance(
    validateConfig({
      storage: { path: join(dir, 'secryn.db'), synchronous: 'normal' },
      encryption: { master_key_file: join(dir, 'master.key') },
      log: { level: 'error', format: 'json' },
    }),
    createLogger({ level: 'error', format: 'json' }),
    undefined,
    { clock },
  );
  const actor = (i: number) => `key_bench${String(i % ACTORS).padStart(21, '0')}`;
  const target = (i: number) => `res_bench${String(i % TARGETS).padStart(21, '0')}`;
  const filling = performance.now();
  const BATCH = 10_000;
  for (let done = 0; done < ENTRIES; done += BATCH) {
    const entries: AuditEntryInput[] = [];
    for (let i = done; i < Math.min(ENTRIES, done + BATCH); i++) {
      entries.push({
        actor: { type: 'api_key', id: actor(i), name: 'bench' },
        action: i % 10 === 0 ? 'resource.update' : 'resource.reveal',
        target: { type: 'resource', id: target(i * 7919) },
        outcome: i % 50 === 0 ? 'denied' : 'success',
        status: i % 50 === 0 ? 403 : 200,
        ip: '127.0.0.1',
        userAgent: 'bench',
        requestId: `req_${i}`,
      });
    }
    // One clock value per batch, then a step: times rise with the chain like a live log's.
    instance.sqlite.transaction(() => appendAuditEntries(instance.db, clock, entries)).immediate();
    clock.advance(entries.length);
  }
  const fillMs = performance.now() - filling;
  instance.sqlite.run('PRAGMA wal_checkpoint(TRUNCATE)');

  const { token } = insertApiKey(
    instance.db,
    newApiKeyId(),
    { name: 'admin', role: 'admin', projectIds: [], vaultIds: [], scopes: null, expiresAt: null },
    'bench',
    clock.now(),
  );
  const features = buildFeatures(instance);
  const app = buildApp(instance, {
    features: features.features,
    recordOutcome: features.recordOutcome,
  });
  const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const newest = `since=${iso(clock.now() - ENTRIES / 10)}`;
  const queries: [string, string][] = [
    ['no filter, page 1 (baseline)', ''],
    ['no filter, page 1000', 'page=1000'],
    [`actor_id (1 of ${ACTORS} keys)`, `actor_id=${actor(7)}`],
    ['resource_id (a rare target)', `resource_id=${target(12_345)}`],
    ['outcome=denied', 'outcome=denied'],
    ['since: the newest 10 %', newest],
    ['resource_id + since: the newest 10 %', `resource_id=${target(12_345)}&${newest}`],
  ];
  const rows: string[][] = [];
  let baseline = 0;
  for (const [label, query] of queries) {
    const times: number[] = [];
    let total = 0;
    for (let run = 0; run < RUNS; run++) {
      const began = performance.now();
      const response = await app.handle(
        new Request(`http://localhost/v1/audit-logs?limit=50${query ? `&${query}` : ''}`, {
          headers: { authorization: `Bearer ${token}` },
        }),
      );
      const body = (await response.json()) as { pagination?: { total: number } };
      times.push(performance.now() - began);
      if (response.status !== 200) throw new Error(`${label}: HTTP ${response.status}`);
      total = body.pagination?.total ?? 0;
    }
    const ms = median(times);
    if (baseline === 0) baseline = ms;
    rows.push([label, formatCount(total), formatMs(ms), `${(ms / baseline).toFixed(1)}×`]);
  }
  await features.stop();
  await instance.close();

  console.log('# Audit log queries on a large log (bench/audit-query.ts)\n');
  console.log(machineSummary());
  console.log(
    `${formatCount(ENTRIES)} entries (filled in ${(fillMs / 1000).toFixed(1)} s through the chain ` +
      `append, ${((fillMs * 1000) / ENTRIES).toFixed(1)} µs each); GET /v1/audit-logs?limit=50 in ` +
      `process, median of ${RUNS}\n`,
  );
  console.log(markdownTable(['query', 'matching', 'time', 'vs baseline'], rows));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
