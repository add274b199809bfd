import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import {
  type LookupAll,
  type OutboundPolicy,
  resolveDeliveryTarget,
  validateWebhookUrl,
} from './outbound-guard.ts';
import { parseCidrList } from '../net/ip.ts';

const NO_POLICY: OutboundPolicy = { allowedHosts: [], allowedCidrs: [] };
const ALLOW_EVERYTHING: OutboundPolicy = {
  allowedHosts: [],
  allowedCidrs: ['0.0.0.0/0', '::/0'],
};

/** A resolver answering from a fixed table; records every call. */
function fakeDns(table: Record<string, string[]>) {
  const calls: Array<{ hostname: string; options: unknown }> = [];
  const lookup: LookupAll = async (hostname, options) => {
    calls.push({ hostname, options });
    const answers = table[hostname];
    if (!answers)
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return answers.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return { lookup, calls };
}

const noDns: LookupAll = async () => {
  throw new Error('literal addresses must not be looked up');
};

async function check(rawUrl: string, policy = NO_POLICY, lookup: LookupAll = noDns) {
  return resolveDeliveryTarget(new URL(rawUrl), policy, lookup);
}

describe('validateWebhookUrl', () => {
  test.each([
    'https://hooks.example.com/secryn',
    'http://hooks.example.com:8080/path?x=1',
    'https://10.0.0.5/', // private literals pass syntax; delivery decides
    'https://[2001:db8::1]:8443/x',
  ])('accepts %s', (raw) => {
    const result = validateWebhookUrl(raw);
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.url.href.length).toBeGreaterThan(0);
  });

  test.each([
    ['ftp://hooks.example.com/x', 'scheme'],
    ['javascript:alert(1)', 'scheme'],
    ['file:///etc/passwd', 'scheme'],
    ['https://admin:hunter2@hooks.example.com/', 'credentials'],
    ['https://admin@hooks.example.com/', 'credentials'],
    ['https://hooks.example.com:0/', 'port'],
    ['https://hooks.example.com:65536/', 'not valid'],
    ['not a url', 'whitespace'],
    ['hooks.example.com/x', 'not valid'],
    ['https://hooks.example.com/a\tb', 'whitespace'],
    [' https://hooks.example.com/', 'whitespace'],
    ['https://hooks.example.com/a\nb', 'whitespace'],
    [`https://hooks.example.com/${'a'.repeat(2048)}`, 'longer than 2048'],
  ])('refuses %s (%s)', (raw, expectedReason) => {
    const result = validateWebhookUrl(raw);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.reason).toContain(expectedReason);
      // Reasons are shown to API callers: never the URL or anything from it.
      for (const fragment of ['hooks.example', 'hunter2', 'admin', 'passwd', 'alert']) {
        expect(result.reason).not.toContain(fragment);
      }
    }
  });

  test('the length limit applies to exactly 2048 characters', () => {
    const base = 'https://hooks.example.com/';
    expect(validateWebhookUrl(base + 'a'.repeat(2048 - base.length)).ok).toBe(true);
    expect(validateWebhookUrl(base + 'a'.repeat(2049 - base.length)).ok).toBe(false);
  });
});

