/**
 * The client address used for rate limiting and the audit log.
 */
import { isIP } from 'node:net';

/**
 * Returns the address of the client that sent `request`.
 *
 * - `trustProxy = false` (direct exposure): the socket peer address; `X-Forwarded-For` is
 *   ignored entirely, since any client can send it.
 * - `trustProxy = true` means exactly one trusted reverse proxy sits in front of Secryn and
 *   sets `X-Forwarded-For`, either overwriting it or appending the peer it saw (nginx
 *   `$proxy_add_x_forwarded_for`, Caddy, Traefik, HAProxy `option forwardfor`, AWS ALB).
 *   The **right-most** entry is then the one our proxy wrote; everything left of it came
 *   from the client and can be forged, so it is never used. With an overwriting proxy the
 *   header holds one entry and left-most = right-most. Behind several proxy hops this yields
 *   the inner proxy's view (the next hop out), which is safe but coarse.
 *   If that entry is missing or not a bare IP address (`net.isIP`; no port, no brackets),
 *   the socket address is used.
 * - No usable address at all → `'unknown'`.
 *
 * Addresses are returned as written (no IPv4-mapped-IPv6 unmapping or IPv6 prefixing); a rate
 * limiter should key IPv6 clients by /64 itself.
 */
export function clientIp(
  request: Request,
  socketIp: string | undefined,
  trustProxy: boolean,
): string {
  if (trustProxy) {
    // Repeated headers arrive joined with ", ", so the last entry is still the last hop's.
    const forwardedFor = request.headers.get('x-forwarded-for');
    if (forwardedFor !== null) {
      const lastEntry = forwardedFor.slice(forwardedFor.lastIndexOf(',') + 1).trim();
      if (isIP(lastEntry) !== 0) return lastEntry;
    }
  }
  if (socketIp !== undefined && isIP(socketIp) !== 0) return socketIp;
  return 'unknown';
}
