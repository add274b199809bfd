/**
 * SSRF protection for webhook delivery.
 *
 * Two checks, at two moments:
 * - {@link validateWebhookUrl} when a webhook is saved: syntax only, no DNS.
 * - {@link resolveDeliveryTarget} right before every delivery attempt: resolve the host, refuse
 *   if ANY resolved address is forbidden, and hand back the one address the caller must connect
 *   to. Connecting to that exact address (see `attemptDelivery` in ./attempt.ts, which puts the IP
 *   literal in the request URL and carries the name in `Host` and TLS SNI) is what closes the
 *   DNS-rebinding gap between check and use: the name is never resolved a second time.
 *
 * Address classes, after unwrapping IPv4-mapped IPv6 (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::/96`)
 * and 6to4 (`2002::/16`) to the IPv4 address they carry:
 * - never allowed, even when allow-listed: link-local (169.254.0.0/16, fe80::/10) and cloud
 *   metadata endpoints (169.254.169.254, 100.100.100.200, fd00:ec2::254, fd20:ce::254);
 * - allowed only when the URL's host is in `allowedHosts` or the address is in `allowedCidrs`:
 *   loopback, private (RFC 1918, fc00::/7, deprecated fec0::/10), shared/CGNAT 100.64.0.0/10,
 *   unspecified/"this network", multicast, and reserved space (documentation, benchmarking,
 *   240.0.0.0/4 incl. broadcast, IETF protocol blocks, and all IPv6 outside 2000::/3);
 * - everything else (public unicast) is allowed.
 *
 * Matching uses `node:net` BlockList (verified to work in Bun 1.4.5), one list per address
 * family: a single mixed list lets an IPv4 address match an IPv6 rule such as `::/0`.
 */
import dns from 'node:dns';
import {
  formatIp,
  parseCidr,
  parseIp,
  RangeSet,
  stripBrackets,
  unmapIpv4,
  type Ip,
} from '../net/ip.ts';

/**
 * Operator policy that may open restricted (not link-local/metadata) address space. Treat it as
 * immutable: its compiled form is cached per object, so build a new object on config reload.
 */
export type OutboundPolicy = {
  /** Host names (or IP literals) allowed to resolve to restricted addresses; exact, case-insensitive. */
  allowedHosts: string[];
  /** CIDRs (`10.1.0.0/16`, `fd12::/48`) or single addresses whose members are allowed. */
  allowedCidrs: string[];
};

/** The `{ all: true }` shape of `dns.promises.lookup`; injectable for tests. */
export type LookupAll = (
  hostname: string,
  options: { all: true },
) => Promise<ReadonlyArray<{ address: string; family: number }>>;

/** The address a delivery must connect to; an IP literal, never a host name. */
export type DeliveryTarget = { address: string; family: 4 | 6 };

/** Result of a guard check. `reason` is safe to show to API callers: it never echoes the URL. */
export type GuardRefusal = { ok: false; reason: string };

/** Longest webhook URL we accept, in characters (raw input and normalised form). */
export const MAX_WEBHOOK_URL_LENGTH = 2048;

type Category =
  | 'link-local'
  | 'cloud metadata'
  | 'loopback'
  | 'private'
  | 'shared (CGNAT)'
  | 'unspecified'
  | 'multicast'
  | 'reserved';

// ---------------------------------------------------------------------------------------------
// URL syntax (save time)

/**
 * Checks a webhook URL's syntax without touching the network: http or https, a host, no
 * credentials, a port in 1..65535, no whitespace or control characters, at most
 * {@link MAX_WEBHOOK_URL_LENGTH} characters. Returns the parsed, normalised URL (store
 * `url.href`). Reasons never contain the URL, so they are safe to return to API callers.
 * Whether the host is reachable and allowed is decided at delivery time by
 * {@link resolveDeliveryTarget}, because DNS answers change.
 */
export function validateWebhookUrl(raw: string): { ok: true; url: URL } | GuardRefusal {
  if (raw.length > MAX_WEBHOOK_URL_LENGTH) {
    return refuse(`URL is longer than ${MAX_WEBHOOK_URL_LENGTH} characters`);
  }
  // WHATWG parsing silently drops tabs/newlines and trims spaces; a URL that needed that is a
  // paste error (or an attempt to smuggle something past a log reader), so refuse it.
  if (/[\u0000-\u0020\u007f-\u009f]/.test(raw)) {
    return refuse('URL must not contain whitespace or control characters');
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return refuse('URL is not valid');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return refuse('URL scheme must be http or https');
  }
  if (url.username !== '' || url.password !== '') {
    return refuse('URL must not contain credentials');
  }
  if (url.hostname === '') return refuse('URL must have a host');
  if (url.port !== '' && !(Number(url.port) >= 1 && Number(url.port) <= 65535)) {
    return refuse('URL port must be between 1 and 65535');
  }
  if (url.href.length > MAX_WEBHOOK_URL_LENGTH) {
    return refuse(`URL is longer than ${MAX_WEBHOOK_URL_LENGTH} characters once normalised`);
  }
  return { ok: true, url };
}

