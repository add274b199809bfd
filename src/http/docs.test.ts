import { describe, expect, test } from 'bun:test';
import { Elysia, t } from 'elysia';
import { DOCS_ASSETS_PREFIX, DOCS_PATH, DOCS_SPEC_PATH, docsPlugin } from './docs.ts';

const ORIGIN = 'http://localhost';

function buildApp() {
  // Mounted last: the document lists the routes registered before it.
  return new Elysia()
    .post('/v1/thing', ({ body }) => ({ id: 'thg_1', name: body.name }), {
      body: t.Object({ name: t.String({ minLength: 1 }) }),
      response: t.Object({ id: t.String(), name: t.String() }),
    })
    .use(docsPlugin({ version: '0.0.0-test' }));
}

type App = ReturnType<typeof buildApp>;

const get = (app: App, path: string) => app.handle(new Request(ORIGIN + path));

/*
 * What counts as "loading something off-host" (the rule every check below applies):
 * - HTML: the page is ours and fixed, so it may not contain an absolute (`http(s)://`) or
 *   protocol-relative (`//host`) URL anywhere, inline scripts or <style> blocks included;
 *   every src/href must resolve to this origin.
 * - CSS: the browser fetches `url(...)` and `@import` targets. Each must be a `data:` URL
 *   (decoded in place; an SVG used as an image cannot fetch anything) or resolve to this
 *   origin. URLs inside data: URLs (SVG `xmlns="http://www.w3.org/2000/svg"`) and inside
 *   comments (`sourceMappingURL`, fetched by devtools only and same-origin anyway) are text.
 * - JavaScript: what a bundle fetches is decided at run time, so no static scan can be exact.
 *   Our own start-up script may not mention any URL. For swagger-ui-bundle.js the scan is a
 *   tripwire: every host it mentions must be in JS_HOSTS_NOT_LOADED below, each with the
 *   reason it is never fetched, so a swagger-ui upgrade that adds a host fails here and gets
 *   reviewed. The run-time guarantee is the page's Content-Security-Policy (checked below)
 *   and the headless Chromium run with the network cut described in docs/offline-docs.md.
 */

const ABSOLUTE_OR_PROTOCOL_RELATIVE_URL = /(?:https?:)?\/\/[a-z0-9-]+(?:\.[a-z0-9-]+)+/i;

/** Hosts swagger-ui-dist 5.35.0's bundle mentions, none of which it fetches on our page. */
const JS_HOSTS_NOT_LOADED: Record<string, string> = {
  '': 'bare "http://" prefixes: linkifier builds <a href>, mixed-content error text',
  'validator.swagger.io': 'default validatorUrl (badge image); docsPlugin sets it to null',
  'www.w3.org': 'XML namespace names (SVG, XHTML, XLink, MathML) for createElementNS',
  'json-schema.org': 'JSON Schema dialect identifiers ($schema), compared, never fetched',
  'spec.openapis.org': 'OpenAPI 3.1/3.2 dialect and schema identifiers',
  'swagger.io': 'dummy base URI for resolving relative $ref pointers outside a browser',
  base: 'dummy base URI inside sanitizeUrl()',
  'vladimirgorej.com': 'dummy base URI to test whether a server URL parses',
  'example.com': 'generated example values for format: uri/hostname',
  '실례.com': 'generated example value for format: iri',
  'spdx.org': '<a href> built for an SPDX license identifier in the info block',
  'datatracker.ietf.org': 'RFC references in comments and error messages',
  'www.rfc-editor.org': 'RFC references in comments and error messages',
  'github.com': 'links in error messages and license comments',
  'reactjs.org': 'React error-decoder link in error messages',
  'redux.js.org': 'Redux error link in error messages',
  'fb.me': 'prop-types error message',
  'twitter.com': 'linkifier: <a href> for @mentions/#hashtags in Markdown',
  'www.facebook.com': 'linkifier: <a href> for #hashtags in Markdown',
  'instagram.com': 'linkifier: <a href> for @mentions/#hashtags in Markdown',
  'soundcloud.com': 'linkifier: <a href> for @mentions in Markdown',
  'www.tiktok.com': 'linkifier: <a href> for @mentions/#hashtags in Markdown',
};

