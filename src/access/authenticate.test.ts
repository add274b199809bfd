import { Database } from 'bun:sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { eq } from 'drizzle-orm';
import { manualClock } from '../clock.ts';
import { generateApiToken, hashApiToken } from '../crypto/api-token.ts';
import { createInstance, type Instance } from '../instance.ts';
import { insertApiKey, newApiKeyId, revokeApiKey, updateApiKey } from '../keys/service.ts';
import { apiKeys } from '../db/schema/keys.ts';
import { memoryLogger, tempDir, testConfig } from '../../test/harness.ts';
import {
  Authenticator,
  bearerToken,
  CROSS_PROCESS_CHECK_MS,
  LastUsedTracker,
} from './authenticate.ts';
import type { KeyGrant } from './principal.ts';

const grant: KeyGrant = {
  role: 'manager',
  projectIds: ['prj_01jq3v6x1nf4r8s2k9w7y5t3m0'],
  vaultIds: [],
  scopes: ['resources:read'],
  expiresAt: null,
};

describe('API key authentication', () => {
  const dir = tempDir();
  const clock = manualClock();
  let instance: Instance;
  let used: [string, number][];
  let auth: Authenticator;

  beforeAll(() => {
    instance = createInstance(testConfig(dir.path), memoryLogger(), undefined, { clock });
    used = [];
    auth = new Authenticator(
      instance.sqlite,
      () => clock.now(),
      (id, at) => void used.push([id, at]),
    );
  });
  afterAll(async () => {
    await instance.close();
    dir[Symbol.dispose]();
  });

  const create = (over: Partial<KeyGrant> = {}) =>
    insertApiKey(instance.db, newApiKeyId(), { name: 'k', ...grant, ...over }, 'test', clock.now());

  test('a valid token yields its principal and is recorded as used', () => {
    const { row, token } = create();
    const principal = auth.authenticate(`Bearer ${token}`);
    expect(principal).toMatchObject({
      keyId: row.id,
      role: 'manager',
      projectIds: grant.projectIds,
      scopes: ['resources:read'],
    });
    expect([...principal!.permissions]).toEqual(['resources:read']);
    expect(auth.authenticate(`bearer   ${token}`)?.keyId).toBe(row.id);
    expect(used).toContainEqual([row.id, clock.now()]);
  });

  test('missing, malformed, bad checksum, unknown, wrong secret, revoked, expired: all refused', () => {
    const { row, token } = create();
    const expiring = create({ expiresAt: clock.now() + 1000 });
    const flipped = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    const impostor = generateApiToken();
    // Same lookup id as a real key, another secret: the hash comparison must refuse it.
    const other = generateApiToken();
    const stolenLookup = create();
    instance.db
      .update(apiKeys)
      .set({ lookupId: other.lookupId, tokenHash: Buffer.from(hashApiToken(impostor.token)) })
      .where(eq(apiKeys.id, stolenLookup.row.id))
      .run();
    used.length = 0;
    for (const header of [
      null,
      '',
      token,
      `Basic ${token}`,
      `Bearer`,
      `Bearer ${token} extra`,
      `Bearer ${flipped}`,
      `Bearer ${impostor.token}`,
      `Bearer ${other.token}`,
    ])
      expect(auth.authenticate(header)).toBeUndefined();
    expect(auth.authenticate(`Bearer ${expiring.token}`)?.keyId).toBe(expiring.row.id);
    clock.advance(1000);
    expect(auth.authenticate(`Bearer ${expiring.token}`)).toBeUndefined();
    expect(auth.authenticate(`Bearer ${token}`)?.keyId).toBe(row.id);
    revokeApiKey(instance.db, row.id, clock.now());
    expect(auth.authenticate(`Bearer ${token}`)).toBeUndefined(); // the very next request
    expect(used.map(([id]) => id)).toEqual([expiring.row.id, row.id]);
  });

  test('a change by this process reaches a cached key on the very next request', () => {
    const { row, token } = create({ scopes: ['resources:read', 'resources:reveal'] });
    expect([...auth.authenticate(`Bearer ${token}`)!.permissions]).toContain('resources:reveal');
    // Cached now: a wrong checksum or another secret behind the same lookup id still fails.
    const flipped = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    const otherSecret = token.slice(0, 20) + (token[20] === 'x' ? 'y' : 'x') + token.slice(21);
    expect(auth.authenticate(`Bearer ${flipped}`)).toBeUndefined();
    expect(auth.authenticate(`Bearer ${otherSecret}`)).toBeUndefined();
    updateApiKey(instance.db, row.id, { scopes: ['resources:read'] });
    expect([...auth.authenticate(`Bearer ${token}`)!.permissions]).toEqual(['resources:read']);
    revokeApiKey(instance.db, row.id, clock.now());
    expect(auth.authenticate(`Bearer ${token}`)).toBeUndefined();
  });

  test('a change by another process reaches a cached key within CROSS_PROCESS_CHECK_MS', () => {
    let monotonic = 0;
    const cached = new Authenticator(instance.sqlite, () => clock.now(), undefined, {
      monotonicNow: () => monotonic,
    });
    const { row, token } = create();
    expect(cached.authenticate(`Bearer ${token}`)?.keyId).toBe(row.id);
    // The CLI writes through its own connection: this process is not told.
    const cli = new Database(instance.config.storage.path);
    cli.run('UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2', [clock.now(), row.id]);
    cli.close();
    monotonic += CROSS_PROCESS_CHECK_MS - 1;
    expect(cached.authenticate(`Bearer ${token}`)?.keyId).toBe(row.id); // still trusted
    monotonic += 1;
    expect(cached.authenticate(`Bearer ${token}`)).toBeUndefined();
  });

  test('bearerToken', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('BEARER abc ')).toBe('abc');
    expect(bearerToken('Bearer a b')).toBeUndefined();
    expect(bearerToken(null)).toBeUndefined();
  });

  test('last use is coalesced in memory and written in one batch that never goes backwards', async () => {
    const { row } = create();
    const second = create();
    const tracker = new LastUsedTracker(instance);
    const lastUsed = (id: string) =>
      instance.db.select({ at: apiKeys.lastUsedAt }).from(apiKeys).where(eq(apiKeys.id, id)).get()!
        .at;
    // Another connection sees data_version move once per commit by someone else.
    const observer = new Database(instance.config.storage.path, { readonly: true });
    const version = () =>
      (observer.query('PRAGMA data_version').get() as { data_version: number }).data_version;
    const before = version();
    tracker.touch(row.id, 5_000);
    tracker.touch(row.id, 7_000);
    tracker.touch(row.id, 6_000);
    tracker.touch(second.row.id, 6_000);
    expect(tracker.pending(row.id)).toBe(7_000);
    expect(lastUsed(row.id)).toBeNull(); // nothing written per use
    expect(version()).toBe(before);
    await tracker.flush();
    expect(version()).toBe(before + 1); // one transaction for every pending key
    expect(lastUsed(row.id)).toBe(7_000);
    expect(lastUsed(second.row.id)).toBe(6_000);
    expect(tracker.pending(row.id)).toBeUndefined();
    tracker.touch(row.id, 6_500); // an older time from a slow request
    await tracker.stop();
    expect(lastUsed(row.id)).toBe(7_000);
    observer.close();
  });
});