// ---------------------------------------------------------------------------------------------
// Delivery-time resolution

/**
 * Resolves the URL's host to every address it has (`{ all: true }`) and refuses the delivery if
 * ANY of them is forbidden (see the module comment for the classes); a host that answers with
 * one public and one private address is refused, since the connection could go to either.
 * On success returns the first resolved address, normalised (IPv4-mapped IPv6 becomes IPv4),
 * which the caller MUST connect to directly instead of resolving the name again.
 *
 * IP literals in the URL (also the decimal/hex/octal IPv4 forms, which URL parsing has already
 * normalised to dotted quads) are checked without DNS. Restricted classes are allowed when the
 * URL's host is in `policy.allowedHosts` (case-insensitive, trailing dot ignored) or the address
 * falls in `policy.allowedCidrs`; link-local and metadata addresses never are. Unparseable
 * `allowedCidrs` entries are skipped (an allow-list entry can only open access, so skipping it
 * fails closed): validate the configuration with `parseCidrList` (src/net/ip.ts) at startup.
 *
 * Reasons name the address class but not the address, so internal IPs do not leak to API
 * callers. There is no lookup timeout here beyond the system resolver's own; callers that need a
 * hard bound should race this promise.
 */
export async function resolveDeliveryTarget(
  url: URL,
  policy: OutboundPolicy,
  lookup: LookupAll = dns.promises.lookup,
): Promise<({ ok: true } & DeliveryTarget) | GuardRefusal> {
  const syntax = validateWebhookUrl(url.href);
  if (!syntax.ok) return syntax;

  const hostname = stripBrackets(url.hostname);
  let addresses: Ip[];
  const literal = parseIp(hostname);
  if (literal) {
    addresses = [literal];
  } else {
    let answers: ReadonlyArray<{ address: string; family: number }>;
    try {
      answers = await lookup(hostname, { all: true });
    } catch (error) {
      return refuse(describeLookupError(error));
    }
    addresses = [];
    for (const answer of answers) {
      const ip = parseIp(answer.address);
      if (!ip) return refuse('host name resolved to an unrecognised address');
      addresses.push(ip);
    }
  }
  if (addresses.length === 0) return refuse('host name did not resolve to any address');

  const compiled = compilePolicy(policy);
  const hostAllowed = compiled.hosts.has(hostKey(hostname));
  for (const ip of addresses) {
    const verdict = classify(ip);
    if (verdict === null) continue;
    if (verdict.never) {
      return refuse(`destination is a ${verdict.category} address, which is never allowed`);
    }
    if (!hostAllowed && !compiled.cidrs.matchesAny(verdict.forms)) {
      return refuse(
        `destination is a ${verdict.category} address; allow-list the host or its network to permit it`,
      );
    }
  }
  const chosen = unmapIpv4(addresses[0]!);
  return { ok: true, address: formatIp(chosen), family: chosen.family };
}

// ---------------------------------------------------------------------------------------------
// CIDR lists (configuration)

// ---------------------------------------------------------------------------------------------
// Classification

// Checked in order; the first match names the class. Metadata before link-local for the clearer
// reason; restricted classes are refused unless allow-listed, `never` ones always.
const NEVER_ALLOWED: ReadonlyArray<{ category: Category; ranges: RangeSet }> = [
  {
    category: 'cloud metadata',
    // AWS/GCP/Azure/OCI/DigitalOcean IPv4, Alibaba, AWS IMDS IPv6, GCP metadata IPv6.
    ranges: RangeSet.of(['169.254.169.254', '100.100.100.200', 'fd00:ec2::254', 'fd20:ce::254']),
  },
  { category: 'link-local', ranges: RangeSet.of(['169.254.0.0/16', 'fe80::/10']) },
];