describe('resolveDeliveryTarget: IP literals', () => {
  test.each([
    ['http://127.0.0.1/', 'loopback'],
    ['http://0x7f.1/', 'loopback'], // hex, normalised by URL parsing
    ['http://2130706433/', 'loopback'], // decimal
    ['http://0177.0.0.1/', 'loopback'], // octal
    ['http://127.1/', 'loopback'],
    ['http://[::1]/', 'loopback'],
    ['http://[::ffff:127.0.0.1]/', 'loopback'], // IPv4-mapped
    ['http://[::ffff:a00:1]/', 'private'], // IPv4-mapped 10.0.0.1, hex form
    ['http://10.1.2.3/', 'private'],
    ['http://172.16.0.1/', 'private'],
    ['http://172.31.255.255/', 'private'],
    ['http://192.168.1.1/', 'private'],
    ['http://[fd12:3456::1]/', 'private'],
    ['http://[fec0::1]/', 'private'],
    ['http://[64:ff9b::a00:1]/', 'private'], // NAT64 of 10.0.0.1
    ['http://[2002:c0a8:101::1]/', 'private'], // 6to4 of 192.168.1.1
    ['http://100.64.0.1/', 'shared (CGNAT)'],
    ['http://100.127.255.254/', 'shared (CGNAT)'],
    ['http://0.0.0.0/', 'unspecified'],
    ['http://0/', 'unspecified'],
    ['http://[::]/', 'unspecified'],
    ['http://224.0.0.1/', 'multicast'],
    ['http://239.255.255.250/', 'multicast'],
    ['http://[ff02::1]/', 'multicast'],
    ['http://255.255.255.255/', 'reserved'],
    ['http://240.0.0.1/', 'reserved'],
    ['http://192.0.2.10/', 'reserved'],
    ['http://198.18.0.1/', 'reserved'],
    ['http://[2001:db8::1]/', 'reserved'],
    ['http://[2001::1]/', 'reserved'], // Teredo
    ['http://[::a00:1]/', 'reserved'], // deprecated IPv4-compatible
    ['http://[5f00::1]/', 'reserved'], // outside 2000::/3
  ])('refuses %s as %s', async (raw, category) => {
    const result = await check(raw);
    expect(result).toEqual({
      ok: false,
      reason: `destination is a ${category} address; allow-list the host or its network to permit it`,
    });
  });

  test.each([
    ['http://169.254.169.254/latest/meta-data/', 'cloud metadata'],
    ['http://[fd00:ec2::254]/', 'cloud metadata'],
    ['http://[fd20:ce::254]/', 'cloud metadata'],
    ['http://100.100.100.200/', 'cloud metadata'],
    ['http://[::ffff:169.254.169.254]/', 'cloud metadata'],
    ['http://[64:ff9b::a9fe:a9fe]/', 'cloud metadata'],
    ['http://169.254.1.1/', 'link-local'],
    ['http://[fe80::1]/', 'link-local'],
    ['http://[febf:ffff::1]/', 'link-local'],
  ])('refuses %s as %s even when everything is allow-listed', async (raw, category) => {
    const hostname = new URL(raw).hostname.replace(/^\[|\]$/g, '');
    const policy = { allowedHosts: [hostname], allowedCidrs: ALLOW_EVERYTHING.allowedCidrs };
    for (const p of [NO_POLICY, policy]) {
      expect(await check(raw, p)).toEqual({
        ok: false,
        reason: `destination is a ${category} address, which is never allowed`,
      });
    }
  });

  test.each([
    ['http://93.184.216.34/', '93.184.216.34', 4],
    ['http://1.1.1.1:8080/', '1.1.1.1', 4],
    ['http://100.63.255.255/', '100.63.255.255', 4], // just below CGNAT
    ['http://100.128.0.0/', '100.128.0.0', 4], // just above CGNAT
    ['http://172.32.0.1/', '172.32.0.1', 4], // just above 172.16/12
    ['http://[2606:4700:4700::1111]/', '2606:4700:4700::1111', 6],
    ['http://[::ffff:8.8.8.8]/', '8.8.8.8', 4], // mapped public: connect over IPv4
    ['http://[64:ff9b::808:808]/', '64:ff9b::808:808', 6], // NAT64 of a public address
  ])('allows public %s', async (raw, address, family) => {
    expect(await check(raw)).toEqual({ ok: true, address, family: family as 4 | 6 });
  });
});

