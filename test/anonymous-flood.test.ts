/**
 * A flood of requests without a usable key, sent through the real access layer and audit
 * recorder (app.handle), costs bounded disk: rejected anonymous requests are summarised per
 * client address and window, every one of them still accounted for in the chain.
 */
import { Database } from 'bun:sqlite';
import { afterAll, describe, expect, test } from 'bun:test';
import { verifyChain } from '../src/audit/verify.ts';
import { readIntegrityWith } from '../src/keyring/integrity.ts';
import { loadConfiguredMasterKey } from '../src/keyring/key-files.ts';
import { createInstance, type Instance } from '../src/instance.ts';
import { call, memoryLogger, tempDir, testConfig } from './harness.ts';
import { appOf, insertAdminKey } from './app-harness.ts';

const FLOOD = 10_000;
/** The target: database growth per 10,000 rejected requests from one address. */
const MAX_GROWTH_ONE_ADDRESS = 100 * 1024;
const LONG_USER_AGENT = `flood/1.0 ${'x'.repeat(502)}`; // 512 characters
const longRequestId = (i: number) => `${'r'.repeat(120)}${String(i).padStart(8, '0')}`; // 128

const cleanups: (() => void)[] = [];
afterAll(() => cleanups.forEach((cleanup) => cleanup()));

function setup(audit: Record<string, unknown> = {}) {
  const dir = tempDir();
  cleanups.push(() => dir[Symbol.dispose]());
  const config = testConfig(dir.path, { server: { trust_proxy: true }, audit });
  const instance = createInstance(config, memoryLogger());
  const app = appOf(instance);
  const token = insertAdminKey(instance);
  return { instance, app, token, path: config.storage.path };
}

/** Bytes the database file holds once its WAL is checkpointed into it. */
function databaseBytes(sqlite: Database): number {
  sqlite.run('PRAGMA wal_checkpoint(TRUNCATE)');
  const { n } = sqlite
    .query<
      { n: number },
      []
    >('SELECT page_count * page_size AS n FROM pragma_page_count(), pragma_page_size()')
    .get()!;
  return n;
}

/** Sends `count` requests without a key, 100 at a time, from `address(i)`. */
async function flood(
  app: ReturnType<typeof appOf>,
  count: number,
  address: (i: number) => string,
): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  for (let start = 0; start < count; start += 100) {
    const batch = [];
    for (let i = start; i < Math.min(count, start + 100); i++) {
      batch.push(
        call(app, 'GET', '/v1/projects', {
          headers: {
            'x-forwarded-for': address(i),
            'user-agent': `${i % 20} ${LONG_USER_AGENT}`,
            'x-request-id': longRequestId(i),
            authorization: i % 2 === 0 ? 'Bearer scr_not-a-real-key' : '',
          },
        }),
      );
    }
    for (const response of await Promise.all(batch)) {
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
    }
  }
  return statuses;
}

type Row = { action: string; ip: string | null; user_agent: string | null; details: string | null };

/** Closes the instance (a clean stop) and reads what it left on disk. */
async function closeAndRead(instance: Instance, path: string) {
  await instance.close();
  const sqlite = new Database(path);
  try {
    const bytes = databaseBytes(sqlite);
    const rows = sqlite.query<Row, []>('SELECT * FROM audit_log ORDER BY seq').all();
    // The chain is keyed: verify it with the audit key read back under the master key.
    const key = readIntegrityWith(sqlite, loadConfiguredMasterKey(instance.config, {}).key);
    return { rows, bytes, intact: verifyChain(sqlite, { key }).intact };
  } finally {
    sqlite.close();
  }
}

const accounted = (rows: Row[]) =>
  rows
    .filter((row) => row.action === 'request.rejected_summary')
    .reduce((n, row) => n + (JSON.parse(row.details!) as { count: number }).count, 0);

