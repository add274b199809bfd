/**
 * What integrity protection costs (issue 13, item 2), in process, best of 5:
 * (a) the API key MAC check, paid when authentication loads a key row from the database (a
 *     cache miss: first use, or after any key change), against the same load without it, and
 *     against a cached authentication (the common request, which pays nothing);
 * (b) the audit chain hash per entry: keyed (HMAC-SHA256, Bun.CryptoHasher) against the plain
 *     SHA-256 it replaces.
 *
 *   ./node_modules/.bin/bun bench/integrity.ts
 *
 * Bounded: a few seconds; no network.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Authenticator, noteApiKeyChange } from '../src/access/authenticate.ts';
import { entryHash, keyedEntryHash, type ChainFields } from '../src/ledger/audit-chain.ts';
import { validateConfig } from '../src/config/load.ts';
import { createInstance } from '../src/instance.ts';
import { integrityOf } from '../src/keyring/integrity.ts';
import {
  API_KEY_MAC_COLUMNS,
  apiKeyMacMatches,
  type ApiKeyMacFields,
} from '../src/keyring/api-key-mac.ts';
import { INITIAL_ADMIN_KEY, insertApiKey, newApiKeyId } from '../src/keys/service.ts';
import { createLogger } from '../src/log/logger.ts';
import { machineSummary, markdownTable } from './lib/load.ts';

function nsPerCall(calls: number, fn: (i: number) => unknown): number {
  let best = Infinity;
  for (let round = 0; round < 6; round++) {
    const started = Bun.nanoseconds();
    for (let i = 0; i < calls; i++) fn(i);
    const ns = (Bun.nanoseconds() - started) / calls;
    if (round > 0) best = Math.min(best, ns); // round 0 warms up
  }
  return best;
}

const work = mkdtempSync(join(tmpdir(), 'secryn-bench-integrity-'));
try {
  const config = validateConfig({
    storage: { path: join(work, 'secryn.db') },
    encryption: { master_key_file: join(work, 'master.key') },
  });
  const logger = createLogger({ level: 'error', format: 'json', color: false, write: () => {} });
  const instance = createInstance(config, logger);
  const { token, row } = instance.sqlite
    .transaction(() =>
      insertApiKey(instance.db, newApiKeyId(), INITIAL_ADMIN_KEY, 'bench', Date.now()),
    )
    .immediate();
  const header = `Bearer ${token}`;
  const auth = new Authenticator(instance.sqlite, Date.now);
  if (!auth.authenticate(header)) throw new Error('the key did not authenticate');
  const key = integrityOf(instance.sqlite).apiKeyMac;
  const stored = instance.sqlite
    .query<
      ApiKeyMacFields & { mac: string },
      [string]
    >(`SELECT ${API_KEY_MAC_COLUMNS}, mac FROM api_keys WHERE id = ?`)
    .get(row.id)!;

  const cached = nsPerCall(200_000, () => auth.authenticate(header));
  const miss = nsPerCall(20_000, () => {
    noteApiKeyChange(); // drop the cache: the row is loaded and its MAC checked again
    return auth.authenticate(header);
  });
  const mac = nsPerCall(100_000, () => apiKeyMacMatches(key, stored, stored.mac));

  const entry: ChainFields = {
    seq: 123_456,
    id: 'aud_01jabcdefghjkmnpqrstvwxyz0',
    at: Date.now(),
    actorType: 'api_key',
    actorId: 'key_01jabcdefghjkmnpqrstvwxyz0',
    actorName: 'deploy',
    action: 'resource.reveal',
    targetType: 'resource',
    targetId: 'res_01jabcdefghjkmnpqrstvwxyz0',
    outcome: 'success',
    status: 200,
    ip: '127.0.0.1',
    userAgent: 'curl/8.5.0',
    requestId: '3f2c1b9a-6d2e-4c1f-9a57-2b0c1d3e4f50',
    prevHash: 'a'.repeat(64),
    details: null,
  };
  const auditKey = integrityOf(instance.sqlite).auditChain;
  const plain = nsPerCall(200_000, () => entryHash(entry));
  const keyed = nsPerCall(200_000, () => keyedEntryHash(entry, auditKey));
  await instance.close();

  console.log('# Integrity protection: cost per request and per audit entry\n');
  console.log(machineSummary());
  console.log(
    markdownTable(
      ['operation', 'µs', 'vs baseline'],
      [
        [
          'authenticate(), key cached (baseline: every request after the first)',
          (cached / 1000).toFixed(2),
          '1.00×',
        ],
        [
          'authenticate(), key loaded from the database + MAC checked',
          (miss / 1000).toFixed(2),
          `${(miss / cached).toFixed(2)}×`,
        ],
        ['  of which the MAC check alone (HMAC-SHA256 of the row)', (mac / 1000).toFixed(2), '—'],
        ['audit entry hash, plain SHA-256 (baseline: before)', (plain / 1000).toFixed(2), '1.00×'],
        [
          'audit entry hash, keyed HMAC-SHA256',
          (keyed / 1000).toFixed(2),
          `${(keyed / plain).toFixed(2)}×`,
        ],
      ],
    ),
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