describe('resolveDeliveryTarget: host names', () => {
  const dnsTable = {
    'hooks.example.com': ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'],
    'mixed.example.com': ['93.184.216.34', '10.0.0.7'],
    'mixed-reversed.example.com': ['10.0.0.7', '93.184.216.34'],
    'mapped.example.com': ['::ffff:10.0.0.1'],
    'internal.corp': ['10.20.30.40'],
    'other.corp': ['10.20.30.40'],
    'metadata.corp': ['169.254.169.254'],
    'v6internal.corp': ['fd12:3456::10'],
    'garbage.example.com': ['not-an-ip'],
    'empty.example.com': [],
  };

  test('resolves all addresses and returns the first allowed one', async () => {
    const { lookup, calls } = fakeDns(dnsTable);
    const result = await check('https://hooks.example.com/x', NO_POLICY, lookup);
    expect(result).toEqual({ ok: true, address: '93.184.216.34', family: 4 });
    expect(calls).toEqual([{ hostname: 'hooks.example.com', options: { all: true } }]);
  });

  test.each(['mixed.example.com', 'mixed-reversed.example.com'])(
    'refuses %s, which resolves to a public and a private address',
    async (host) => {
      const { lookup } = fakeDns(dnsTable);
      const result = await check(`https://${host}/`, NO_POLICY, lookup);
      expect(result.ok).toBe(false);
      if (!result.ok) {
        expect(result.reason).toContain('private');
        expect(result.reason).not.toContain('10.0.0.7');
      }
    },
  );

  test('refuses an IPv4-mapped private answer', async () => {
    const { lookup } = fakeDns(dnsTable);
    const result = await check('https://mapped.example.com/', NO_POLICY, lookup);
    expect(result.ok).toBe(false);
  });

  test('allowedHosts opens restricted space for that host only, case-insensitively', async () => {
    const { lookup } = fakeDns(dnsTable);
    const policy = { allowedHosts: ['INTERNAL.corp.'], allowedCidrs: [] };
    expect(await check('https://internal.corp/', NO_POLICY, lookup)).toMatchObject({ ok: false });
    expect(await check('https://Internal.Corp/', policy, lookup)).toEqual({
      ok: true,
      address: '10.20.30.40',
      family: 4,
    });
    // Same address, different name: not allowed.
    expect(await check('https://other.corp/', policy, lookup)).toMatchObject({ ok: false });
  });

  test('allowedCidrs opens exactly the listed networks', async () => {
    const { lookup } = fakeDns(dnsTable);
    const policy = { allowedHosts: [], allowedCidrs: ['10.20.0.0/16', 'fd12:3456::/32'] };
    expect(await check('https://internal.corp/', policy, lookup)).toMatchObject({ ok: true });
    expect(await check('https://v6internal.corp/', policy, lookup)).toEqual({
      ok: true,
      address: 'fd12:3456::10',
      family: 6,
    });
    expect(await check('http://10.21.0.1/', policy)).toMatchObject({ ok: false });
    expect(await check('http://[fd12:3457::1]/', policy)).toMatchObject({ ok: false });
    // An IPv4 address must not match an IPv6 rule that would cover its mapped form.
    expect(
      await check('http://10.0.0.1/', { allowedHosts: [], allowedCidrs: ['::/0'] }),
    ).toMatchObject({
      ok: false,
    });
  });

  test('a host allowed by name still may not resolve to metadata', async () => {
    const { lookup } = fakeDns(dnsTable);
    const policy = { allowedHosts: ['metadata.corp'], allowedCidrs: ['169.254.0.0/16'] };
    expect(await check('https://metadata.corp/', policy, lookup)).toEqual({
      ok: false,
      reason: 'destination is a cloud metadata address, which is never allowed',
    });
  });

  test('invalid allowedCidrs entries are ignored, not fatal', async () => {
    const policy = { allowedHosts: [], allowedCidrs: ['nonsense', '10.0.0.0/8'] };
    expect(await check('http://10.0.0.1/', policy)).toMatchObject({ ok: true });
  });

  test.each([
    ['https://nxdomain.example.com/', 'host name could not be resolved'],
    ['https://garbage.example.com/', 'host name resolved to an unrecognised address'],
    ['https://empty.example.com/', 'host name did not resolve to any address'],
  ])('refuses %s: %s', async (raw, reason) => {
    const { lookup } = fakeDns(dnsTable);
    expect(await check(raw, NO_POLICY, lookup)).toEqual({ ok: false, reason });
  });

  test('a resolver failure without a code gives a generic reason', async () => {
    const failing: LookupAll = async () => {
      throw new Error('internal detail that must not leak');
    };
    expect(await check('https://hooks.example.com/', NO_POLICY, failing)).toEqual({
      ok: false,
      reason: 'host name lookup failed',
    });
  });

  test('re-checks URL syntax, so a URL object with credentials is refused', async () => {
    const url = new URL('https://hooks.example.com/');
    url.username = 'user';
    const { lookup, calls } = fakeDns(dnsTable);
    expect(await resolveDeliveryTarget(url, NO_POLICY, lookup)).toMatchObject({ ok: false });
    expect(calls).toHaveLength(0);
  });

  test('the default resolver is the system one (localhost is loopback)', async () => {
    const result = await resolveDeliveryTarget(new URL('http://localhost:8080/'), NO_POLICY);
    expect(result).toMatchObject({ ok: false });
    if (!result.ok) expect(result.reason).toContain('loopback');
    const allowed = await resolveDeliveryTarget(new URL('http://localhost:8080/'), {
      allowedHosts: ['localhost'],
      allowedCidrs: [],
    });
    expect(allowed).toMatchObject({ ok: true });
  });
});

