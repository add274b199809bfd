/**
 * API documentation that works in an air-gapped network: the OpenAPI document generated from
 * the route schemas (`GET /docs/json`) and a Swagger UI page (`GET /docs`) whose every script,
 * style sheet and image is embedded in the executable and served from `/docs/assets/...`.
 *
 * Why the page is rendered here rather than by `@elysiajs/openapi`'s `provider: 'swagger-ui'`
 * (see docs/offline-docs.md for the full reasoning):
 * - its template falls back to unpkg.com for any asset option left unset (fail-open);
 * - it inlines the start-up script, which rules out a `script-src 'self'` Content-Security-Policy;
 * - it points Swagger UI at the *relative* `docs/json`, which breaks at `/docs/` (Elysia
 *   serves the page there too, and the browser then asks for `/docs/docs/json`).
 * So `@elysiajs/openapi` generates the document only (`provider: null`) and this module serves
 * a fixed page plus the swagger-ui-dist files.
 *
 * Nothing on the page can reach another host: the Content-Security-Policy limits every fetch
 * (scripts, styles, images, fonts, XHR) to this origin, and Swagger UI's online validator badge
 * (an image from validator.swagger.io) is switched off.
 */
import { createHash } from 'node:crypto';
import type { BunFile } from 'bun';
import type { AnyElysia } from 'elysia';
import swaggerUiPackage from 'swagger-ui-dist/package.json' with { type: 'json' };
// `type: 'file'` embeds each file in a `bun build --compile` executable and yields its path
// (`/$bunfs/root/...` there, node_modules when run from source). See ./docs-assets.d.ts.
import swaggerUiBundlePath from 'swagger-ui-dist/swagger-ui-bundle.js' with { type: 'file' };
import swaggerUiCssPath from 'swagger-ui-dist/swagger-ui.css' with { type: 'file' };
import swaggerUiPageCssPath from 'swagger-ui-dist/index.css' with { type: 'file' };
import favicon32Path from 'swagger-ui-dist/favicon-32x32.png' with { type: 'file' };
import favicon16Path from 'swagger-ui-dist/favicon-16x16.png' with { type: 'file' };
import { buildOpenApiDocument, snapshotRoutes, type DocumentBase } from './openapi-document.ts';

/** Path of the interactive documentation page. */
export const DOCS_PATH = '/docs';
/** Path of the generated OpenAPI document (JSON). */
export const DOCS_SPEC_PATH = '/docs/json';
/** Every asset the page loads lives below this prefix. */
export const DOCS_ASSETS_PREFIX = '/docs/assets';

/** The `license` of package.json (test/openapi.test.ts keeps them equal). */
export const LICENSE = 'UNLICENSED';

/** Options of {@link docsPlugin}. */
export interface DocsPluginOptions {
  /** Secryn's version: the OpenAPI `info.version`, which Swagger UI shows beside the title. */
  version: string;
}

/**
 * Swagger UI settings. The object is serialised into a same-origin script, so only JSON values.
 * - `validatorUrl: null`: the default draws a badge image fetched from validator.swagger.io.
 * - `queryConfigEnabled: false`: ignore `?url=` / `?configUrl=` so a link cannot make the page
 *   load (and send "Try it out" tokens towards) another API description.
 * - `persistAuthorization: false`: a pasted bearer token stays in memory, not in localStorage.
 */
const swaggerUiConfig = {
  url: DOCS_SPEC_PATH,
  dom_id: '#swagger-ui',
  deepLinking: true,
  validatorUrl: null,
  queryConfigEnabled: false,
  persistAuthorization: false,
  displayRequestDuration: true,
  defaultModelsExpandDepth: 0,
} as const;

const initScript = `'use strict';\nwindow.ui = SwaggerUIBundle(${JSON.stringify(swaggerUiConfig)});\n`;

/**
 * Browser-enforced guarantee that the page loads nothing off-host, whatever the bundled
 * JavaScript contains. `style-src 'unsafe-inline'` is needed because Swagger UI renders
 * `style="..."` attributes; it cannot fetch anything, since img-src/font-src stay 'self'.
 * `data:` images are the icons inlined in swagger-ui.css; `blob:` is how Swagger UI shows an
 * image returned by "Try it out".
 */
const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

interface DocsAsset {
  contentType: string;
  body: () => Blob | string;
}

const textAsset = (contentType: string, text: string): DocsAsset => ({
  contentType,
  body: () => text,
});
const fileAsset = (contentType: string, path: string): DocsAsset => ({
  contentType,
  body: () => Bun.file(path),
});

const assets: Record<string, DocsAsset> = {
  'swagger-ui-bundle.js': fileAsset('text/javascript; charset=utf-8', swaggerUiBundlePath),
  'swagger-ui.css': fileAsset('text/css; charset=utf-8', swaggerUiCssPath),
  'index.css': fileAsset('text/css; charset=utf-8', swaggerUiPageCssPath),
  'favicon-32x32.png': fileAsset('image/png', favicon32Path),
  'favicon-16x16.png': fileAsset('image/png', favicon16Path),
  'init.js': textAsset('text/javascript; charset=utf-8', initScript),
};

