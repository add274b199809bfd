import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manualClock } from '../clock.ts';
import { validateConfig } from '../config/load.ts';
import { createInstance, type Instance } from '../instance.ts';
import { createLogger } from '../log/logger.ts';
import { entryHash } from '../ledger/audit-chain.ts';
import { appendAuditEntry, type AuditEntryInput } from '../ledger/audit-record.ts';
import { AUDIT_ROW_COLUMNS, type AuditRow } from './rows.ts';
import { verifyChain } from './verify.ts';

const ENTRIES = 10;

function entry(i: number): AuditEntryInput {
  return {
    actor: { type: 'api_key', id: `key_${i % 3}`, name: 'ci' },
    action: 'resource.reveal',
    target: { type: 'resource', id: `res_${i}` },
    outcome: 'success',
    status: 200,
    ip: '127.0.0.1',
    userAgent: 'test',
    requestId: `req_${i}`,
  };
}

describe('verifyChain', () => {
  let dir: string;
  let instance: Instance;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'secryn-'));
    const config = validateConfig({
      storage: { path: join(dir, 'secryn.db') },
      encryption: { master_key_file: join(dir, 'master.key') },
    });
    const clock = manualClock();
    instance = createInstance(
      config,
      createLogger({ level: 'silent', format: 'json' }),
      undefined,
      {
        clock,
      },
    );
    instance.sqlite.transaction(() => {
      for (let i = 1; i <= ENTRIES; i++) {
        clock.advance(1000);
        appendAuditEntry(instance.db, clock, entry(i));
      }
    })();
  });
  afterEach(async () => {
    await instance.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const row = (seq: number) =>
    instance.sqlite
      .query<AuditRow, [number]>(`SELECT ${AUDIT_ROW_COLUMNS} FROM audit_log WHERE seq = ?`)
      .get(seq)!;
  const shiftFrom = (seq: number) => {
    instance.sqlite.run('UPDATE audit_log SET seq = seq + 1000000 WHERE seq >= ?', [seq]);
    instance.sqlite.run('UPDATE audit_log SET seq = seq - 999999 WHERE seq >= 1000000');
  };
  const insertRow = (fields: AuditRow) =>
    instance.sqlite
      .query<unknown, [AuditRow]>(
        `INSERT INTO audit_log (seq, id, at, actor_type, actor_id, actor_name, action, target_type,
         target_id, outcome, status, ip, user_agent, request_id, prev_hash, hash)
       VALUES ($seq, $id, $at, $actorType, $actorId, $actorName, $action, $targetType, $targetId,
         $outcome, $status, $ip, $userAgent, $requestId, $prevHash, $hash)`,
      )
      .run(fields);

  test('an untouched chain is intact, head is the last entry', () => {
    const result = verifyChain(instance.sqlite);
    expect(result).toMatchObject({ intact: true, verified: ENTRIES });
    expect(result.head).toEqual({ seq: ENTRIES, id: row(ENTRIES).id, hash: row(ENTRIES).hash });
    expect(row(1).prevHash).toBe('0'.repeat(64));
  });

  test('an empty log is intact', () => {
    instance.sqlite.run('DELETE FROM audit_log');
    expect(verifyChain(instance.sqlite)).toMatchObject({ intact: true, verified: 0 });
  });

  test('changed: a field edited in place', () => {
    const victim = row(5);
    instance.sqlite.run("UPDATE audit_log SET outcome = 'denied' WHERE seq = 5");
    expect(verifyChain(instance.sqlite).problem).toMatchObject({
      kind: 'changed',
      seq: 5,
      id: victim.id,
    });
  });

  test('changed: a field edited and the hash recomputed', () => {
    const victim = row(4);
    const forged = { ...victim, targetId: 'res_other' };
    forged.hash = entryHash(forged);
    instance.sqlite.run('UPDATE audit_log SET target_id = ?, hash = ? WHERE seq = 4', [
      forged.targetId,
      forged.hash,
    ]);
    expect(verifyChain(instance.sqlite).problem).toMatchObject({
      kind: 'changed',
      seq: 4,
      id: victim.id,
    });
  });

  test('removed: an entry deleted from the middle, the start or several at once', () => {
    const removed = row(6);
    instance.sqlite.run('DELETE FROM audit_log WHERE seq = 6');
    const problem = verifyChain(instance.sqlite).problem!;
    expect(problem).toMatchObject({ kind: 'removed', seq: 6, id: null });
    expect(problem.message).toContain('#6');
    expect(problem.message).toContain(row(7).id);
    expect(removed.id).not.toBe(row(7).id);

    instance.sqlite.run('DELETE FROM audit_log WHERE seq <= 2');
    expect(verifyChain(instance.sqlite).problem).toMatchObject({ kind: 'removed', seq: 1 });
  });

  test('removed: an entry deleted and the later ones renumbered to close the gap', () => {
    instance.sqlite.run('DELETE FROM audit_log WHERE seq = 6');
    instance.sqlite.run('UPDATE audit_log SET seq = seq - 1 WHERE seq > 6');
    const after = row(6);
    expect(verifyChain(instance.sqlite).problem).toMatchObject({
      kind: 'removed',
      seq: 6,
      id: after.id,
    });
  });

  test('inserted: a made-up entry (bogus hash) pushed into the middle', () => {
    shiftFrom(5);
    const fake = { ...row(4), seq: 5, id: 'aud_01jfake0000000000000000000', hash: 'f'.repeat(64) };
    insertRow(fake);
    expect(verifyChain(instance.sqlite).problem).toMatchObject({
      kind: 'inserted',
      seq: 5,
      id: fake.id,
    });
  });

  test('inserted: a well-forged entry (right hash and link) pushed into the middle', () => {
    shiftFrom(5);
    const fake = {
      ...row(4),
      seq: 5,
      id: 'aud_01jfake0000000000000000001',
      action: 'resource.update',
      prevHash: row(4).hash,
    };
    fake.hash = entryHash(fake);
    insertRow(fake);
    expect(verifyChain(instance.sqlite).problem).toMatchObject({
      kind: 'inserted',
      seq: 5,
      id: fake.id,
    });
  });

  test('reordered: two neighbours swapped, or two far apart', () => {
    const swap = (a: number, b: number) => {
      instance.sqlite.run('UPDATE audit_log SET seq = -1 WHERE seq = ?', [a]);
      instance.sqlite.run('UPDATE audit_log SET seq = ? WHERE seq = ?', [a, b]);
      instance.sqlite.run('UPDATE audit_log SET seq = ? WHERE seq = -1', [b]);
    };
    const sixth = row(6);
    swap(5, 6);
    expect(verifyChain(instance.sqlite).problem).toMatchObject({
      kind: 'reordered',
      seq: 5,
      id: sixth.id,
    });
    swap(5, 6);
    expect(verifyChain(instance.sqlite).intact).toBe(true);
    const eighth = row(8);
    swap(3, 8);
    expect(verifyChain(instance.sqlite).problem).toMatchObject({
      kind: 'reordered',
      seq: 3,
      id: eighth.id,
    });
  });

  test('truncated: entries cut from the end are caught only against an anchor', () => {
    const anchor = row(ENTRIES).hash;
    expect(verifyChain(instance.sqlite, { anchor }).intact).toBe(true);
    instance.sqlite.run('DELETE FROM audit_log WHERE seq > 7');
    expect(verifyChain(instance.sqlite).intact).toBe(true);
    expect(verifyChain(instance.sqlite, { anchor }).problem).toMatchObject({
      kind: 'truncated',
      seq: 7,
    });
  });

  test('a checkpoint that no prune entry recorded is refused', () => {
    const third = row(3);
    instance.sqlite.run('DELETE FROM audit_log WHERE seq <= 3');
    instance.sqlite.run(
      'INSERT INTO audit_checkpoint (id, through_seq, through_hash, pruned_at, pruned_total) VALUES (1, 3, ?, 0, 3)',
      [third.hash],
    );
    expect(verifyChain(instance.sqlite).problem).toMatchObject({ kind: 'checkpoint', seq: 3 });
  });
});