interface HtmlScan {
  /** Every src and href attribute value, in document order. */
  references: string[];
  /** <script> elements without src (inline code), and <style> elements. */
  inlineCode: number;
  /** Elements carrying a style="" attribute. */
  styleAttributes: number;
}

async function scanHtml(html: string): Promise<HtmlScan> {
  const scan: HtmlScan = { references: [], inlineCode: 0, styleAttributes: 0 };
  await new HTMLRewriter()
    .on('*', {
      element(element) {
        for (const [name, value] of element.attributes) {
          if (name === 'src' || name === 'href') scan.references.push(value);
          if (name === 'style') scan.styleAttributes++;
        }
        if (element.tagName === 'style') scan.inlineCode++;
        if (element.tagName === 'script' && !element.hasAttribute('src')) scan.inlineCode++;
      },
    })
    .transform(new Response(html))
    .text();
  return scan;
}

/** Targets of `url(...)` and `@import` in a style sheet: what the browser fetches for it. */
function styleSheetFetchTargets(css: string): string[] {
  const withoutComments = css.replace(/\/\*[\s\S]*?\*\//g, '');
  const quoted = `"((?:[^"\\\\]|\\\\.)*)"|'((?:[^'\\\\]|\\\\.)*)'`;
  const pattern = new RegExp(
    `url\\(\\s*(?:${quoted}|([^)\\s]*))\\s*\\)|@import\\s+(?:${quoted})`,
    'gi',
  );
  return [...withoutComments.matchAll(pattern)].map(
    (match) => match[1] ?? match[2] ?? match[3] ?? match[4] ?? match[5] ?? '',
  );
}

/** Style sheet text with comments and data: URLs removed: no URL may be left in it. */
function styleSheetOutsideDataUrls(css: string): string {
  return css
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/url\(\s*(["'])data:(?:(?!\1)[^\\]|\\.)*\1\s*\)/gi, 'url()')
    .replace(/url\(\s*data:[^)]*\)/gi, 'url()');
}

function offHostStyleSheetTargets(css: string, sheetUrl: string): string[] {
  return styleSheetFetchTargets(css).filter(
    (target) => !/^data:/i.test(target) && new URL(target, sheetUrl).origin !== ORIGIN,
  );
}

/** Hosts named by `http(s)://` URLs in a script, deduplicated. */
function hostsMentionedInScript(script: string): string[] {
  const hosts = [...script.matchAll(/https?:\/\/([^\s/"'`\\)<>$+:?#]*)/gi)].map((match) =>
    (match[1] ?? '').toLowerCase(),
  );
  return [...new Set(hosts)];
}

describe('the off-host detectors used below catch what they must', () => {
  test('HTML scan sees CDN references and inline code', async () => {
    const html =
      '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Titillium">' +
      '<script src="//unpkg.com/swagger-ui-dist/swagger-ui-bundle.js"></script>' +
      '<script>SwaggerUIBundle({})</script><div style="color:red"></div>';
    const scan = await scanHtml(html);
    expect(scan.references).toHaveLength(2);
    expect(scan.references.every((ref) => ABSOLUTE_OR_PROTOCOL_RELATIVE_URL.test(ref))).toBe(true);
    expect(scan.inlineCode).toBe(1);
    expect(scan.styleAttributes).toBe(1);
  });

  test('CSS scan flags remote url()/@import and ignores data: URLs and comments', () => {
    const css =
      `@import url("https://fonts.googleapis.com/css2?family=Open+Sans");\n` +
      `@import '//cdn.example/x.css';\n` +
      `a{background:url(https://cdn.example/i.png)}\n` +
      `b{background:url("data:image/svg+xml;charset=utf-8,<svg xmlns=\\"http://www.w3.org/2000/svg\\"/>")}\n` +
      `c{background:url(/docs/assets/x/ok.png)}\n/*# sourceMappingURL=https://maps.example/x.map */`;
    const sheet = `${ORIGIN}/docs/assets/x/a.css`;
    expect(offHostStyleSheetTargets(css, sheet)).toEqual([
      'https://fonts.googleapis.com/css2?family=Open+Sans',
      '//cdn.example/x.css',
      'https://cdn.example/i.png',
    ]);
    const remainder = styleSheetOutsideDataUrls(css);
    expect(remainder).toContain('https://fonts.googleapis.com');
    expect(remainder).not.toContain('www.w3.org');
    expect(remainder).not.toContain('maps.example');
  });

  test('script scan reports hosts, including scheme-only prefixes', () => {
    const hosts = hostsMentionedInScript(
      'fetch("https://cdn.jsdelivr.net/npm/x");s="http://"+h;u=`https://unpkg.com/${v}`',
    );
    expect(hosts).toEqual(['cdn.jsdelivr.net', '', 'unpkg.com']);
    expect(hosts.filter((host) => !(host in JS_HOSTS_NOT_LOADED))).toEqual([
      'cdn.jsdelivr.net',
      'unpkg.com',
    ]);
  });
});

describe('docsPlugin', () => {
  const app = buildApp();

  test('serves the page as HTML with a same-origin-only Content-Security-Policy', async () => {
    const response = await get(app, DOCS_PATH);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-cache');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toMatch(/https?:|\*|'unsafe-eval'/);
    expect(csp).not.toMatch(/script-src[^;]*'unsafe-inline'/);
    expect(await response.text()).toContain('<title>Secryn API</title>');
  });

  test('the page references only same-origin assets, and each one is served', async () => {
    const html = await (await get(app, DOCS_PATH)).text();
    expect(html).not.toMatch(ABSOLUTE_OR_PROTOCOL_RELATIVE_URL);
    const scan = await scanHtml(html);
    expect(scan.inlineCode).toBe(0);
    expect(scan.styleAttributes).toBe(0);

    const assetPaths = scan.references.filter((ref) => ref !== DOCS_SPEC_PATH);
    expect(assetPaths.length).toBeGreaterThanOrEqual(4);
    const loaded = new Map<string, string>();
    for (const ref of scan.references) {
      const url = new URL(ref, ORIGIN + DOCS_PATH);
      expect(url.origin).toBe(ORIGIN);
      const response = await get(app, url.pathname);
      expect(response.status, ref).toBe(200);
      const body = new Uint8Array(await response.arrayBuffer());
      expect(body.byteLength, ref).toBeGreaterThan(0);
      loaded.set(url.pathname, new TextDecoder().decode(body));
    }
    for (const path of assetPaths) {
      expect(path.startsWith(`${DOCS_ASSETS_PREFIX}/`)).toBe(true);
    }
    expect([...loaded.keys()].some((path) => path.endsWith('/swagger-ui-bundle.js'))).toBe(true);
    expect([...loaded.keys()].some((path) => path.endsWith('/swagger-ui.css'))).toBe(true);
  });

  test('also works at /docs/ because asset and spec URLs are absolute paths', async () => {
    const response = await get(app, `${DOCS_PATH}/`);
    expect(response.status).toBe(200);
    const { references } = await scanHtml(await response.text());
    expect(references.every((ref) => ref.startsWith('/'))).toBe(true);
  });

  test('assets carry their content type, nosniff and a one-year immutable cache', async () => {
    const { references } = await scanHtml(await (await get(app, DOCS_PATH)).text());
    const expectedType: Record<string, string> = {
      js: 'text/javascript; charset=utf-8',
      css: 'text/css; charset=utf-8',
      png: 'image/png',
    };
    for (const ref of references.filter((path) => path.startsWith(DOCS_ASSETS_PREFIX))) {
      const response = await get(app, ref);
      const extension = ref.slice(ref.lastIndexOf('.') + 1);
      expect(response.headers.get('content-type'), ref).toBe(expectedType[extension] ?? '?');
      expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    }
    expect((await get(app, `${DOCS_ASSETS_PREFIX}/0/swagger-ui-bundle.js`)).status).toBe(404);
  });

  test('style sheets fetch nothing off-host', async () => {
    const { references } = await scanHtml(await (await get(app, DOCS_PATH)).text());
    const sheets = references.filter((ref) => ref.endsWith('.css'));
    expect(sheets.length).toBeGreaterThanOrEqual(1);
    let targetsSeen = 0;
    for (const sheet of sheets) {
      const css = await (await get(app, sheet)).text();
      targetsSeen += styleSheetFetchTargets(css).length;
      expect(offHostStyleSheetTargets(css, ORIGIN + sheet)).toEqual([]);
      expect(styleSheetOutsideDataUrls(css)).not.toMatch(ABSOLUTE_OR_PROTOCOL_RELATIVE_URL);
      expect(css).not.toMatch(/@font-face|image-set\(/i);
    }
    // swagger-ui.css inlines its icons as data: URLs; seeing none would mean a broken scan.
    expect(targetsSeen).toBeGreaterThan(0);
  });

  test('the start-up script names no URL but the spec and disables the validator badge', async () => {
    const { references } = await scanHtml(await (await get(app, DOCS_PATH)).text());
    const initPath = references.find((ref) => ref.endsWith('/init.js'));
    expect(initPath).toBeDefined();
    const script = await (await get(app, initPath ?? '')).text();
    expect(script).not.toMatch(/https?:|\/\/[a-z]/i);
    const configText = script.match(/SwaggerUIBundle\((\{.*\})\);/)?.[1] ?? '{}';
    const config: unknown = JSON.parse(configText);
    expect(config).toMatchObject({
      url: DOCS_SPEC_PATH,
      validatorUrl: null,
      queryConfigEnabled: false,
      persistAuthorization: false,
    });
  });

  test('swagger-ui-bundle.js mentions only hosts it does not fetch on this page', async () => {
    const { references } = await scanHtml(await (await get(app, DOCS_PATH)).text());
    const bundlePath = references.find((ref) => ref.endsWith('/swagger-ui-bundle.js'));
    const bundle = await (await get(app, bundlePath ?? '')).text();
    const unexplained = hostsMentionedInScript(bundle).filter(
      (host) => !(host in JS_HOSTS_NOT_LOADED),
    );
    expect(unexplained).toEqual([]);
    expect(bundle).not.toMatch(/fonts\.(googleapis|gstatic)\.com|unpkg\.com|jsdelivr\.net/);
  });

  test('/docs/json is the OpenAPI 3.1 document of the app, without the docs routes', async () => {
    const response = await get(app, DOCS_SPEC_PATH);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toStartWith('application/json');
    const document = (await response.json()) as {
      openapi: string;
      info: { title: string; version: string };
      paths: Record<string, Record<string, { requestBody?: unknown }>>;
      components: { securitySchemes: Record<string, unknown> };
      security: unknown[];
    };
    expect(document.openapi).toMatch(/^3\.1\.\d+$/);
    expect(document.info).toMatchObject({ title: 'Secryn API', version: '0.0.0-test' });
    expect(Object.keys(document.paths)).toEqual(['/v1/thing']);
    expect(document.paths['/v1/thing']?.post?.requestBody).toMatchObject({
      content: {
        'application/json': {
          schema: { type: 'object', required: ['name'], properties: { name: { minLength: 1 } } },
        },
      },
    });
    expect(Object.keys(document.paths).some((path) => path.startsWith('/docs'))).toBe(false);
    expect(document.components.securitySchemes.bearerAuth).toMatchObject({
      type: 'http',
      scheme: 'bearer',
    });
    expect(document.security).toEqual([{ bearerAuth: [] }]);
  });
});
