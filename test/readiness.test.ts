/**
 * GET /v1/health/ready answers 503 naming each failing cause — the database not writable, the
 * audit log unable to commit, a stored data key the keyring cannot open, draining after SIGTERM —
 * and 200 again once the cause is gone; GET /v1/health (liveness) keeps its contract.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { buildFeatures } from '../src/features.ts';
import { createInstance } from '../src/instance.ts';
import { buildApp } from '../src/server.ts';
import {
  call,
  cliCommand,
  freePort,
  memoryLogger,
  pinnedEnv,
  runCli,
  tempDir,
  testConfig,
  waitForHealthy,
  writeConfig,
} from './harness.ts';

/** Longer than the one-second cache of every probe verdict. */
const PAST_CACHE_MS = 1100;

describe('readiness, in process', () => {
  const dir = tempDir();
  const instance = createInstance(testConfig(dir.path), memoryLogger());
  const features = buildFeatures(instance);
  const app = buildApp(instance, {
    features: features.features,
    recordOutcome: features.recordOutcome,
  });
  afterAll(async () => {
    await instance.close();
    dir[Symbol.dispose]();
  });
  const get = async (path: string) => {
    const response = await call(app, 'GET', path);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const ready = () => get('/v1/health/ready');
  const healthy = async () => {
    await Bun.sleep(PAST_CACHE_MS);
    expect(await ready()).toEqual({
      status: 200,
      body: { status: 'ok', version: expect.any(String) },
    });
    expect((await get('/v1/health')).status).toBe(200);
  };

  test('ready and live on a healthy instance', healthy);

  test('database not writable: both fail, naming it; then both recover', async () => {
    instance.sqlite.run('PRAGMA query_only = ON');
    try {
      await Bun.sleep(PAST_CACHE_MS);
      const answer = await ready();
      expect(answer.status).toBe(503);
      expect(answer.body).toMatchObject({ status: 'unavailable' });
      expect(answer.body.failing).toContain('database');
      expect((await get('/v1/health')).body.failing).toContain('database');
    } finally {
      instance.sqlite.run('PRAGMA query_only = OFF');
    }
    await healthy();
  });

  test('audit log cannot commit: not ready (audit), still live; then ready again', async () => {
    instance.sqlite.run(
      `CREATE TEMP TRIGGER refuse_audit BEFORE INSERT ON audit_log
       BEGIN SELECT RAISE(ABORT, 'injected audit failure'); END`,
    );
    try {
      await Bun.sleep(PAST_CACHE_MS);
      expect(await ready()).toEqual({
        status: 503,
        body: { status: 'unavailable', version: expect.any(String), failing: ['audit'] },
      });
      // Liveness: restarting would not help, and the process serves health fine.
      expect((await get('/v1/health')).status).toBe(200);
    } finally {
      instance.sqlite.run('DROP TRIGGER refuse_audit');
    }
    await healthy();
    // The probe left no entry behind.
    const probes = instance.sqlite
      .query(`SELECT count(*) AS n FROM audit_log WHERE action = 'health.probe'`)
      .get() as { n: number };
    expect(probes.n).toBe(0);
  });

  test('a stored data key the keyring cannot open: not ready (keyring); then ready again', async () => {
    const bump = () =>
      instance.sqlite.run('UPDATE keyring_state SET generation = generation + 1 WHERE id = 1');
    const columns = instance.sqlite
      .query<{ name: string; notnull: number }, []>(`PRAGMA table_info(keyring_data_keys)`)
      .all();
    // A data key row whose wrapping no master key opens (as if its key material were lost).
    const row = instance.sqlite.query(`SELECT * FROM keyring_data_keys WHERE version = 1`).get() as
      | Record<string, unknown>
      | undefined;
    expect(row).toBeDefined();
    const values = columns.map((c) =>
      c.name === 'version'
        ? 2
        : c.name === 'wrapped_key'
          ? new Uint8Array((row!.wrapped_key as Uint8Array).length).fill(7)
          : row![c.name],
    );
    instance.sqlite
      .query(
        `INSERT INTO keyring_data_keys (${columns.map((c) => c.name).join(', ')})
         VALUES (${columns.map(() => '?').join(', ')})`,
      )
      .run(...(values as never[]));
    bump();
    try {
      instance.keyring.refresh();
      await Bun.sleep(PAST_CACHE_MS);
      const answer = await ready();
      expect(answer.status).toBe(503);
      expect(answer.body.failing).toContain('keyring');
    } finally {
      instance.sqlite.run('DELETE FROM keyring_data_keys WHERE version = 2');
      bump();
      instance.keyring.refresh();
    }
    await healthy();
  });
});

describe('readiness of a real server', () => {
  test('after SIGTERM it drains: ready answers 503 "draining" while live stays 200', async () => {
    using dir = tempDir();
    const port = freePort();
    const config = writeConfig(dir.path, `[server]\nport = ${port}\ndrain_delay_ms = 1500\n`);
    expect((await runCli(['init', '--config', config])).exitCode).toBe(0);
    const proc = Bun.spawn([...cliCommand(), 'serve', '--config', config], {
      env: pinnedEnv(),
      stdout: 'ignore',
      stderr: 'ignore',
      stdin: 'ignore',
    });
    try {
      const url = `http://127.0.0.1:${port}`;
      await waitForHealthy(`${url}/v1/health/ready`, 15_000);
      proc.kill('SIGTERM');
      await Bun.sleep(200);
      const draining = await fetch(`${url}/v1/health/ready`);
      expect(draining.status).toBe(503);
      expect(((await draining.json()) as { failing: string[] }).failing).toEqual(['draining']);
      expect((await fetch(`${url}/v1/health`)).status).toBe(200);
      expect(await proc.exited).toBe(0);
    } finally {
      proc.kill(9);
    }
  });
});
