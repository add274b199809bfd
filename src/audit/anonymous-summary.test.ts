import { describe, expect, test } from 'bun:test';
import { RejectionSummaries, summaryEntry, type Rejection } from './anonymous-summary.ts';

const at = Date.UTC(2030, 0, 1);
const rejection = (ip: string | null, i: number, userAgent: string | null = 'ua'): Rejection => ({
  ip,
  userAgent,
  requestId: `req_${i}`,
  status: i % 2 === 0 ? 401 : 429,
  at: at + i,
});

describe('rejection summaries', () => {
  test('one bucket per address (IPv6 by /64); beyond the cap, one overflow bucket', () => {
    const summaries = new RejectionSummaries(2);
    summaries.add(rejection('2001:db8:0:1::1', 0));
    summaries.add(rejection('2001:db8:0:1::2', 1));
    summaries.add(rejection('192.0.2.1', 2));
    for (let i = 3; i < 103; i++) summaries.add(rejection(`10.0.0.${i}`, i));
    const entries = summaries.take().map(summaryEntry);
    expect(summaries.isEmpty).toBe(true);
    expect(entries.map((entry) => [entry.ip, entry.details?.count])).toEqual([
      ['2001:db8:0:1::/64', 2],
      ['192.0.2.1', 1],
      [null, 100],
    ]);
    expect(entries[0]!.details).toMatchObject({
      by_status: { '401': 1, '429': 1 },
      first_request_id: 'req_0',
      last_request_id: 'req_1',
      first_at: '2030-01-01T00:00:00Z',
    });
    expect(entries[2]!.details).toMatchObject({ overflow: true });
  });

  test('user agents: distinct, at most 8, each cut to 256 characters', () => {
    const summaries = new RejectionSummaries(10);
    for (let i = 0; i < 50; i++)
      summaries.add(rejection('192.0.2.1', i, `${i % 10}${'x'.repeat(999)}`));
    const [entry] = summaries.take().map(summaryEntry);
    const agents = entry!.details!.user_agents as string[];
    expect(agents).toHaveLength(8);
    expect(new Set(agents).size).toBe(8);
    for (const agent of agents) expect(agent).toHaveLength(256);
    expect(entry!.details!.other_user_agents).toBe(10);
    expect(entry!.userAgent).toBe(agents[0]!);
  });

  test('buckets put back after a failed write merge with newer ones; nothing is lost', () => {
    const summaries = new RejectionSummaries(1);
    summaries.add(rejection('192.0.2.1', 0));
    summaries.add(rejection('192.0.2.2', 1)); // overflow
    const taken = summaries.take();
    summaries.add(rejection('192.0.2.1', 2));
    summaries.add(rejection('192.0.2.3', 3)); // overflow again
    summaries.restore(taken);
    expect(summaries.pendingCount).toBe(4);
    const entries = summaries.take().map(summaryEntry);
    expect(entries.map((entry) => [entry.ip, entry.details?.count])).toEqual([
      ['192.0.2.1', 2],
      [null, 2],
    ]);
    expect(entries[0]!.details).toMatchObject({
      first_request_id: 'req_0',
      last_request_id: 'req_2',
    });
  });
});