const RESTRICTED: ReadonlyArray<{ category: Category; ranges: RangeSet }> = [
  { category: 'unspecified', ranges: RangeSet.of(['0.0.0.0/8', '::/128']) },
  { category: 'loopback', ranges: RangeSet.of(['127.0.0.0/8', '::1/128']) },
  {
    category: 'private',
    ranges: RangeSet.of([
      '10.0.0.0/8',
      '172.16.0.0/12',
      '192.168.0.0/16',
      'fc00::/7',
      'fec0::/10', // deprecated site-local, still routed inside some networks
      '64:ff9b:1::/48', // local-use NAT64 (RFC 8215)
    ]),
  },
  { category: 'shared (CGNAT)', ranges: RangeSet.of(['100.64.0.0/10']) },
  { category: 'multicast', ranges: RangeSet.of(['224.0.0.0/4', 'ff00::/8']) },
  {
    category: 'reserved',
    ranges: RangeSet.of([
      '192.0.0.0/24', // IETF protocol assignments
      '192.0.2.0/24', // documentation
      '192.88.99.0/24', // deprecated 6to4 relay anycast
      '198.18.0.0/15', // benchmarking
      '198.51.100.0/24', // documentation
      '203.0.113.0/24', // documentation
      '240.0.0.0/4', // reserved, incl. 255.255.255.255 broadcast
      '::/96', // deprecated IPv4-compatible IPv6
      '100::/64', // discard-only
      '2001::/23', // IETF protocol assignments, incl. Teredo 2001::/32
      '2001:db8::/32', // documentation
      '3fff::/20', // documentation
    ]),
  },
];

const IPV6_GLOBAL_UNICAST = RangeSet.of(['2000::/3']);
const NAT64_WELL_KNOWN = RangeSet.of(['64:ff9b::/96']);
const SIX_TO_FOUR = RangeSet.of(['2002::/16']);

type Verdict = { never: boolean; category: Category; forms: Ip[] } | null;

/** null = public; otherwise the class and the forms an allow-list CIDR may match. */
function classify(address: Ip): Verdict {
  const ip = unmapIpv4(address);
  const forms: Ip[] = [ip];
  const embedded = embeddedIpv4(ip);
  if (embedded) forms.push(embedded);

  let restricted: Category | null = null;
  for (const form of forms) {
    for (const { category, ranges } of NEVER_ALLOWED) {
      if (ranges.has(form)) return { never: true, category, forms };
    }
    if (restricted === null) {
      restricted = RESTRICTED.find(({ ranges }) => ranges.has(form))?.category ?? null;
    }
  }
  // NAT64 lives outside 2000::/3 but is as public as the IPv4 address it carries.
  if (restricted === null && ip.family === 6 && !embedded && !IPV6_GLOBAL_UNICAST.has(ip)) {
    restricted = 'reserved';
  }
  return restricted === null ? null : { never: false, category: restricted, forms };
}

/** The IPv4 address a NAT64 or 6to4 gateway would forward to; the attacker controls it. */
function embeddedIpv4(ip: Ip): Ip | null {
  if (ip.family !== 6) return null;
  if (NAT64_WELL_KNOWN.has(ip)) return { family: 4, bytes: ip.bytes.slice(12, 16) };
  if (SIX_TO_FOUR.has(ip)) return { family: 4, bytes: ip.bytes.slice(2, 6) };
  return null;
}

// ---------------------------------------------------------------------------------------------
// Policy compilation (cached per policy object: delivery runs often, policies change rarely)

type CompiledPolicy = { hosts: Set<string>; cidrs: RangeSet };
const compiledPolicies = new WeakMap<OutboundPolicy, CompiledPolicy>();

function compilePolicy(policy: OutboundPolicy): CompiledPolicy {
  const cached = compiledPolicies.get(policy);
  if (cached) return cached;
  const cidrs = new RangeSet();
  for (const entry of policy.allowedCidrs) {
    const cidr = parseCidr(entry);
    if (!('error' in cidr)) cidrs.add(cidr);
  }
  const compiled = { hosts: new Set(policy.allowedHosts.map(hostKey)), cidrs };
  compiledPolicies.set(policy, compiled);
  return compiled;
}

function hostKey(host: string): string {
  return stripBrackets(host.trim().toLowerCase()).replace(/\.$/, '');
}

function describeLookupError(error: unknown): string {
  const code =
    typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  if (code === 'ENOTFOUND' || code === 'ENODATA') return 'host name could not be resolved';
  if (typeof code === 'string' && /^[A-Z0-9_]{1,32}$/.test(code)) {
    return `host name lookup failed (${code})`;
  }
  return 'host name lookup failed';
}

function refuse(reason: string): GuardRefusal {
  return { ok: false, reason };
}
