import { describe, expect, test } from 'bun:test';
import { constantTimeEqual } from './constant-time.ts';

describe('constantTimeEqual', () => {
  test('equal inputs', () => {
    expect(constantTimeEqual('', '')).toBe(true);
    expect(constantTimeEqual('scr_abc', 'scr_abc')).toBe(true);
    expect(constantTimeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 3]))).toBe(true);
    expect(constantTimeEqual('é', new Uint8Array([0xc3, 0xa9]))).toBe(true);
  });

  test('different content, same length', () => {
    expect(constantTimeEqual('scr_abc', 'scr_abd')).toBe(false);
    expect(constantTimeEqual(new Uint8Array([0, 2, 3]), new Uint8Array([1, 2, 3]))).toBe(false);
  });

  test('different lengths, including prefixes and zero padding look-alikes', () => {
    expect(constantTimeEqual('abc', 'abcd')).toBe(false);
    expect(constantTimeEqual('abcd', 'abc')).toBe(false);
    expect(constantTimeEqual('', 'a')).toBe(false);
    expect(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2, 0]))).toBe(false);
    expect(constantTimeEqual(new Uint8Array([]), new Uint8Array([0]))).toBe(false);
  });

  test('subarray views compare their own bytes only', () => {
    const backing = new Uint8Array([9, 1, 2, 3, 9]);
    expect(constantTimeEqual(backing.subarray(1, 4), new Uint8Array([1, 2, 3]))).toBe(true);
  });
});
