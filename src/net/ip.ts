/**
 * IP addresses and CIDR ranges as bytes: the one parser shared by configuration (`allowed_cidrs`),
 * the rate limiter (per-/64 client buckets) and the webhook SSRF guard. Validation is
 * `node:net`'s `isIPv4`/`isIPv6` (canonical dotted quads only: URL parsing and resolvers have
 * already turned hex/octal/decimal IPv4 forms into those); matching is `node:net` `BlockList`
 * ({@link RangeSet}). What is written here is only what `node:net` does not offer: bytes,
 * masks, IPv4-mapped unwrapping and canonical formatting. Imports nothing of ours.
 */
import net from 'node:net';

/** An address as network-order bytes (4 or 16). */
export type Ip = { family: 4; bytes: Uint8Array } | { family: 6; bytes: Uint8Array };

/** A network: its first address and prefix length (host bits are zero). */
export type Cidr = { ip: Ip; prefix: number };

/** Parses an IPv4 dotted quad or an IPv6 address (a zone id such as `%eth0` is ignored). */
export function parseIp(text: string): Ip | null {
  if (net.isIPv4(text)) return { family: 4, bytes: new Uint8Array(text.split('.').map(Number)) };
  if (!net.isIPv6(text)) return null;
  const bytes = ipv6Bytes(text);
  return bytes ? { family: 6, bytes } : null;
}

/** Bytes of an address `isIPv6` accepted; null for the forms it allows but we do not. */
function ipv6Bytes(text: string): Uint8Array | null {
  let rest = text.includes('%') ? text.slice(0, text.indexOf('%')) : text;
  let tail: Uint8Array | null = null;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon !== -1 && rest.includes('.', lastColon)) {
    const v4 = parseIp(rest.slice(lastColon + 1));
    if (v4?.family !== 4) return null;
    tail = v4.bytes;
    rest = `${rest.slice(0, lastColon + 1)}0:0`; // placeholders for the two groups it fills
  }
  const halves = rest.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] === '' ? [] : halves[0]!.split(':');
  const after = halves.length === 2 ? (halves[1] === '' ? [] : halves[1]!.split(':')) : [];
  const missing = 8 - head.length - after.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...after];
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const group = groups[i]!;
    if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return null;
    const value = parseInt(group, 16);
    bytes[i * 2] = value >> 8;
    bytes[i * 2 + 1] = value & 0xff;
  }
  if (tail) bytes.set(tail, 12);
  return bytes;
}

/** The eight 16-bit groups of an IPv6 address (the first four name its /64). */
export function ipv6Groups(ip: Ip & { family: 6 }): number[] {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((ip.bytes[i]! << 8) | ip.bytes[i + 1]!);
  return groups;
}

/** `::ffff:a.b.c.d` as the IPv4 address it carries; any other address unchanged. */
export function unmapIpv4(ip: Ip): Ip {
  if (ip.family !== 6) return ip;
  const b = ip.bytes;
  const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  return mapped ? { family: 4, bytes: b.slice(12, 16) } : ip;
}

/** Canonical text: dotted quad, or RFC 5952 compressed IPv6 (as URL serialisation writes it). */
export function formatIp(ip: Ip): string {
  if (ip.family === 4) return Array.from(ip.bytes).join('.');
  const text = ipv6Groups(ip)
    .map((g) => g.toString(16))
    .join(':');
  return stripBrackets(new URL(`http://[${text}]/`).hostname);
}

/** The address with every bit after `prefix` cleared. */
export function maskTo(ip: Ip, prefix: number): Ip {
  const bytes = ip.bytes.slice();
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    bytes[i] = bytes[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  return { family: ip.family, bytes } as Ip;
}

/** `[::1]` → `::1` (URL host form to address form); anything else unchanged. */
export function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/**
 * Parses `a.b.c.d/n` (n 0..32), IPv6 `x::/n` (n 0..128) or a bare address (a single host).
 * Refuses entries with host bits set (`10.0.0.1/8` is usually a typo for `10.0.0.1/32` or
 * `10.0.0.0/8`), zone ids, and IPv4-mapped IPv6 ranges (mapped addresses are matched as IPv4,
 * so write the IPv4 range). Reasons quote only the entry itself.
 */
export function parseCidr(entry: string): Cidr | { error: string } {
  const slash = entry.indexOf('/');
  const addressText = slash === -1 ? entry : entry.slice(0, slash);
  if (addressText.includes('%')) return { error: 'zone ids are not allowed in CIDRs' };
  const ip = parseIp(addressText);
  if (!ip) return { error: `"${entry}" is not an IP address or CIDR` };
  const maxPrefix = ip.family === 4 ? 32 : 128;
  let prefix = maxPrefix;
  if (slash !== -1) {
    const prefixText = entry.slice(slash + 1);
    if (!/^(0|[1-9]\d{0,2})$/.test(prefixText) || Number(prefixText) > maxPrefix) {
      return { error: `prefix length in "${entry}" must be 0..${maxPrefix}` };
    }
    prefix = Number(prefixText);
  }
  if (ip.family === 6 && unmapIpv4(ip).family === 4) {
    return { error: `"${entry}" is IPv4-mapped; write the IPv4 range instead` };
  }
  const network = maskTo(ip, prefix);
  if (!network.bytes.every((x, i) => x === ip.bytes[i])) {
    return { error: `"${entry}" has host bits set; did you mean ${formatIp(network)}/${prefix}?` };
  }
  return { ip, prefix };
}

/** Validates a list of CIDRs (see {@link parseCidr}); reports the index of the first bad one. */
export function parseCidrList(
  list: string[],
): { ok: true } | { ok: false; index: number; reason: string } {
  for (let index = 0; index < list.length; index++) {
    const parsed = parseCidr(list[index]!);
    if ('error' in parsed) return { ok: false, index, reason: parsed.error };
  }
  return { ok: true };
}

/** A set of networks, one `node:net` BlockList per family: a single mixed list lets an IPv4
 * address match an IPv6 rule such as `::/0`. */
export class RangeSet {
  private readonly v4 = new net.BlockList();
  private readonly v6 = new net.BlockList();

  /** A set of built-in ranges; a bad entry is a programming error and throws. */
  static of(cidrs: readonly string[]): RangeSet {
    const set = new RangeSet();
    for (const text of cidrs) {
      const cidr = parseCidr(text);
      if ('error' in cidr) throw new Error(`built-in range ${text}: ${cidr.error}`);
      set.add(cidr);
    }
    return set;
  }

  add(cidr: Cidr): void {
    if (cidr.ip.family === 4) this.v4.addSubnet(formatIp(cidr.ip), cidr.prefix, 'ipv4');
    else this.v6.addSubnet(formatIp(cidr.ip), cidr.prefix, 'ipv6');
  }

  has(ip: Ip): boolean {
    return ip.family === 4
      ? this.v4.check(formatIp(ip), 'ipv4')
      : this.v6.check(formatIp(ip), 'ipv6');
  }

  matchesAny(ips: readonly Ip[]): boolean {
    return ips.some((ip) => this.has(ip));
  }
}