/**
 * Assets are cached for a year (`immutable`), so their URLs carry a tag that changes whenever
 * what they serve can change: a new swagger-ui-dist release or a new start-up script.
 */
const assetsTag = createHash('sha256')
  .update(`${swaggerUiPackage.version}\0${initScript}`)
  .digest('hex')
  .slice(0, 12);
const assetUrl = (name: string): string => `${DOCS_ASSETS_PREFIX}/${assetsTag}/${name}`;

const pageHtml = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Secryn API</title>
    <link rel="icon" type="image/png" sizes="32x32" href="${assetUrl('favicon-32x32.png')}" />
    <link rel="icon" type="image/png" sizes="16x16" href="${assetUrl('favicon-16x16.png')}" />
    <link rel="stylesheet" href="${assetUrl('swagger-ui.css')}" />
    <link rel="stylesheet" href="${assetUrl('index.css')}" />
  </head>
  <body>
    <noscript>This page needs JavaScript. The OpenAPI document is at
      <a href="${DOCS_SPEC_PATH}">${DOCS_SPEC_PATH}</a>.</noscript>
    <div id="swagger-ui"></div>
    <script src="${assetUrl('swagger-ui-bundle.js')}"></script>
    <script src="${assetUrl('init.js')}"></script>
  </body>
</html>
`;

const securityHeaders = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const;

/** What the document says beyond the routes (./openapi-document.ts `DocumentBase`). */
const documentBase = (version: string): DocumentBase => ({
  info: {
    title: 'Secryn API',
    version,
    description:
      'Self-hosted secrets manager. Send `Authorization: Bearer scr_...` on every ' +
      'request except the health check and this documentation.',
    license: { name: LICENSE },
  },
  servers: [{ url: '/', description: 'This Secryn server' }],
  securitySchemes: {
    bearerAuth: {
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'scr_ API key',
      description:
        'Secryn API key sent as `Authorization: Bearer scr_...`. Missing, malformed, ' +
        'unknown, expired or revoked keys get 401 UNAUTHORIZED.',
    },
  },
  // The routes below are hidden one by one too; this catches any /docs route added later.
  exclude: [/^\/docs(?:\/|$)/],
});

/**
 * Elysia plugin serving, without authentication (docs/api.md §1):
 * - `GET /docs`: Swagger UI page, `Cache-Control: no-cache`, strict same-origin CSP;
 * - `GET /docs/json`: OpenAPI 3.1 document of every route of the app it is `.use()`d in,
 *   titled "Secryn API" at `options.version`, with the `bearerAuth` scheme
 *   (`Authorization: Bearer scr_...`) required by default. Public routes opt out with
 *   `detail: { security: [] }`. See ./openapi-document.ts for what it adds to the route schemas;
 * - `GET /docs/assets/<tag>/<file>`: embedded Swagger UI files, cached for a year.
 * None of these paths appear in the OpenAPI document.
 *
 * Mount it LAST: the document describes the routes registered by then, snapshotted when the
 * plugin is mounted (./openapi-document.ts `snapshotRoutes`: compiling a route's validators on
 * its first request through the listener changes its schema objects, so a document made from
 * the live routes would depend on which had been called). It is generated from that snapshot on the first request for
 * it, not at start-up (tens of milliseconds that `serve` would otherwise spend before it
 * answers), and served as the same bytes ever after.
 */
export function docsPlugin(options: DocsPluginOptions) {
  return (app: AnyElysia) => {
    const routes = snapshotRoutes(app);
    // Shared by concurrent first requests; a failed build is retried by the next request.
    let document: Promise<string> | undefined;
    const documentText = (): Promise<string> =>
      (document ??= buildOpenApiDocument(routes, documentBase(options.version)).then(
        (built) => JSON.stringify(built),
        (error: unknown) => {
          document = undefined;
          throw error;
        },
      ));
    app.get(
      DOCS_SPEC_PATH,
      async () =>
        new Response(await documentText(), {
          headers: { 'content-type': 'application/json; charset=utf-8', ...securityHeaders },
        }),
      { detail: { hide: true } },
    );
    app.get(
      DOCS_PATH,
      () =>
        new Response(pageHtml, {
          headers: {
            'content-type': 'text/html; charset=utf-8',
            'cache-control': 'no-cache',
            'content-security-policy': contentSecurityPolicy,
            ...securityHeaders,
          },
        }),
      { detail: { hide: true } },
    );
    for (const [name, asset] of Object.entries(assets)) {
      app.get(
        assetUrl(name),
        async () => {
          const body = asset.body();
          // A file gone from under a server run from source (node_modules being reinstalled)
          // must fail here, through the error funnel (a 500 logged as 500), not after the
          // response has left the app with status 200.
          if (typeof body !== 'string' && !(await (body as BunFile).exists()))
            throw new Error(`docs asset ${name} is missing`);
          return new Response(body, {
            headers: {
              'content-type': asset.contentType,
              'cache-control': 'public, max-age=31536000, immutable',
              ...securityHeaders,
            },
          });
        },
        { detail: { hide: true } },
      );
    }
    return app;
  };
}
