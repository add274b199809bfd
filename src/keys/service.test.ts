import { describe, expect, test } from 'bun:test';
import { InvalidRequestError } from '../errors.ts';
import { checkNewApiKey, parseDuration, toApiKeyObject, type NewApiKey } from './service.ts';
import type { ApiKeyRow } from '../db/schema/keys.ts';

const NOW = Date.UTC(2030, 0, 1);
const base: NewApiKey = {
  name: 'ci',
  role: 'reader',
  projectIds: [],
  vaultIds: [],
  scopes: null,
  expiresAt: null,
};

const fieldOf = (fn: () => void) => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidRequestError);
    return (error as InvalidRequestError).details?.field;
  }
  return undefined;
};

describe('API key rules', () => {
  test('durations', () => {
    expect(parseDuration('90d')).toBe(90 * 86_400_000);
    expect(parseDuration('12h')).toBe(12 * 3_600_000);
    expect(parseDuration('30m')).toBe(1_800_000);
    expect(parseDuration('2w')).toBe(14 * 86_400_000);
    expect(parseDuration('45s')).toBe(45_000);
    for (const bad of ['', '0d', '90', 'd', '1.5h', '-1d', '90 days', '9999999d'])
      expect(parseDuration(bad)).toBeUndefined();
  });

  test('consistency of a new key', () => {
    expect(fieldOf(() => checkNewApiKey(base, NOW))).toBeUndefined();
    const prj = 'prj_01jq3v6x1nf4r8s2k9w7y5t3m0';
    expect(fieldOf(() => checkNewApiKey({ ...base, role: 'admin', projectIds: [prj] }, NOW))).toBe(
      'project_ids',
    );
    expect(fieldOf(() => checkNewApiKey({ ...base, projectIds: ['prj_nope'] }, NOW))).toBe(
      'project_ids',
    );
    expect(fieldOf(() => checkNewApiKey({ ...base, vaultIds: [prj] }, NOW))).toBe('vault_ids');
    expect(fieldOf(() => checkNewApiKey({ ...base, scopes: ['resources:write'] }, NOW))).toBe(
      'scopes',
    );
    expect(fieldOf(() => checkNewApiKey({ ...base, scopes: [] }, NOW))).toBe('scopes');
    expect(fieldOf(() => checkNewApiKey({ ...base, expiresAt: NOW }, NOW))).toBe('expires_at');
    expect(fieldOf(() => checkNewApiKey({ ...base, expiresAt: NOW + 1 }, NOW))).toBeUndefined();
  });

  test('the API object: RFC 3339 times, the public prefix, the later of stored and pending use', () => {
    const row: ApiKeyRow = {
      id: 'key_x',
      name: 'n',
      role: 'reader',
      lookupId: 'AbC123xYz789',
      mac: null,
      tokenHash: Buffer.alloc(32),
      projectIds: [],
      vaultIds: [],
      scopes: null,
      rateLimitPerMinute: null,
      rateLimitBurst: null,
      expiresAt: null,
      lastUsedAt: NOW,
      createdAt: NOW,
      createdBy: 'test',
      revokedAt: null,
    };
    const object = toApiKeyObject(row, NOW + 61_000);
    expect(object).toMatchObject({
      prefix: 'scr_AbC123xYz789',
      created_at: '2030-01-01T00:00:00Z',
      last_used_at: '2030-01-01T00:01:01Z',
      expires_at: null,
    });
    expect(toApiKeyObject(row, NOW - 1).last_used_at).toBe('2030-01-01T00:00:00Z');
    expect(JSON.stringify(object)).not.toContain('token');
  });
});
