/**
 * The change pipeline: a change, its event, its idempotent response and its audit entry commit
 * or roll back together; a change started inside an open transaction joins it.
 */
import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manualClock } from '../clock.ts';
import { validateConfig } from '../config/load.ts';
import { ConflictError } from '../errors.ts';
import { requestMeta } from '../http/request-meta.ts';
import { createInstance, type Instance } from '../instance.ts';
import { createLogger } from '../log/logger.ts';
import { commitChange, commitLocalChange, commitSystemChange } from './index.ts';

describe('the change pipeline', () => {
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
      { clock },
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
  const events = () =>
    instance.sqlite.query<{ type: string }, []>('SELECT type FROM events ORDER BY seq').all();
  const insert = (what: string) =>
    instance.sqlite.run('INSERT INTO changes (what) VALUES (?)', [what]);
  /** A request as the access layer leaves it: an actor and an action. */
  const apiRequest = () => {
    const request = new Request('http://localhost/v1/things', { method: 'POST' });
    const meta = requestMeta(request);
    meta.actor = { type: 'api_key', id: 'key_1', name: 'k' };
    meta.action = 'thing.create';
    return request;
  };

  test('commitLocalChange commits the change and a local_user entry together', () => {
    const result = commitLocalChange(instance, 'thing.create', { type: 'thing', id: 't1' }, () => {
      insert('t1');
      return 'done';
    });
    expect(result).toBe('done');
    expect(changes()).toBe(1);
    expect(rows()).toEqual([
      { action: 'thing.create', outcome: 'success', actor_type: 'local_user' },
    ]);
  });

  test('commitLocalChange rolls a failed change back and records the failure', () => {
    expect(() =>
      commitLocalChange(instance, 'thing.revoke', { type: 'thing', id: 't9' }, () => {
        insert('half');
        throw new ConflictError('already revoked');
      }),
    ).toThrow(ConflictError);
    expect(changes()).toBe(0);
    expect(rows()).toEqual([
      { action: 'thing.revoke', outcome: 'error', actor_type: 'local_user' },
    ]);
  });

  test('commitChange: the change, its event and its entry commit together; the request is audited', async () => {
    const request = apiRequest();
    const body = await commitChange(instance, request, 201, () => {
      insert('a');
      return { body: { id: 'a' }, event: { type: 'ping', projectId: null, object: {} } };
    });
    expect(body).toEqual({ id: 'a' });
    expect(changes()).toBe(1);
    expect(events()).toEqual([{ type: 'ping' }]);
    expect(rows()).toEqual([{ action: 'thing.create', outcome: 'success', actor_type: 'api_key' }]);
    expect(requestMeta(request).audited).toBe(true);
    await expect(commitChange(instance, request, 201, () => ({ body: null }))).rejects.toThrow(
      /already been audited/,
    );
  });

  test('commitChange: a throw rolls back the change, its event and its entry', async () => {
    const request = apiRequest();
    await expect(
      commitChange(instance, request, 201, (tx) => {
        insert('a');
        tx.emit({ type: 'ping', projectId: null, object: {} });
        throw new ConflictError('no');
      }),
    ).rejects.toBeInstanceOf(ConflictError);
    expect(changes()).toBe(0);
    expect(events()).toEqual([]);
    expect(rows()).toEqual([]);
    expect(requestMeta(request).audited).toBeUndefined();
  });

  test('a change made inside another joins its transaction: both commit or neither', async () => {
    await commitSystemChange(instance, (tx) => {
      insert('outer');
      commitLocalChange(instance, 'thing.inner', null, () => insert('inner'));
      tx.emit({ type: 'ping', projectId: null, object: {} });
    });
    expect(changes()).toBe(2);
    expect(rows()).toEqual([
      { action: 'thing.inner', outcome: 'success', actor_type: 'local_user' },
    ]);

    const failed = commitSystemChange(instance, () => {
      insert('outer-2');
      // The inner change fails: it throws at once, and the outer one rolls back with it.
      void commitChange(instance, apiRequest(), 200, () => {
        insert('inner-2');
        throw new ConflictError('inner failed');
      });
    });
    await expect(failed).rejects.toBeInstanceOf(ConflictError);
    expect(changes()).toBe(2);
    expect(rows()).toHaveLength(1);
    expect(events()).toEqual([{ type: 'ping' }]);
  });
});

describe('the one way to write', () => {
  test('no module outside src/changes/ starts a change on the write engine itself', async () => {
    const offenders: string[] = [];
    for await (const file of new Bun.Glob('src/**/*.ts').scan('.')) {
      if (file.endsWith('.test.ts') || file.startsWith('src/changes/')) continue;
      const text = await Bun.file(file).text();
      // Comments may mention it; code may not.
      const code = text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
      if (/\bwrites\s*\.\s*run\s*\(/.test(code)) offenders.push(file);
    }
    expect(offenders).toEqual([]);
  });
});
