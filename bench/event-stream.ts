/**
 * `GET /v1/events/stream`: commit → stream client latency (p50/p99) with N open streams, and
 * the server's memory per open stream (RSS delta / streams). The server runs in a child process
 * (this file with `--server`), so the clients' memory is not counted. Loopback only, bounded.
 * Usage: bun bench/event-stream.ts [--streams=100] [--updates=50]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildFeatures } from '../src/features.ts';
import { createInstance } from '../src/instance.ts';
import { insertApiKey, newApiKeyId } from '../src/keys/service.ts';
import { startServer } from '../src/server.ts';
import { memoryLogger, tempDir, testConfig } from '../test/harness.ts';

const arg = (name: string, fallback: number) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);

if (process.argv.includes('--server')) {
  const dir = process.argv[process.argv.indexOf('--server') + 1]!;
  const instance = createInstance(
    testConfig(dir, {
      server: { port: 0 },
      rate_limit: { burst: 10_000_000, requests_per_minute: 10_000_000 },
      events: { max_streams_per_key: 10_000, max_streams: 100_000 },
    }),
    memoryLogger('json', 'warn'),
  );
  const features = buildFeatures(instance);
  const running = startServer(instance, { ...features, port: 0 });
  await features.start();
  const { token } = insertApiKey(
    instance.db,
    newApiKeyId(),
    { name: 'bench', role: 'admin', projectIds: [], vaultIds: [], scopes: null, expiresAt: null },
    'bench',
    Date.now(),
  );
  writeFileSync(join(dir, 'ready.json'), JSON.stringify({ url: String(running.url), token }));
  await new Promise(() => {});
}

const streams = arg('streams', 100);
const updates = arg('updates', 50);
using dir = tempDir('secryn-bench-stream-');
const child = Bun.spawn([process.execPath, import.meta.path, '--server', dir.path], {
  stdout: 'inherit',
  stderr: 'inherit',
});
let ready: { url: string; token: string } | undefined;
for (let i = 0; i < 200 && !ready; i++) {
  await Bun.sleep(50);
  try {
    ready = JSON.parse(readFileSync(join(dir.path, 'ready.json'), 'utf8'));
  } catch {
    // not yet
  }
}
if (!ready) throw new Error('server did not start');
const { url, token } = ready;
const rss = () =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) * 1024;
const api = async (method: string, path: string, body?: unknown) =>
  (await fetch(new URL(path, url), {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  }).then((r) => r.json())) as any;

const project = await api('POST', '/v1/projects', { name: 'bench' });
const vault = await api('POST', '/v1/vaults', { project_id: project.id, name: 'bench' });
const secret = await api('POST', '/v1/resources', {
  type: 'secret',
  vault_id: vault.id,
  name: 'S',
  value: 'v0',
});
Bun.gc(true);
await Bun.sleep(500);
const rssBefore = rss();

/** Arrival times of each version number, per client. */
const arrivals: Map<number, number>[] = [];
const aborts: AbortController[] = [];
await Promise.all(
  Array.from({ length: streams }, async () => {
    const abort = new AbortController();
    aborts.push(abort);
    const seen = new Map<number, number>();
    arrivals.push(seen);
    const response = await fetch(`${url}v1/events/stream?type=resource.updated`, {
      headers: { authorization: `Bearer ${token}` },
      signal: abort.signal,
    });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    void (async () => {
      let buffer = '';
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          const at = performance.now();
          buffer += decoder.decode(value, { stream: true });
          for (const match of buffer.matchAll(/"version":(\d+)/g)) seen.set(Number(match[1]), at);
          buffer = buffer.slice(buffer.lastIndexOf('\n\n') + 2);
        }
      } catch {
        // aborted
      }
    })();
  }),
);
await Bun.sleep(1000);
const rssAfter = rss();

const latencies: number[] = [];
for (let i = 1; i <= updates; i++) {
  await api('PUT', `/v1/resources/${secret.id}`, { value: `v${i}` });
  // The PUT answers only after its commit: its answer is the latest commit time we can see.
  const committed = performance.now();
  const version = i + 1;
  const deadline = committed + 5000;
  while (arrivals.some((seen) => !seen.has(version)) && performance.now() < deadline) {
    await Bun.sleep(1);
  }
  for (const seen of arrivals) {
    const at = seen.get(version);
    latencies.push(at === undefined ? Infinity : Math.max(0, at - committed));
  }
}
for (const abort of aborts) abort.abort();
child.kill();
await child.exited;

latencies.sort((a, b) => a - b);
const pct = (p: number) =>
  latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
const missed = latencies.filter((l) => l === Infinity).length;
console.log(`| streams | updates | p50 ms | p99 ms | max ms | missed | RSS/stream KiB |`);
console.log(`|---|---|---|---|---|---|---|`);
console.log(
  `| ${streams} | ${updates} | ${pct(0.5).toFixed(2)} | ${pct(0.99).toFixed(2)} | ${latencies.at(-1)!.toFixed(2)} | ${missed} | ${((rssAfter - rssBefore) / streams / 1024).toFixed(1)} |`,
);
