/**
 * The web console's page and embedded assets (loaded lazily by ./plugin.ts). Serves at `/`: one HTML page and its script and style sheet, all embedded in
 * the executable (src/console/bundle.ts) and served under `/console/assets/<tag>/`, so the
 * console works with no network beyond this server. Nothing on the page can load from another
 * host, run inline code or `eval`, or be framed: see {@link CONSOLE_CSP}. The page calls the API
 * under `/v1` with a session cookie (src/access/session-authenticate.ts).
 *
 * Imported only on the first console request (./plugin.ts): building the bundle costs a few
 * hundred milliseconds when run from source, which neither start-up nor other commands pay.
 */
import { createHash } from 'node:crypto';
import { consoleBundle } from './bundle.ts' with { type: 'macro' };

import { CONSOLE_ASSETS_PREFIX } from './paths.ts';

/**
 * The page's Content-Security-Policy: scripts, styles and API calls from this origin only, no
 * inline code or style attributes, no eval, no plugins, no framing, forms post nowhere else.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS = {
  'content-security-policy': CONSOLE_CSP,
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
} as const;

type Asset = { contentType: string; body: string; gzip: Uint8Array };

/** The embedded files, each with a gzip copy (compressed once, at start-up). */
const files = consoleBundle();
const assets = new Map<string, Asset>(
  files.map((file) => [
    file.name,
    { contentType: file.type, body: file.text, gzip: Bun.gzipSync(file.text, { level: 9 }) },
  ]),
);
const tag = createHash('sha256')
  .update(files.map((f) => f.text).join('\0'))
  .digest('hex')
  .slice(0, 12);
const assetUrl = (name: string) => `${CONSOLE_ASSETS_PREFIX}/${tag}/${name}`;

// A lock on a dark-blue square, as a data: URL (allowed by img-src) so it needs no request.
const FAVICON =
  'data:image/svg+xml,' +
  encodeURIComponent(
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#0a58ca"/><path d="M5 7V5a3 3 0 0 1 6 0v2h1v6H4V7zm1.5 0h3V5a1.5 1.5 0 0 0-3 0z" fill="#fff"/></svg>',
  );

const pageHtml = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="color-scheme" content="light dark" />
    <title>Secryn console</title>
    <link rel="icon" href="${FAVICON}" />
    <link rel="stylesheet" href="${assetUrl('app.css')}" />
    <script type="module" src="${assetUrl('app.js')}"></script>
  </head>
  <body>
    <noscript>The Secryn console needs JavaScript. The API is at /v1 and documented at /docs.</noscript>
    <div id="app"></div>
  </body>
</html>
`;

/** Total bytes of the embedded assets, plain and gzip-compressed (reported by the tests). */
export function consoleAssetSizes(): { name: string; bytes: number; gzipBytes: number }[] {
  return [...assets].map(([name, a]) => ({
    name,
    bytes: Buffer.byteLength(a.body),
    gzipBytes: a.gzip.byteLength,
  }));
}

/** The page, or the asset at `tag/name` (undefined when unknown: an old or made-up URL). */
export function consoleResponse(tag_: string | null, name: string | null, acceptEncoding: string) {
  if (tag_ === null) {
    return new Response(pageHtml, {
      headers: {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-cache',
        ...SECURITY_HEADERS,
      },
    });
  }
  const asset = tag_ === tag && name !== null ? assets.get(name) : undefined;
  if (!asset) return undefined;
  const gzip = /\bgzip\b/.test(acceptEncoding);
  return new Response(gzip ? asset.gzip : asset.body, {
    headers: {
      'content-type': asset.contentType,
      'cache-control': 'public, max-age=31536000, immutable',
      vary: 'accept-encoding',
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
      ...SECURITY_HEADERS,
    },
  });
}
