/**
 * SIGHUP to a real `secryn serve`: a good file changes what can change live (rate limits, the
 * log format, the metrics listener) and names what needs a restart; a bad file changes nothing
 * and every problem is logged.
 */
import { expect, test } from 'bun:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliCommand, freePort, pinnedEnv, runCli, tempDir, waitForHealthy } from './harness.ts';
import { promtool } from './metrics-helpers.ts';

test('SIGHUP applies a good file live and refuses a bad one without changing anything', async () => {
  using dir = tempDir();
  const port = freePort();
  const metricsPort = freePort();
  // Anonymous requests are limited per address: burst 2, then 429 (one token a minute).
  const toml = (o: { burst: number | string; port?: number; log?: string; extra?: string }) =>
    [
      `[server]\nport = ${o.port ?? port}`,
      `[storage]\npath = "${join(dir.path, 'data/secryn.db')}"`,
      `[encryption]\nmaster_key_file = "${join(dir.path, 'data/master.key')}"`,
      `[log]\n${o.log ?? 'level = "warn"'}`,
      `[rate_limit]\nrequests_per_minute = 1\nburst = ${o.burst}`,
      o.extra ?? '',
    ].join('\n');
  const config = join(dir.path, 'secryn.toml');
  writeFileSync(config, toml({ burst: 2 }));
  expect((await runCli(['init', '--config', config])).exitCode).toBe(0);
  const proc = Bun.spawn([...cliCommand(), 'serve', '--config', config], {
    env: pinnedEnv(),
    stdout: 'ignore',
    stderr: 'pipe',
    stdin: 'ignore',
  });
  let stderr = '';
  void (async () => {
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>)
      stderr += new TextDecoder().decode(chunk);
  })();
  const url = `http://127.0.0.1:${port}`;
  const anonymous = async () => (await fetch(`${url}/v1/projects`)).status;
  const logged = async (text: string, from: number) => {
    const deadline = Date.now() + 10_000;
    while (!stderr.slice(from).includes(text)) {
      if (Date.now() > deadline) throw new Error(`not logged: ${text}\n${stderr}`);
      await Bun.sleep(25);
    }
  };
  try {
    await waitForHealthy(`${url}/v1/health`, 15_000);
    expect([await anonymous(), await anonymous(), await anonymous()]).toEqual([401, 401, 429]);

    // A bad file: every problem logged, nothing changes.
    writeFileSync(config, toml({ burst: '0\nbogus = 1', log: 'level = "warn"\nformat = "yaml"' }));
    let mark = stderr.length;
    proc.kill('SIGHUP');
    await logged('configuration not reloaded', mark);
    const problems = stderr.slice(mark);
    expect(problems).toContain('rate_limit.burst');
    expect(problems).toContain('rate_limit.bogus: unknown key');
    expect(problems).toContain('log.format');
    expect(await anonymous()).toBe(429);
    expect(await fetch(`http://127.0.0.1:${metricsPort}/metrics`).catch(() => null)).toBeNull();

    // A good file: a wider burst, JSON logs, the metrics listener on, and a port change that
    // needs a restart.
    writeFileSync(
      config,
      toml({
        burst: 1000,
        port: port + 1,
        log: 'level = "info"\nformat = "json"',
        extra: `[metrics]\nlisten = "127.0.0.1:${metricsPort}"`,
      }),
    );
    mark = stderr.length;
    proc.kill('SIGHUP');
    await logged('"msg":"configuration reloaded"', mark);
    const reloadLog = stderr.slice(mark);
    expect(reloadLog).toContain('rate_limit.burst');
    expect(reloadLog).toMatch(/only after a restart.*server\.port/);
    expect(await anonymous()).toBe(401); // the wider burst is in force, on the same port
    const scraped = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(scraped.status).toBe(200);
    const text = await scraped.text();
    expect(text).toContain('secryn_rate_limit_refusals_total{limiter="client"} 2');
    await promtool(text);
    // Only /metrics there.
    expect((await fetch(`http://127.0.0.1:${metricsPort}/v1/health`)).status).toBe(404);

    proc.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
  } finally {
    proc.kill(9);
  }
});

test('metrics turned on by SIGHUP count the requests that follow', async () => {
  using dir = tempDir();
  const port = freePort();
  const metricsPort = freePort();
  // Log level warn: no access log either, so nothing else hooks the responses at start.
  const toml = (metrics: string) =>
    [
      `[server]\nport = ${port}`,
      `[storage]\npath = "${join(dir.path, 'data/secryn.db')}"`,
      `[encryption]\nmaster_key_file = "${join(dir.path, 'data/master.key')}"`,
      `[log]\nlevel = "warn"`,
      `[metrics]\n${metrics}`,
    ].join('\n');
  const config = join(dir.path, 'secryn.toml');
  writeFileSync(config, toml('enabled = false'));
  expect((await runCli(['init', '--config', config])).exitCode).toBe(0);
  const proc = Bun.spawn([...cliCommand(), 'serve', '--config', config], {
    env: pinnedEnv(),
    stdout: 'ignore',
    stderr: 'ignore',
    stdin: 'ignore',
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHealthy(`${url}/v1/health`, 15_000);
    writeFileSync(config, toml(`enabled = true\nlisten = "127.0.0.1:${metricsPort}"`));
    proc.kill('SIGHUP');
    let scraped: Response | null = null;
    for (let i = 0; i < 200 && !scraped; i++) {
      scraped = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).catch(() => null);
      if (!scraped) await Bun.sleep(25);
    }
    expect(scraped?.status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await fetch(`${url}/v1/projects`)).status).toBe(401);
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(text).toContain(
      'secryn_http_requests_total{method="GET",route="/v1/projects",status="401"} 3',
    );
    proc.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
  } finally {
    proc.kill(9);
  }
});