/** Reference matcher: compare the first `prefix` bits byte by byte. */
function inPrefix(address: number[], network: number[], prefix: number): boolean {
  for (let bit = 0; bit < prefix; bit++) {
    const mask = 0x80 >> bit % 8;
    if ((address[bit >> 3]! & mask) !== (network[bit >> 3]! & mask)) return false;
  }
  return true;
}

function masked(bytes: number[], prefix: number): number[] {
  return bytes.map((b, i) => b & (0xff << (8 - Math.max(0, Math.min(8, prefix - i * 8)))) & 0xff);
}

function v6Text(bytes: number[]): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(':');
}

describe('CIDR matching agrees with a bitwise reference', () => {
  // Addresses stay inside 10/8 and fc00::/7 so they are restricted and only the CIDR can allow
  // them; the network is derived from a nearby address so that matches are frequent.
  test('IPv4', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 3, maxLength: 3 }),
        fc.integer({ min: 0, max: 23 }),
        fc.integer({ min: 8, max: 32 }),
        async (rest, flipBit, prefix) => {
          const address = [10, ...rest];
          const near = address.slice();
          near[1 + (flipBit >> 3)]! ^= 0x80 >> flipBit % 8;
          const network = masked(near, prefix);
          const policy = { allowedHosts: [], allowedCidrs: [`${network.join('.')}/${prefix}`] };
          expect(parseCidrList(policy.allowedCidrs)).toEqual({ ok: true });
          const result = await check(`http://${address.join('.')}/`, policy);
          expect(result.ok).toBe(inPrefix(address, network, prefix));
        },
      ),
      { numRuns: 400 },
    );
  });

  test('IPv6', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(0xfc, 0xfd),
        fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 15, maxLength: 15 }),
        fc.integer({ min: 8, max: 127 }),
        fc.integer({ min: 7, max: 128 }),
        async (first, rest, flipBit, prefix) => {
          const address = [first, ...rest];
          const near = address.slice();
          near[flipBit >> 3]! ^= 0x80 >> flipBit % 8;
          const network = masked(near, prefix);
          const policy = { allowedHosts: [], allowedCidrs: [`${v6Text(network)}/${prefix}`] };
          const result = await check(`http://[${v6Text(address)}]/`, policy);
          expect(result.ok).toBe(inPrefix(address, network, prefix));
        },
      ),
      { numRuns: 400 },
    );
  });
});
