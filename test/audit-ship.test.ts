/**
 * Audit shipping to a real TCP syslog receiver (RFC 5424, RFC 6587 octet counting) and to a
 * JSON-lines file: the receiver is absent, then comes up, then is slow (stops reading), then
 * goes away and comes back. Requests keep answering quickly throughout; in the end every entry
 * has arrived, in order once duplicates (at least once) are dropped by seq, with a continuous
 * chain whose keyed hashes verify with the audit key, and the lag returns to zero.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { createServer, type Server, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chainHash, GENESIS_HASH, type ChainFields } from '../src/ledger/audit-chain.ts';
import { AuditShipper } from '../src/audit/ship/shipper.ts';
import { fileSink, syslogFrame, syslogSink, type ShipEntry } from '../src/audit/ship/sinks.ts';
import { integrityOf } from '../src/keyring/integrity.ts';
import { createInstance } from '../src/instance.ts';
import { call, freePort, memoryLogger, tempDir, testConfig } from './harness.ts';
import { appOf, insertAdminKey } from './app-harness.ts';

const cleanups: (() => void | Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** A syslog receiver over TCP that parses octet-counted frames into the entries' JSON. */
function receiver(port: number) {
  const entries: ShipEntry[] = [];
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  let paused = false;
  const handle = (socket: Socket) => {
    sockets.add(socket);
    if (paused) socket.pause();
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const space = buffer.indexOf(0x20);
        if (space < 0) return;
        const length = Number(buffer.subarray(0, space).toString('ascii'));
        if (buffer.length < space + 1 + length) return;
        const message = buffer.subarray(space + 1, space + 1 + length).toString('utf8');
        buffer = buffer.subarray(space + 1 + length);
        expect(message).toMatch(
          /^<1(08|10)>1 \d{4}-\d\d-\d\dT[\d:.]+Z \S+ secryn \d+ \S+ - \uFEFF\{/,
        );
        entries.push(JSON.parse(message.slice(message.indexOf('\uFEFF') + 1)));
      }
    });
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
  };
  return {
    entries,
    async up() {
      server = createServer(handle);
      await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
    },
    async down() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      server = null;
    },
    pause() {
      paused = true;
      for (const socket of sockets) socket.pause();
    },
    resume() {
      paused = false;
      for (const socket of sockets) socket.resume();
    },
  };
}

/** Drops redelivered entries (same seq), keeping the first arrival, and checks the order. */
function deduplicated(entries: ShipEntry[]): ShipEntry[] {
  const seen = new Map<number, ShipEntry>();
  let highest = 0;
  for (const entry of entries) {
    const earlier = seen.get(entry.seq);
    if (earlier) {
      expect(entry).toEqual(earlier); // a redelivery is the same entry
      continue;
    }
    // A new entry always comes after every entry seen before it: in order.
    expect(entry.seq).toBeGreaterThan(highest);
    highest = entry.seq;
    seen.set(entry.seq, entry);
  }
  return [...seen.values()];
}

/** The receiver's check: seq 1..n without a gap, each prev_hash the hash before, hashes keyed. */
function verifyShippedChain(
  entries: ShipEntry[],
  key: { auditChain: Uint8Array; auditKeyedFrom: number },
) {
  let previous = GENESIS_HASH;
  entries.forEach((entry, index) => {
    expect(entry.seq).toBe(index + 1);
    expect(entry.prev_hash).toBe(previous);
    const fields: ChainFields = {
      seq: entry.seq,
      id: entry.id,
      at: entry.at,
      actorType: entry.actor_type,
      actorId: entry.actor_id,
      actorName: entry.actor_name,
      action: entry.action,
      targetType: entry.target_type,
      targetId: entry.target_id,
      outcome: entry.outcome,
      status: entry.status,
      ip: entry.ip,
      userAgent: entry.user_agent,
      requestId: entry.request_id,
      prevHash: entry.prev_hash,
      details: entry.details,
    };
    expect(entry.chain).toBe(
      entry.seq >= key.auditKeyedFrom ? 'secryn.audit.v2' : 'secryn.audit.v1',
    );
    expect(chainHash(fields, key)).toBe(entry.hash);
    previous = entry.hash;
  });
}

