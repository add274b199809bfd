/**
 * The data directory on a small file system (a tmpfs the test mounts; skipped where mounting is
 * not permitted): a flood without a key no longer fills it, and authenticated requests keep
 * being served; when something else fills it, health answers 503 with `failing` naming `disk_full`, the
 * log says why once, and after space is freed writes and health recover without a restart.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import {
  closeSync,
  mkdtempSync,
  openSync,
  rmdirSync,
  rmSync,
  statfsSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInstance, type Instance } from '../src/instance.ts';
import { call, memoryLogger, testConfig } from './harness.ts';
import { appOf, insertAdminKey } from './app-harness.ts';

const SIZE = '4m';
const mountPoint = mkdtempSync(join(tmpdir(), 'secryn-small-fs-'));
const mounted = Bun.spawnSync(['mount', '-t', 'tmpfs', '-o', `size=${SIZE}`, 'tmpfs', mountPoint], {
  stderr: 'pipe',
});
const canMount = mounted.exitCode === 0;
if (!canMount) {
  console.warn(
    `skipping the small-file-system tests: cannot mount a tmpfs here (${mounted.stderr.toString().trim()})`,
  );
}

const free = () => {
  const stats = statfsSync(mountPoint);
  return stats.bavail * stats.bsize;
};

describe.skipIf(!canMount)(`data directory on a ${SIZE} file system`, () => {
  const logger = memoryLogger('json', 'info');
  let instance: Instance;
  let app: ReturnType<typeof appOf>;
  let auth: Record<string, string>;
  const filler = join(mountPoint, 'filler');

  beforeAll(() => {
    instance = createInstance(testConfig(mountPoint, { server: { trust_proxy: true } }), logger);
    app = appOf(instance);
    const token = insertAdminKey(instance);
    auth = { authorization: `Bearer ${token}` };
  });
  afterAll(async () => {
    await instance?.close();
    if (canMount) Bun.spawnSync(['umount', mountPoint]);
    rmdirSync(mountPoint);
  });

  const logged = (text: string) => logger.lines.filter((line) => line.includes(text)).length;
  const health = async () => {
    const response = await call(app, 'GET', '/v1/health');
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  test('a flood without a key does not fill it; authenticated requests keep being served', async () => {
    const freeBefore = free();
    // Old behaviour: ~1 KB per request with these headers, so 20,000 would need ~20 MB.
    for (let start = 0; start < 20_000; start += 200) {
      const batch = [];
      for (let i = start; i < start + 200; i++) {
        batch.push(
          call(app, 'GET', '/v1/projects', {
            headers: {
              'x-forwarded-for': `198.51.100.${i % 4}`,
              'user-agent': `flood-${i} ${'u'.repeat(500)}`,
              'x-request-id': `flood-${String(i).padStart(8, '0')}-${'r'.repeat(100)}`,
            },
          }),
        );
      }
      for (const response of await Promise.all(batch))
        expect([401, 429]).toContain(response.status);
    }
    expect(freeBefore - free()).toBeLessThan(512 * 1024);
    expect((await call(app, 'GET', '/v1/projects', { headers: auth })).status).toBe(200);
    expect(await health()).toEqual({
      status: 200,
      body: expect.objectContaining({ status: 'ok' }),
    });
  }, 60_000);

  test('filled by something else: 503 naming disk_full, logged once; recovers when space returns', async () => {
    // Fill every block that is left.
    const fd = openSync(filler, 'w');
    const chunk = Buffer.alloc(64 * 1024, 1);
    try {
      for (;;) writeSync(fd, chunk);
    } catch (error) {
      expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC');
    } finally {
      closeSync(fd);
    }
    // Audited requests need the disk: sooner or later (once SQLite's WAL has no room left)
    // they fail closed with 503.
    let refused = 0;
    for (let i = 0; i < 500 && refused < 20; i++) {
      const response = await call(app, 'GET', '/v1/projects', { headers: auth });
      if (response.status === 503) refused++;
      else expect(response.status).toBe(200);
    }
    expect(refused).toBe(20);
    const unhealthy = await health();
    expect(unhealthy.status).toBe(503);
    expect(unhealthy.body).toEqual({
      status: 'unavailable',
      version: expect.any(String),
      failing: expect.arrayContaining(['disk_full']),
    });
    await Bun.sleep(1100); // past the health verdict's cache: the probe itself finds the disk full
    expect((await health()).body.failing).toContain('disk_full');
    // Said once, not per request; no per-request error lines either.
    expect(logged('database disk is full')).toBe(1);
    expect(logged('could not record the request outcome')).toBe(0);
    // Requests without a key are still answered 401/429: they do not wait for the disk.
    const anonymous = await call(app, 'GET', '/v1/projects', {
      headers: { 'x-forwarded-for': '192.0.2.1' },
    });
    expect(anonymous.status).toBe(401);

    rmSync(filler);
    expect((await call(app, 'GET', '/v1/projects', { headers: auth })).status).toBe(200);
    await Bun.sleep(1100);
    expect(await health()).toEqual({
      status: 200,
      body: expect.objectContaining({ status: 'ok' }),
    });
    expect(logged('database disk has space again')).toBe(1);
    expect(logged('database disk is full')).toBe(1);
  }, 60_000);
});
