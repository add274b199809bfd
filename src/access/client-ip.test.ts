import { describe, expect, test } from 'bun:test';
import { clientIp } from './client-ip.ts';

function requestWith(forwardedFor?: string | string[]): Request {
  const headers = new Headers();
  for (const value of [forwardedFor ?? []].flat()) headers.append('X-Forwarded-For', value);
  return new Request('http://localhost/v1/health', { headers });
}

describe('clientIp without a trusted proxy', () => {
  test('uses the socket address', () => {
    expect(clientIp(requestWith(), '198.51.100.7', false)).toBe('198.51.100.7');
    expect(clientIp(requestWith(), '2001:db8::1', false)).toBe('2001:db8::1');
  });

  test('ignores a spoofed X-Forwarded-For', () => {
    expect(clientIp(requestWith('203.0.113.9'), '198.51.100.7', false)).toBe('198.51.100.7');
    expect(clientIp(requestWith('203.0.113.9'), undefined, false)).toBe('unknown');
  });

  test('unknown or invalid socket address → unknown', () => {
    expect(clientIp(requestWith(), undefined, false)).toBe('unknown');
    expect(clientIp(requestWith(), '', false)).toBe('unknown');
    expect(clientIp(requestWith(), 'not-an-ip', false)).toBe('unknown');
  });
});

describe('clientIp behind a trusted proxy', () => {
  const proxy = '10.0.0.2';

  test('an overwriting proxy: the single entry', () => {
    expect(clientIp(requestWith('203.0.113.9'), proxy, true)).toBe('203.0.113.9');
    expect(clientIp(requestWith(' 2001:db8::42 '), proxy, true)).toBe('2001:db8::42');
  });

  test('an appending proxy: the entry it appended, not the forged ones before it', () => {
    // The client sent "X-Forwarded-For: 1.1.1.1, 6.6.6.6"; the proxy appended its peer.
    expect(clientIp(requestWith('1.1.1.1, 6.6.6.6, 203.0.113.9'), proxy, true)).toBe('203.0.113.9');
    // Same when the proxy adds a second header line instead of extending the first.
    expect(clientIp(requestWith(['6.6.6.6', '203.0.113.9']), proxy, true)).toBe('203.0.113.9');
  });

  test('falls back to the socket address when the header is absent or garbage', () => {
    expect(clientIp(requestWith(), proxy, true)).toBe(proxy);
    for (const garbage of [
      '',
      ' , ',
      'unknown',
      '203.0.113.9:443',
      '[2001:db8::1]:443',
      '999.1.1.1',
      '203.0.113.9, <script>',
      '203.0.113.9,',
    ]) {
      expect(clientIp(requestWith(garbage), proxy, true)).toBe(proxy);
    }
    expect(clientIp(requestWith('garbage'), undefined, true)).toBe('unknown');
  });
});