function setup() {
  const dir = tempDir();
  cleanups.push(() => dir[Symbol.dispose]());
  const port = freePort();
  const config = testConfig(dir.path, {
    audit: { ship: { syslog: `tcp://127.0.0.1:${port}`, file: join(dir.path, 'audit.jsonl') } },
    rate_limit: { requests_per_minute: 100_000, burst: 10_000 },
  });
  const instance = createInstance(config, memoryLogger());
  const app = appOf(instance);
  const token = insertAdminKey(instance);
  const shipper = new AuditShipper(instance, {
    pollMs: 20,
    backoffMs: 20,
    maxBackoffMs: 200,
    sinks: [syslogSink(config.audit.ship.syslog!), fileSink(config.audit.ship.file!)],
  });
  cleanups.push(async () => {
    await shipper.stop();
    await instance.close();
  });
  /** Sends `n` audited requests; returns the slowest latency in ms. */
  const traffic = async (n: number) => {
    let slowest = 0;
    for (let i = 0; i < n; i++) {
      const started = performance.now();
      const response = await call(app, 'GET', '/v1/projects', {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(response.status).toBe(200);
      await response.arrayBuffer();
      slowest = Math.max(slowest, performance.now() - started);
    }
    return slowest;
  };
  return { instance, shipper, traffic, port, file: config.audit.ship.file! };
}

async function until(condition: () => boolean, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

describe('audit shipping', () => {
  test('syslog receiver down, up, slow, gone and back: nothing lost, in order, chain verifies, requests never wait', async () => {
    const { instance, shipper, traffic, port, file } = setup();
    const siem = receiver(port);
    cleanups.push(() => siem.down());
    const head = () =>
      instance.sqlite.query<{ seq: number }, []>('SELECT max(seq) AS seq FROM audit_log').get()!
        .seq;
    const syslogLag = () => shipper.lag().find((lag) => lag.sink === 'syslog')!;
    shipper.start();

    // 1. No receiver: requests answer, the backlog grows and is reported.
    const whileDown = await traffic(50);
    await until(() => syslogLag().failing > 0, 'a failed attempt');
    expect(syslogLag().entries).toBeGreaterThanOrEqual(50);
    expect(syslogLag().lastError).not.toBeNull();

    // 2. The receiver comes up: the backlog drains.
    await siem.up();
    await until(() => syslogLag().entries === 0, 'the backlog to drain');
    expect(syslogLag()).toMatchObject({ entries: 0, seconds: 0, failing: 0 });

    // 3. Slow: the receiver stops reading; requests are not slowed.
    siem.pause();
    const whileSlow = await traffic(50);
    siem.resume();

    // 4. Gone mid-stream, more traffic, back again.
    await siem.down();
    const whileGone = await traffic(50);
    await siem.up();
    await traffic(10);
    await until(
      () => syslogLag().entries === 0 && deduplicated([...siem.entries]).length === head(),
      'every entry',
    );

    const shipped = deduplicated(siem.entries);
    verifyShippedChain(shipped, integrityOf(instance.sqlite));
    // The local chain is the same one, entry for entry.
    const local = instance.sqlite
      .query<{ seq: number; hash: string }, []>('SELECT seq, hash FROM audit_log ORDER BY seq')
      .all();
    expect(shipped.map((e) => [e.seq, e.hash])).toEqual(local.map((e) => [e.seq, e.hash]));
    // Requests answered in milliseconds whatever the receiver did (generous bound for CI).
    expect(Math.max(whileDown, whileSlow, whileGone)).toBeLessThan(250);

    // The file sink got the same chain, one JSON object per line.
    await until(() => shipper.lag().every((lag) => lag.entries === 0), 'the file sink');
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    verifyShippedChain(deduplicated(lines), integrityOf(instance.sqlite));

    // The cursor is persisted: a new shipper (a restart) resumes after it, sending nothing again.
    const cursor = instance.sqlite
      .query<
        { sink: string; through_seq: number },
        []
      >('SELECT sink, through_seq FROM audit_ship_cursor ORDER BY sink')
      .all();
    expect(cursor).toEqual([
      { sink: 'file', through_seq: head() },
      { sink: 'syslog', through_seq: head() },
    ]);
  }, 60_000);

  test('a syslog message is RFC 5424 with octet-counting framing and the entry as JSON', () => {
    const entry = {
      seq: 7,
      id: 'aud_x',
      at: Date.UTC(2026, 0, 1),
      actor_type: 'api_key',
      actor_id: 'key_1',
      actor_name: 'ci',
      action: 'resource.read value',
      target_type: 'resource',
      target_id: 'res_1',
      outcome: 'denied',
      status: 403,
      ip: '10.0.0.1',
      user_agent: 'curl/8 ☃',
      request_id: 'req_1',
      details: null,
      prev_hash: 'a'.repeat(64),
      hash: 'b'.repeat(64),
      chain: 'secryn.audit.v2',
    } satisfies ShipEntry;
    const frame = syslogFrame(entry, 'host.example');
    const space = frame.indexOf(0x20);
    const body = frame.subarray(space + 1);
    expect(Number(frame.subarray(0, space).toString())).toBe(body.length);
    const text = body.toString('utf8');
    expect(text).toStartWith(
      `<108>1 2026-01-01T00:00:00.000Z host.example secryn ${process.pid} resource.readvalue - \uFEFF`,
    );
    expect(JSON.parse(text.slice(text.indexOf('\uFEFF') + 1))).toEqual(entry);
  });
});
