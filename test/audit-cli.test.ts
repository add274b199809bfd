/**
 * The audit log across processes: a real `secryn serve` and real CLI commands appending to one
 * chain at the same time, `secryn audit verify` catching tampering done with raw SQL on the
 * file, `secryn audit export` and `secryn audit prune`.
 */
import { Database } from 'bun:sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { manualClock } from '../src/clock.ts';
import { appendAuditEntry, localAuditEntry } from '../src/ledger/audit-record.ts';
import { AUDIT_CHAIN_BROKEN } from '../src/cli/audit.ts';
import { entryHash, type ChainFields } from '../src/ledger/audit-chain.ts';
import { loadConfig } from '../src/config/load.ts';
import { createInstance } from '../src/instance.ts';
import {
  cliCommand,
  freePort,
  memoryLogger,
  pinnedEnv,
  runCli,
  tempDir,
  waitForHealthy,
  writeConfig,
} from './harness.ts';

const MARKER_TOKEN = 'scr_AUDITMARKERtoken0000000000000000000000000000000000000000';
const MARKER_QUERY = 'QUERY-MARKER-51aa';
const FAST_LIMITS = '[rate_limit]\nrequests_per_minute = 10000000\nburst = 1000000\n';

type Exported = {
  seq: number;
  id: string;
  at: string;
  at_ms: number;
  actor: { type: string; id: string | null; name: string | null };
  action: string;
  outcome: string;
  status: number | null;
  details?: Record<string, unknown>;
  hash: string;
  prev_hash: string;
};

const parseJsonl = (text: string) =>
  text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Exported);

/** A copy of an instance's database and master key under `dir/name`. */
function copyOf(dir: string, name: string): string {
  const copy = join(dir, name);
  mkdirSync(join(copy, 'data'), { recursive: true, mode: 0o700 });
  copyFileSync(join(dir, 'data/secryn.db'), join(copy, 'data/secryn.db'));
  copyFileSync(join(dir, 'data/master.key'), join(copy, 'data/master.key'));
  return copy;
}

