/**
 * The console as served by the app: `/` with a strict CSP and no-referrer, assets embedded and
 * compressed, nothing on the page pointing off the host, under 200 KiB of compressed script.
 */
import { describe, expect, test } from 'bun:test';
import { Elysia } from 'elysia';
import { CONSOLE_CSP, consoleAssetSizes } from '../src/console/assets.ts';
import { consolePlugin } from '../src/console/plugin.ts';

const app = new Elysia().use(consolePlugin());
const get = (path: string, headers: Record<string, string> = {}) =>
  app.handle(new Request(`http://localhost${path}`, { headers }));

describe('console serving', () => {
  test('GET / is the page, with a strict CSP, no-referrer and nosniff', async () => {
    const response = await get('/');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = response.headers.get('content-security-policy')!;
    expect(csp).toBe(CONSOLE_CSP);
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await response.text();
    // No inline script or style, no absolute URL to any host.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toContain('<style');
    expect(html).not.toContain(' style=');
    expect(html).not.toMatch(/(?:src|href)="(?:https?:)?\/\//);
  });

  test('every asset the page names is served, compressed when asked, cached immutably', async () => {
    const html = await (await get('/')).text();
    const urls = [...html.matchAll(/(?:src|href)="(\/console\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(urls.length).toBe(2);
    for (const url of urls) {
      const plain = await get(url);
      expect(plain.status).toBe(200);
      expect(plain.headers.get('cache-control')).toContain('immutable');
      expect(plain.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
      const text = await plain.text();
      expect(text).not.toMatch(/https?:\/\/(?!www\.w3\.org)[a-z0-9.-]+\.[a-z]{2,}\//i);
      const zipped = await get(url, { 'accept-encoding': 'gzip, br' });
      expect(zipped.headers.get('content-encoding')).toBe('gzip');
    }
  });

  test('an unknown asset or an old tag is a 404 in the error shape', async () => {
    for (const path of ['/console/assets/000000000000/app.js', '/console/assets/x/y']) {
      const response = await get(path);
      expect(response.status).toBe(404);
    }
  });

  test('the script is well under 200 KiB compressed', () => {
    const sizes = consoleAssetSizes();
    const script = sizes.find((s) => s.name.endsWith('.js'))!;
    expect(script.gzipBytes).toBeLessThan(200 * 1024);
    console.log('console assets:', JSON.stringify(sizes));
  });
});
