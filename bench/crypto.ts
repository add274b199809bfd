/**
 * AES-256-GCM value encryption: Secryn's Keyring (node:crypto, incl. header, AAD encoding and
 * copies) against a bare WebCrypto `crypto.subtle` AES-GCM baseline (fresh IV, precomputed AAD
 * of similar size), same process, same run. Sequential calls, as a request handler makes them.
 * Each cell is measured in ROUNDS interleaved slices and the best slice is kept, so a noisy
 * neighbour on a small machine skews both columns alike. Bounded: 8 cells × ROUNDS × (warm-up +
 * slice) ≈ 3 s. Run: `bun bench/crypto.ts`.
 */
import { randomBytes } from 'node:crypto';
import { Keyring, generateDataKey } from '../src/crypto/keyring.ts';
import type { ValueLocation } from '../src/crypto/envelope.ts';

const ROUNDS = 3;
const MEASURE_MS = 100;
const WARMUP_MS = 20;
const where: ValueLocation = {
  table: 'secret_versions',
  column: 'value',
  rowId: 'res_01hzy3k5',
  version: 12,
  // As resource values are stored: bound to their resource, vault and project.
  owner: {
    parentId: 'res_01jq3v6x1nf4r8s2k9w7y5t3mz',
    projectId: 'prj_01jq3v6x1nf4r8s2k9w7y5t3mz',
    vaultId: 'vlt_01jq3v6x1nf4r8s2k9w7y5t3mz',
  },
};

type Result = { opsPerSec: number; usPerOp: number };

function measureSync(fn: () => void): Result {
  const warmEnd = performance.now() + WARMUP_MS;
  while (performance.now() < warmEnd) fn();
  let ops = 0;
  const start = performance.now();
  let now = start;
  while (now - start < MEASURE_MS) {
    for (let i = 0; i < 256; i++) fn();
    ops += 256;
    now = performance.now();
  }
  const seconds = (now - start) / 1000;
  return { opsPerSec: ops / seconds, usPerOp: (seconds * 1e6) / ops };
}

async function measureAsync(fn: () => Promise<unknown>): Promise<Result> {
  const warmEnd = performance.now() + WARMUP_MS;
  while (performance.now() < warmEnd) await fn();
  let ops = 0;
  const start = performance.now();
  let now = start;
  while (now - start < MEASURE_MS) {
    for (let i = 0; i < 64; i++) await fn();
    ops += 64;
    now = performance.now();
  }
  const seconds = (now - start) / 1000;
  return { opsPerSec: ops / seconds, usPerOp: (seconds * 1e6) / ops };
}

const rawKey = generateDataKey();
const ring = new Keyring([{ version: 1, key: rawKey }]);
const subtleKey = await crypto.subtle.importKey('raw', new Uint8Array(rawKey), 'AES-GCM', false, [
  'encrypt',
  'decrypt',
]);
const baselineAad = new Uint8Array(randomBytes(80)); // ≈ size of Secryn's encoded location

async function subtleSeal(plaintext: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = await crypto.subtle.encrypt(
    { name: 'AES-GCM', iv, additionalData: baselineAad, tagLength: 128 },
    subtleKey,
    plaintext,
  );
  const out = new Uint8Array(12 + sealed.byteLength);
  out.set(iv);
  out.set(new Uint8Array(sealed), 12);
  return out;
}

async function subtleOpen(sealed: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  const opened = await crypto.subtle.decrypt(
    { name: 'AES-GCM', iv: sealed.subarray(0, 12), additionalData: baselineAad, tagLength: 128 },
    subtleKey,
    sealed.subarray(12),
  );
  return new Uint8Array(opened);
}

const rows: string[][] = [];
for (const [label, size] of [
  ['200 B', 200],
  ['4 KiB', 4096],
] as const) {
  const plaintext = new Uint8Array(randomBytes(size));
  const nodeSealed = ring.encrypt(plaintext, where);
  const webSealed = await subtleSeal(plaintext);
  // Sanity: both paths really round-trip before we time them.
  if (!Buffer.from(ring.decrypt(nodeSealed, where)).equals(plaintext)) throw new Error('node');
  if (!Buffer.from(await subtleOpen(webSealed)).equals(plaintext)) throw new Error('subtle');

  const best = (a: Result | undefined, b: Result) => (a && a.opsPerSec >= b.opsPerSec ? a : b);
  const cases: [string, () => void, () => Promise<unknown>][] = [
    ['encrypt', () => void ring.encrypt(plaintext, where), () => subtleSeal(plaintext)],
    ['decrypt', () => void ring.decrypt(nodeSealed, where), () => subtleOpen(webSealed)],
  ];
  const results: [string, Result, Result][] = [];
  for (const [op, nodeFn, webFn] of cases) {
    let node: Result | undefined;
    let web: Result | undefined;
    for (let round = 0; round < ROUNDS; round++) {
      node = best(node, measureSync(nodeFn));
      web = best(web, await measureAsync(webFn));
    }
    results.push([op, node!, web!]);
  }
  for (const [op, node, web] of results) {
    rows.push([
      label,
      op,
      Math.round(node.opsPerSec).toLocaleString('en-US'),
      node.usPerOp.toFixed(2),
      Math.round(web.opsPerSec).toLocaleString('en-US'),
      web.usPerOp.toFixed(2),
      `${(node.opsPerSec / web.opsPerSec).toFixed(1)}×`,
    ]);
  }
}

const header = [
  'size',
  'op',
  'Keyring ops/s',
  'µs/op',
  'subtle ops/s',
  'µs/op',
  'Keyring ÷ subtle',
];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) =>
  '| ' +
  cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ') +
  ' |';
console.log(
  `bun ${Bun.version}, AES-256-GCM, sequential calls, best of ${ROUNDS} × ${MEASURE_MS} ms per cell`,
);
console.log(line(header));
console.log(
  '|' +
    widths.map((w, i) => (i < 2 ? ':' : '-') + '-'.repeat(w) + (i < 2 ? '-' : ':')).join('|') +
    '|',
);
for (const row of rows) console.log(line(row));