describe('secryn audit (processes)', () => {
  const dir = tempDir();
  let config: string;
  let adminToken: string;
  let exported: Exported[] = [];
  let cliAppends = 0;

  beforeAll(async () => {
    config = writeConfig(dir.path, `[server]\nport = ${freePort()}\n${FAST_LIMITS}`);
    const init = await runCli(['init', '--config', config, '--json']);
    expect(init.exitCode).toBe(0);
    adminToken = (JSON.parse(init.stdout) as { admin_key: { token: string } }).admin_key.token;
  });
  afterAll(() => dir[Symbol.dispose]());

  test('the server and CLI commands append at the same time without breaking the chain', async () => {
    const { config: loaded } = loadConfig({ path: config });
    const base = `http://127.0.0.1:${loaded.server.port}`;
    const server = Bun.spawn([...cliCommand(), 'serve', '--config', config], {
      env: pinnedEnv(),
      stdout: 'pipe',
      stderr: 'pipe',
    });
    let served = 0;
    try {
      await waitForHealthy(`${base}/v1/health`);
      const auth = { authorization: `Bearer ${adminToken}` };
      const hammer = async (n: number) => {
        for (let i = 0; i < n; i++) {
          const bad = i % 10 === 0;
          const response = await fetch(`${base}/v1/api-keys${bad ? `?q=${MARKER_QUERY}` : ''}`, {
            headers: bad ? { authorization: `Bearer ${MARKER_TOKEN}` } : auth,
          });
          expect(response.status).toBe(bad ? 401 : 200);
          await response.arrayBuffer();
          served++;
        }
      };
      const cli = async (i: number) => {
        const result = await runCli([
          'keys',
          'create',
          '--config',
          config,
          '--name',
          `concurrent-${i}`,
          '--role',
          'reader',
          '--json',
        ]);
        expect(result.exitCode).toBe(0);
        cliAppends++;
      };
      await Promise.all([
        ...Array.from({ length: 8 }, () => hammer(60)),
        ...Array.from({ length: 6 }, (_, i) => cli(i)),
      ]);
    } finally {
      server.kill('SIGTERM');
      await server.exited;
    }
    expect(served).toBe(480);

    const verify = await runCli(['audit', 'verify', '--config', config, '--json']);
    expect(verify.stderr).toBe('');
    expect(verify.exitCode).toBe(0);
    const result = JSON.parse(verify.stdout) as { intact: boolean; verified: number };
    // init's admin key, 6 CLI-created keys, one entry per authenticated request, and one
    // summary of the 48 requests refused without a valid key (written on the clean stop).
    expect(result).toMatchObject({ intact: true, verified: 1 + cliAppends + served - 48 + 1 });

    const exportRun = await runCli(['audit', 'export', '--config', config]);
    expect(exportRun.exitCode).toBe(0);
    exported = parseJsonl(exportRun.stdout);
    expect(exported).toHaveLength(result.verified);
    expect(exported.filter((e) => e.actor.type === 'local_user')).toHaveLength(7);
    expect(exported.filter((e) => e.action === 'api_key.list')).toHaveLength(432);
    const denied = exported.filter((e) => e.outcome === 'denied');
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({
      action: 'request.rejected_summary',
      details: { count: 48, by_status: { '401': 48 } },
    });
    expect(exported.map((e) => e.seq)).toEqual(exported.map((_, i) => i + 1));
  });

  test('no token or query string in the audit table or the export', async () => {
    const csv = await runCli(['audit', 'export', '--config', config, '--format', 'csv']);
    expect(csv.exitCode).toBe(0);
    const sqlite = new Database(join(dir.path, 'data/secryn.db'), { readonly: true });
    const table = JSON.stringify(sqlite.query('SELECT * FROM audit_log').all());
    sqlite.close();
    for (const text of [csv.stdout, JSON.stringify(exported), table]) {
      expect(text.length).toBeGreaterThan(1000);
      for (const marker of [MARKER_TOKEN, MARKER_QUERY, adminToken, 'AUDITMARKER', 'scr_'])
        expect(text).not.toContain(marker);
    }
  });

  test('export: --since/--until select by time, csv has a header and one line per entry', async () => {
    const middle = exported[Math.floor(exported.length / 2)]!;
    const since = new Date(middle.at_ms).toISOString();
    const later = parseJsonl(
      (await runCli(['audit', 'export', '--config', config, '--since', since])).stdout,
    );
    expect(later.length).toBeGreaterThan(0);
    expect(later.every((e) => e.at_ms >= middle.at_ms)).toBe(true);
    const earlier = parseJsonl(
      (await runCli(['audit', 'export', '--config', config, '--until', since])).stdout,
    );
    expect(earlier.length + later.length).toBe(exported.length);
    const none = await runCli([
      'audit',
      'export',
      '--config',
      config,
      '--since',
      '1d',
      '--until',
      '2000-01-01',
    ]);
    expect(none).toMatchObject({ exitCode: 0, stdout: '' });

    const csv = (await runCli(['audit', 'export', '--config', config, '--format', 'csv'])).stdout;
    const lines = csv.trimEnd().split('\n');
    expect(lines[0]).toBe(
      'seq,id,at,at_ms,actor_type,actor_id,actor_name,action,target_type,target_id,outcome,status,ip,user_agent,request_id,prev_hash,hash',
    );
    expect(lines).toHaveLength(exported.length + 1);

    const bad = await runCli(['audit', 'export', '--config', config, '--format', 'xml']);
    expect(bad.exitCode).toBe(2);
    const badTime = await runCli(['audit', 'export', '--config', config, '--since', 'yesterday']);
    expect(badTime.exitCode).toBe(2);
  });

  describe('verify names the first tampered entry', () => {
    /** A copy of the instance's database with its own config, tampered with raw SQL. */
    const tampered = async (tamper: (db: Database) => void) => {
      const copy = copyOf(dir.path, `copy-${Math.random().toString(36).slice(2)}`);
      const db = new Database(join(copy, 'data/secryn.db'));
      tamper(db);
      db.close();
      return runCli(['audit', 'verify', '--config', writeConfig(copy)]);
    };
    const at = (seq: number) => exported[seq - 1]!;

    test('intact: exit 0 with the head', async () => {
      const result = await tampered(() => {});
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toContain(`head #${exported.length} ${exported.at(-1)!.hash}`);
    });

    test('changed', async () => {
      const result = await tampered((db) =>
        db.run("UPDATE audit_log SET actor_id = 'key_someone_else' WHERE seq = 20"),
      );
      expect(result.exitCode).toBe(AUDIT_CHAIN_BROKEN);
      expect(result.stderr).toContain('(changed)');
      expect(result.stderr).toContain(at(20).id);
    });

    test('removed', async () => {
      const result = await tampered((db) => db.run('DELETE FROM audit_log WHERE seq = 30'));
      expect(result.exitCode).toBe(AUDIT_CHAIN_BROKEN);
      expect(result.stderr).toContain('(removed)');
      expect(result.stderr).toContain('#30');
    });

    test('inserted', async () => {
      const result = await tampered((db) => {
        db.run('UPDATE audit_log SET seq = seq + 1000000 WHERE seq >= 40');
        db.run('UPDATE audit_log SET seq = seq - 999999 WHERE seq >= 1000000');
        db.run(
          `INSERT INTO audit_log SELECT 40, 'aud_01jinserted000000000000000', at, actor_type,
             actor_id, actor_name, 'api_key.revoke', target_type, target_id, outcome, status, ip,
             user_agent, request_id, hash, hash, details FROM audit_log WHERE seq = 39`,
        );
      });
      expect(result.exitCode).toBe(AUDIT_CHAIN_BROKEN);
      expect(result.stderr).toContain('(inserted)');
      expect(result.stderr).toContain('aud_01jinserted000000000000000');
    });

    test('reordered', async () => {
      const result = await tampered((db) => {
        db.run('UPDATE audit_log SET seq = -1 WHERE seq = 50');
        db.run('UPDATE audit_log SET seq = 50 WHERE seq = 51');
        db.run('UPDATE audit_log SET seq = 51 WHERE seq = -1');
      });
      expect(result.exitCode).toBe(AUDIT_CHAIN_BROKEN);
      expect(result.stderr).toContain('(reordered)');
      expect(result.stderr).toContain(at(51).id);
    });

    test('changed and the chain re-hashed the unkeyed way: caught (the chain is keyed)', async () => {
      const result = await tampered((db) => {
        db.run("UPDATE audit_log SET actor_id = 'key_someone_else' WHERE seq = 20");
        const rows = db
          .query<ChainFields & { hash: string }, []>(
            `SELECT seq, id, at, actor_type AS actorType, actor_id AS actorId,
               actor_name AS actorName, action, target_type AS targetType, target_id AS targetId,
               outcome, status, ip, user_agent AS userAgent, request_id AS requestId,
               prev_hash AS prevHash, hash FROM audit_log WHERE seq >= 19 ORDER BY seq`,
          )
          .all();
        let prev = rows[0]!.hash;
        for (const row of rows.slice(1)) {
          const hash = entryHash({ ...row, prevHash: prev });
          db.query('UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?').run(
            prev,
            hash,
            row.seq,
          );
          prev = hash;
        }
      });
      expect(result.exitCode).toBe(AUDIT_CHAIN_BROKEN);
      expect(result.stderr).toContain(at(20).id);
    });

    test('verify needs the master key: without it, it refuses to vouch for the chain', async () => {
      const copy = copyOf(dir.path, 'copy-nokey');
      rmSync(join(copy, 'data/master.key'));
      const result = await runCli(['audit', 'verify', '--config', writeConfig(copy)]);
      expect(result.exitCode).toBe(10);
    });

    test('cut from the end: caught against an anchor', async () => {
      const anchor = exported.at(-1)!.hash;
      const copy = copyOf(dir.path, 'copy-anchor');
      const cfg = writeConfig(copy);
      expect(
        (await runCli(['audit', 'verify', '--config', cfg, '--anchor', anchor])).exitCode,
      ).toBe(0);
      const db = new Database(join(copy, 'data/secryn.db'));
      db.run('DELETE FROM audit_log WHERE seq > 100');
      db.close();
      expect((await runCli(['audit', 'verify', '--config', cfg])).exitCode).toBe(0);
      const cut = await runCli(['audit', 'verify', '--config', cfg, '--anchor', anchor]);
      expect(cut.exitCode).toBe(AUDIT_CHAIN_BROKEN);
      expect(cut.stderr).toContain('(truncated)');
      // Something that is not a hash is a usage error, not a report of removed entries.
      for (const bad of ['deadbeef', anchor.toUpperCase(), `${anchor}0`]) {
        const refused = await runCli(['audit', 'verify', '--config', cfg, '--anchor', bad]);
        expect(refused.exitCode).toBe(2);
        expect(refused.stderr.trim()).toBe(
          'secryn: --anchor must be an entry hash: 64 hex characters, as `audit verify` prints it',
        );
      }
    });
  });

  test('verify without an instance exits 3, not the tampering code', async () => {
    using empty = tempDir();
    const result = await runCli(['audit', 'verify', '--config', writeConfig(empty.path)]);
    expect(result.exitCode).toBe(3);
  });
});