describe('an unauthenticated flood', () => {
  test(`${FLOOD} rejected requests from one address grow the database by ≤ 100 KB, all accounted for`, async () => {
    const { instance, app, path } = setup();
    const before = databaseBytes(instance.sqlite);
    const rowsBefore = instance.sqlite
      .query<{ n: number }, []>('SELECT count(*) AS n FROM audit_log')
      .get()!.n;
    const statuses = await flood(app, FLOOD, () => '203.0.113.7');
    // The address's bucket lets the first `burst` (and what refills) through as 401s, then 429.
    const unauthenticated = statuses.get(401)!;
    expect(unauthenticated).toBeGreaterThanOrEqual(100);
    expect(statuses.get(429)).toBe(FLOOD - unauthenticated);
    const { rows, bytes, intact } = await closeAndRead(instance, path);
    const growth = bytes - before;
    console.log(
      `one address: ${rows.length - rowsBefore} audit rows, ${growth} bytes of database growth per ${FLOOD} rejected requests`,
    );
    expect(growth).toBeLessThanOrEqual(MAX_GROWTH_ONE_ADDRESS);
    expect(rows.length - rowsBefore).toBeLessThanOrEqual(2);
    expect(intact).toBe(true);
    // Nothing unaccounted for after a clean stop, though the window had not ended.
    expect(accounted(rows)).toBe(FLOOD);
    const summary = rows.find((row) => row.action === 'request.rejected_summary')!;
    expect(summary.ip).toBe('203.0.113.7');
    const details = JSON.parse(summary.details!) as Record<string, unknown>;
    expect(details).toMatchObject({
      count: FLOOD,
      by_status: { '401': unauthenticated, '429': FLOOD - unauthenticated },
      first_request_id: longRequestId(0),
      last_request_id: longRequestId(FLOOD - 1),
    });
    const agents = details.user_agents as string[];
    expect(agents.length).toBe(8);
    // 20 distinct agents: requests with one of the 12 not kept are counted, not listed.
    expect(details.other_user_agents).toBe((FLOOD * 12) / 20);
    for (const agent of agents) expect(agent.length).toBe(256);
    expect(summary.user_agent!.length).toBe(256);
  }, 60_000);

  test(`${FLOOD} rejected requests from ${FLOOD} addresses: at most max_addresses + 1 entries`, async () => {
    const { instance, app, path } = setup();
    const before = databaseBytes(instance.sqlite);
    // Half IPv4, half IPv6 in distinct /64s; each address only once (every request a 401).
    const address = (i: number) =>
      i % 2 === 0
        ? `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
        : `2001:db8:${i.toString(16)}::1`;
    const statuses = await flood(app, FLOOD, address);
    expect(statuses.get(401)).toBe(FLOOD);
    const { rows, bytes, intact } = await closeAndRead(instance, path);
    const growth = bytes - before;
    const summaries = rows.filter((row) => row.action === 'request.rejected_summary');
    console.log(
      `${FLOOD} addresses: ${summaries.length} summary entries, ${growth} bytes of database growth`,
    );
    expect(intact).toBe(true);
    expect(accounted(rows)).toBe(FLOOD);
    expect(summaries.length).toBe(256 + 1);
    const overflow = summaries.filter((row) => row.ip === null);
    expect(overflow).toHaveLength(1);
    expect(JSON.parse(overflow[0]!.details!)).toMatchObject({ overflow: true, count: FLOOD - 256 });
    // ~1.5 KB per entry (a 256-character user agent, three 128-character request ids, two
    // hashes), whatever the number of addresses.
    expect(growth).toBeLessThanOrEqual(257 * 1536);
  }, 60_000);

  test('a summary is written at the end of its window; an IPv6 /64 is one client', async () => {
    const { instance, app, token } = setup({ anonymous_summary_seconds: 1 });
    cleanups.push(() => void instance.close());
    const started = Date.now();
    for (const ip of ['2001:db8:1:2::a', '2001:db8:1:2:ffff::b', '2001:db8:1:2::a']) {
      const response = await call(app, 'GET', '/v1/projects', {
        headers: { 'x-forwarded-for': ip },
      });
      expect(response.status).toBe(401);
    }
    const summaries = () =>
      instance.sqlite
        .query<
          Row,
          []
        >("SELECT action, ip, user_agent, details FROM audit_log WHERE action = 'request.rejected_summary'")
        .all();
    expect(summaries()).toHaveLength(0);
    while (summaries().length === 0 && Date.now() - started < 5_000) await Bun.sleep(50);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(summaries()).toHaveLength(1);
    expect(summaries()[0]!.ip).toBe('2001:db8:1:2::/64');
    expect(JSON.parse(summaries()[0]!.details!)).toMatchObject({ count: 3 });

    // Authenticated requests keep one entry each, their user agent and request id capped.
    const response = await call(app, 'GET', '/v1/projects', {
      headers: {
        authorization: `Bearer ${token}`,
        'user-agent': LONG_USER_AGENT,
        'x-request-id': longRequestId(7),
      },
    });
    expect(response.status).toBe(200);
    const entry = instance.sqlite
      .query<
        Row & { request_id: string },
        [string]
      >('SELECT action, ip, user_agent, details, request_id FROM audit_log WHERE request_id = ?')
      .get(longRequestId(7))!;
    expect(entry.action).toBe('project.list');
    expect(entry.user_agent).toBe(LONG_USER_AGENT.slice(0, 256));
    expect(entry.details).toBeNull();
  }, 20_000);
});
