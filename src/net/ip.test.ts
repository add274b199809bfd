/** Unit tests of the shared IP/CIDR parser (src/net/ip.ts). */
import { describe, expect, test } from 'bun:test';
import { formatIp, parseCidrList, parseIp, unmapIpv4 } from './ip.ts';

describe('parseIp / formatIp', () => {
  test.each([
    ['192.0.2.7', '192.0.2.7'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['::ffff:192.0.2.7', '::ffff:c000:207'],
    ['fe80::1%eth0', 'fe80::1'],
  ])('%s reads back as %s', (text, canonical) => {
    expect(formatIp(parseIp(text)!)).toBe(canonical);
  });

  test.each(['010.0.0.1', '1.2.3', '256.0.0.1', '1::2::3', 'example.com', ''])(
    'refuses %j',
    (text) => expect(parseIp(text)).toBeNull(),
  );

  test('unwraps IPv4-mapped IPv6 only', () => {
    expect(formatIp(unmapIpv4(parseIp('::ffff:192.0.2.7')!))).toBe('192.0.2.7');
    expect(formatIp(unmapIpv4(parseIp('64:ff9b::192.0.2.7')!))).toBe('64:ff9b::c000:207');
  });
});

describe('parseCidrList', () => {
  test('accepts IPv4, IPv6 and single addresses', () => {
    expect(
      parseCidrList([
        '10.0.0.0/8',
        '192.168.1.0/24',
        '0.0.0.0/0',
        'fd00::/8',
        '::/0',
        '10.1.2.3',
        'fd00::1',
      ]),
    ).toEqual({ ok: true });
    expect(parseCidrList([])).toEqual({ ok: true });
  });

  test.each([
    [['10.0.0.0/8', 'nonsense'], 1, 'not an IP address or CIDR'],
    [['10.0.0.0/33'], 0, 'must be 0..32'],
    [['10.0.0.0/8', '192.168.0.0/16', 'fd00::/129'], 2, 'must be 0..128'],
    [['10.0.0.0/08'], 0, 'must be 0..32'],
    [['10.0.0.0/'], 0, 'must be 0..32'],
    [['10.0.0.1/8'], 0, 'did you mean 10.0.0.0/8?'],
    [['fd00::1/8'], 0, 'did you mean fd00::/8?'],
    [['::ffff:10.0.0.0/104'], 0, 'IPv4-mapped'],
    [['fe80::1%eth0/64'], 0, 'zone'],
    [['010.0.0.0/8'], 0, 'not an IP address'],
    [['1.2.3/24'], 0, 'not an IP address'],
    [[''], 0, 'not an IP address'],
    [[' 10.0.0.0/8'], 0, 'not an IP address'],
  ])('reports %j at index %d (%s)', (list, index, reason) => {
    const result = parseCidrList(list);
    expect(result).toMatchObject({ ok: false, index });
    if (!result.ok) expect(result.reason).toContain(reason);
  });
});