describe('secryn audit prune', () => {
  test('prunes old entries, records itself, and verify still passes', async () => {
    using dir = tempDir();
    const config = writeConfig(dir.path);
    const clock = manualClock(Date.now() - 99.5 * 86_400_000);
    const instance = createInstance(
      loadConfig({ path: config }).config,
      memoryLogger(),
      undefined,
      {
        clock,
      },
    );
    instance.sqlite.transaction(() => {
      for (let i = 0; i < 50; i++) {
        appendAuditEntry(instance.db, clock, localAuditEntry('thing.read', null));
        clock.advance(86_400_000);
      }
    })();
    await instance.close();
    // Entries span 99.5 to 50.5 days ago: keep 60 days.
    const prune = await runCli(['audit', 'prune', '--config', config, '--days', '60', '--json']);
    expect(prune.exitCode).toBe(0);
    expect(JSON.parse(prune.stdout)).toMatchObject({ retention_days: 60, pruned: 40 });
    const verify = await runCli(['audit', 'verify', '--config', config]);
    expect(verify.exitCode).toBe(0);
    expect(verify.stdout).toContain('from checkpoint #40');
    const entries = parseJsonl((await runCli(['audit', 'export', '--config', config])).stdout);
    expect(entries).toHaveLength(11);
    expect(entries.at(-1)).toMatchObject({ action: 'audit.prune', actor: { type: 'local_user' } });

    // Nothing left to prune: still recorded (who ran it, when), chain still intact.
    const again = await runCli(['audit', 'prune', '--config', config, '--days', '60', '--json']);
    expect(JSON.parse(again.stdout)).toMatchObject({ pruned: 0 });
    expect((await runCli(['audit', 'verify', '--config', config])).exitCode).toBe(0);
  });
});
