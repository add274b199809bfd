import { describe, expect, test } from 'bun:test';
import { createHash } from 'node:crypto';
import {
  API_TOKEN_LENGTH,
  API_TOKEN_PATTERN,
  API_TOKEN_PREFIX,
  apiTokenHashMatches,
  generateApiToken,
  hashApiToken,
  parseApiToken,
} from './api-token.ts';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function decodeBase62(digits: string): bigint {
  let value = 0n;
  for (const ch of digits) value = value * 62n + BigInt(BASE62.indexOf(ch));
  return value;
}

describe('generateApiToken', () => {
  test('has the documented fixed layout', () => {
    const { token, lookupId, displayPrefix } = generateApiToken();
    expect(token).toHaveLength(65);
    expect(API_TOKEN_LENGTH).toBe(65);
    expect(token.startsWith('scr_')).toBe(true);
    expect(API_TOKEN_PATTERN.test(token)).toBe(true);
    expect(lookupId).toMatch(/^[0-9A-Za-z]{12}$/);
    expect(displayPrefix).toBe(API_TOKEN_PREFIX + lookupId);
    expect(token.startsWith(displayPrefix)).toBe(true);
    // The secret part never includes the checksum and is exactly 43 base62 digits.
    expect(token.slice(16, 59)).toMatch(/^[0-9A-Za-z]{43}$/);
  });

  test('the documented scanner regex finds tokens in free text', () => {
    const { token } = generateApiToken();
    const scanner = /\bscr_[0-9A-Za-z]{61}\b/g;
    const text = `export SECRYN_TOKEN=${token}\nother=scr_short "${token}"`;
    expect(text.match(scanner)).toEqual([token, token]);
  });

  test('checksum is zlib CRC-32 of the first 59 chars, base62, zero-padded', () => {
    for (let i = 0; i < 200; i++) {
      const { token } = generateApiToken();
      const expected = Bun.hash.crc32(token.slice(0, 59));
      expect(decodeBase62(token.slice(59))).toBe(BigInt(expected));
    }
  });

  test('10 000 tokens all parse back to their lookup id and are unique', () => {
    const tokens = new Set<string>();
    const lookupIds = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const { token, lookupId } = generateApiToken();
      expect(parseApiToken(token)).toEqual({ lookupId });
      tokens.add(token);
      lookupIds.add(lookupId);
    }
    expect(tokens.size).toBe(10_000);
    expect(lookupIds.size).toBe(10_000);
  });

  test('secret digits span the 256-bit range and are not biased toward a fixed lead', () => {
    // A 256-bit value never exceeds 2^256 - 1, and over many samples the top bit is set
    // about half the time (it would be always 0 if fewer bytes were encoded).
    let topBitSet = 0;
    const samples = 2_000;
    for (let i = 0; i < samples; i++) {
      const secret = decodeBase62(generateApiToken().token.slice(16, 59));
      expect(secret < 1n << 256n).toBe(true);
      if (secret >> 255n === 1n) topBitSet++;
    }
    expect(topBitSet).toBeGreaterThan(samples * 0.4);
    expect(topBitSet).toBeLessThan(samples * 0.6);
  });
});

describe('parseApiToken', () => {
  test('every single-character substitution is rejected', () => {
    // CRC-32 detects every error burst of ≤ 32 bits, so one changed byte is always caught.
    // Exhaustive over 20 tokens: 20 × 65 positions × 61 alternatives.
    let checked = 0;
    for (let t = 0; t < 20; t++) {
      const { token } = generateApiToken();
      for (let pos = 0; pos < token.length; pos++) {
        for (const ch of BASE62 + '_') {
          if (ch === token[pos]) continue;
          const mutated = token.slice(0, pos) + ch + token.slice(pos + 1);
          expect(parseApiToken(mutated)).toBeNull();
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(20 * 65 * 61);
  });

  test('every adjacent transposition of distinct characters is rejected', () => {
    for (let t = 0; t < 50; t++) {
      const { token } = generateApiToken();
      for (let pos = 0; pos + 1 < token.length; pos++) {
        if (token[pos] === token[pos + 1]) continue;
        const swapped = token.slice(0, pos) + token[pos + 1] + token[pos] + token.slice(pos + 2);
        expect(parseApiToken(swapped)).toBeNull();
      }
    }
  });

  test('wrong prefix, length or alphabet → null', () => {
    const { token } = generateApiToken();
    const body = token.slice(4);
    expect(parseApiToken(token)).not.toBeNull();
    expect(parseApiToken('SCR_' + body)).toBeNull();
    expect(parseApiToken('ghp_' + body)).toBeNull();
    expect(parseApiToken('scr-' + body)).toBeNull();
    expect(parseApiToken(token.slice(0, -1))).toBeNull();
    expect(parseApiToken(token + 'a')).toBeNull();
    expect(parseApiToken(token + '\n')).toBeNull();
    expect(parseApiToken(' ' + token.slice(1))).toBeNull();
    expect(parseApiToken('')).toBeNull();
    expect(parseApiToken('scr_')).toBeNull();
    expect(parseApiToken(token.slice(0, 20) + '-' + token.slice(21))).toBeNull();
    expect(parseApiToken(token.slice(0, 20) + 'é' + token.slice(21))).toBeNull();
    expect(parseApiToken('Bearer ' + token)).toBeNull();
    expect(parseApiToken(undefined as unknown as string)).toBeNull();
  });

  test('a well-formed token with a wrong checksum → null', () => {
    const { token } = generateApiToken();
    const wrongChecksum = token.endsWith('000000') ? '000001' : '000000';
    expect(parseApiToken(token.slice(0, 59) + wrongChecksum)).toBeNull();
    expect(parseApiToken('scr_' + '0'.repeat(61))).toBeNull();
  });
});

describe('hashApiToken / apiTokenHashMatches', () => {
  test('hash is SHA-256 of the whole token', () => {
    const { token } = generateApiToken();
    const hash = hashApiToken(token);
    expect(hash).toHaveLength(32);
    expect(Buffer.from(hash).toString('hex')).toBe(
      createHash('sha256').update(token).digest('hex'),
    );
  });

  test('matches itself, not a different token, not a truncated hash', () => {
    const a = generateApiToken().token;
    const b = generateApiToken().token;
    const stored = Uint8Array.from(hashApiToken(a));
    expect(apiTokenHashMatches(a, stored)).toBe(true);
    expect(apiTokenHashMatches(b, stored)).toBe(false);
    expect(apiTokenHashMatches(a.slice(0, -1) + (a.endsWith('x') ? 'y' : 'x'), stored)).toBe(false);
    expect(apiTokenHashMatches(a, stored.subarray(0, 31))).toBe(false);
    expect(apiTokenHashMatches(a, new Uint8Array(0))).toBe(false);
    expect(apiTokenHashMatches(a, new Uint8Array(64))).toBe(false);
  });
});
