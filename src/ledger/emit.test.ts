import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manualClock } from '../clock.ts';
import { validateConfig } from '../config/load.ts';
import { createInstance, type Instance } from '../instance.ts';
import { createLogger } from '../log/logger.ts';
import { projects } from '../db/schema/projects.ts';
import { webhooks } from '../db/schema/webhooks.ts';
import { sealWebhookUrl } from '../webhooks/service.ts';
import { emitEvent, stripSecrets } from './emit.ts';

describe('stripSecrets', () => {
  test('drops secret-bearing keys at any depth, case-insensitively, keeping the rest', () => {
    expect(
      stripSecrets({
        id: 'res_1',
        VALUE: 'x',
        tags: ['value', 'token'],
        meta: {
          Token: 'x',
          inner: [{ private_key: 'x', secret: 'x', keep: true }],
          public_key: 'pem',
        },
      }),
    ).toEqual({
      id: 'res_1',
      tags: ['value', 'token'],
      meta: { inner: [{ keep: true }], public_key: 'pem' },
    });
  });

  test('does not modify its input', () => {
    const input = { value: 'x', nested: { token: 'y' } };
    stripSecrets(input);
    expect(input).toEqual({ value: 'x', nested: { token: 'y' } });
  });
});

describe('emitEvent', () => {
  const dir = mkdtempSync(join(tmpdir(), 'secryn-'));
  const clock = manualClock(Date.UTC(2030, 0, 1));
  let instance: Instance;
  const hooks: Record<string, string> = {};

  beforeAll(() => {
    const config = validateConfig({
      storage: { path: join(dir, 'secryn.db') },
      encryption: { master_key_file: join(dir, 'master.key') },
    });
    const logger = createLogger({ level: 'silent', format: 'json', color: false, write: () => {} });
    instance = createInstance(config, logger, undefined, { clock });
    for (const id of ['prj_a', 'prj_b']) {
      instance.db
        .insert(projects)
        .values({ id, name: id, createdAt: 0, updatedAt: 0, createdBy: 't' })
        .run();
    }
    const add = (name: string, events: string[], projectId: string | null, enabled = true) => {
      const id = `whk_${name}`;
      instance.db
        .insert(webhooks)
        .values({
          id,
          url: sealWebhookUrl(instance.keyring, { id, projectId }, 'https://93.184.216.34/'),
          events,
          projectId,
          enabled,
          createdAt: 0,
          updatedAt: 0,
          createdBy: 't',
        })
        .run();
      hooks[name] = id;
    };
    add('all', ['*'], null);
    add('typed', ['vault.created'], null);
    add('projectA', ['*'], 'prj_a');
    add('off', ['*'], null, false);
  });
  afterAll(async () => {
    await instance.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const targets = async (type: string, projectId: string | null, onlyWebhookId?: string) => {
    const id = await instance.writes.run(() =>
      emitEvent(
        instance.db,
        clock,
        { type, projectId, object: {} },
        onlyWebhookId ? { onlyWebhookId } : {},
      ),
    );
    return (
      instance.sqlite
        .query(
          'SELECT webhook_id AS w FROM webhook_deliveries WHERE event_id = ? ORDER BY webhook_id',
        )
        .all(id) as { w: string }[]
    ).map((row) => row.w);
  };

  test('one pending delivery per enabled webhook whose types and project match', async () => {
    expect(await targets('vault.created', 'prj_a')).toEqual(
      [hooks.all!, hooks.projectA!, hooks.typed!].sort(),
    );
    expect(await targets('vault.created', 'prj_b')).toEqual([hooks.all!, hooks.typed!].sort());
    expect(await targets('resource.created', null)).toEqual([hooks.all!]);
    expect(await targets('ping', null, hooks.off)).toEqual([hooks.off!]);
  });

  test('the stored payload is the documented shape, timed by the injected clock', async () => {
    const id = await instance.writes.run(() =>
      emitEvent(instance.db, clock, {
        type: 'project.updated',
        projectId: 'prj_a',
        object: { id: 'prj_a', value: 'x' },
      }),
    );
    const row = instance.sqlite
      .query('SELECT payload, created_at AS at FROM events WHERE id = ?')
      .get(id) as {
      payload: string;
      at: number;
    };
    expect(JSON.parse(row.payload)).toEqual({
      id,
      type: 'project.updated',
      created_at: '2030-01-01T00:00:00Z',
      data: { object: { id: 'prj_a' } },
    });
    expect(row.at).toBe(clock.now());
    expect(id).toMatch(/^evt_[0-7][0-9a-hjkmnp-tv-z]{25}$/);
  });
});
