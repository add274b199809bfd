/*
 * The docs page served by a *compiled* executable: builds a tiny server around docsPlugin with
 * the release flags (`bun build --compile --minify --bytecode --format=esm`), deletes the build
 * tree (including the swagger-ui-dist copy it was built from), runs the binary from another
 * directory and fetches the page and every asset over a real loopback socket. Each response
 * must be byte-identical to what docsPlugin serves in-process, where src/http/docs.test.ts
 * checks that none of it loads anything off-host.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Elysia } from 'elysia';
import { DOCS_PATH, DOCS_SPEC_PATH, docsPlugin } from '../src/http/docs.ts';

const REPO_ROOT = path.resolve(import.meta.dir, '..');
const VERSION = '0.0.0-offline';

const ENTRY_SOURCE = `
import { Elysia, t } from 'elysia';
import { docsPlugin } from './src/http/docs.ts';

const app = new Elysia()
  .post('/v1/thing', ({ body }) => body, { body: t.Object({ name: t.String() }) })
  .use(docsPlugin({ version: '${VERSION}' }))
  .listen({ hostname: '127.0.0.1', port: 0 });
console.log(JSON.stringify({ port: app.server?.port }));
`;

const tempDirs: string[] = [];
const makeTempDir = (): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'secryn-'));
  tempDirs.push(dir);
  return dir;
};

/**
 * A build tree whose node_modules links every installed package except swagger-ui-dist, which
 * is copied, so that deleting the tree after the build removes the only files the binary could
 * otherwise read the Swagger UI assets from at run time (short of the repo's own copy, which
 * the entry does not resolve to).
 */
function prepareBuildTree(): string {
  const buildDir = makeTempDir();
  fs.mkdirSync(path.join(buildDir, 'src/http'), { recursive: true });
  // The docs plugin and what it imports: the document builder takes the error codes from the
  // error funnel, which takes their type from src/errors.ts.
  for (const file of ['docs.ts', 'docs-assets.d.ts', 'openapi-document.ts', 'error-funnel.ts']) {
    fs.copyFileSync(path.join(REPO_ROOT, 'src/http', file), path.join(buildDir, 'src/http', file));
  }
  fs.copyFileSync(path.join(REPO_ROOT, 'src/errors.ts'), path.join(buildDir, 'src/errors.ts'));
  fs.writeFileSync(path.join(buildDir, 'entry.ts'), ENTRY_SOURCE);
  const modulesDir = path.join(buildDir, 'node_modules');
  fs.mkdirSync(modulesDir);
  for (const name of fs.readdirSync(path.join(REPO_ROOT, 'node_modules'))) {
    const source = path.join(REPO_ROOT, 'node_modules', name);
    if (name === 'swagger-ui-dist') {
      fs.cpSync(source, path.join(modulesDir, name), { recursive: true });
    } else {
      fs.symlinkSync(source, path.join(modulesDir, name));
    }
  }
  return buildDir;
}

async function readFirstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of stream) {
    text += decoder.decode(chunk, { stream: true });
    const newline = text.indexOf('\n');
    if (newline >= 0) return text.slice(0, newline);
  }
  return text;
}

async function referencesIn(html: string): Promise<string[]> {
  const references: string[] = [];
  await new HTMLRewriter()
    .on('[src], [href]', {
      element(element) {
        const value = element.getAttribute('src') ?? element.getAttribute('href');
        if (value !== null) references.push(value);
      },
    })
    .transform(new Response(html))
    .text();
  return references;
}

describe('docs in a compiled executable', () => {
  let server: ReturnType<typeof Bun.spawn> | undefined;
  let baseUrl = '';
  const inProcess = new Elysia().use(docsPlugin({ version: VERSION }));

  beforeAll(async () => {
    const buildDir = prepareBuildTree();
    const binaryPath = path.join(makeTempDir(), 'secryn-docs');
    const build = Bun.spawnSync(
      [
        process.execPath,
        'build',
        '--compile',
        '--minify',
        '--bytecode',
        '--format=esm',
        path.join(buildDir, 'entry.ts'),
        '--outfile',
        binaryPath,
      ],
      { cwd: buildDir, stdout: 'pipe', stderr: 'pipe' },
    );
    if (build.exitCode !== 0 || !fs.existsSync(binaryPath)) {
      throw new Error(`bun build failed (${build.exitCode}): ${build.stderr.toString()}`);
    }
    fs.rmSync(buildDir, { recursive: true, force: true });

    const runDir = makeTempDir();
    server = Bun.spawn([binaryPath], {
      cwd: runDir,
      env: { PATH: '/usr/bin:/bin', HOME: runDir },
      stdout: 'pipe',
      stderr: 'inherit',
    });
    const firstLine = await readFirstLine(server.stdout as ReadableStream<Uint8Array>);
    const { port } = JSON.parse(firstLine) as { port?: number };
    if (!port) throw new Error(`binary printed no port: ${firstLine}`);
    baseUrl = `http://127.0.0.1:${port}`;
  }, 180_000);

  afterAll(async () => {
    server?.kill('SIGTERM');
    await server?.exited;
    for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('serves the page and every asset it references, byte for byte', async () => {
    const pageResponse = await fetch(baseUrl + DOCS_PATH);
    expect(pageResponse.status).toBe(200);
    expect(pageResponse.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await pageResponse.text();
    const expectedHtml = await (
      await inProcess.handle(new Request(`http://localhost${DOCS_PATH}`))
    ).text();
    expect(html).toBe(expectedHtml);

    const references = await referencesIn(html);
    expect(references.filter((ref) => ref.startsWith('/docs/assets/')).length).toBeGreaterThan(4);
    for (const ref of references) {
      const response = await fetch(new URL(ref, baseUrl + DOCS_PATH));
      expect(response.status, ref).toBe(200);
      const body = Buffer.from(await response.arrayBuffer());
      expect(body.byteLength, ref).toBeGreaterThan(0);
      if (ref === DOCS_SPEC_PATH) continue;
      const expected = Buffer.from(
        await (await inProcess.handle(new Request(`http://localhost${ref}`))).arrayBuffer(),
      );
      expect(body.equals(expected), ref).toBe(true);
      expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    }
  });

  test('the OpenAPI document lists the app route and not the docs routes', async () => {
    const document = (await (await fetch(baseUrl + DOCS_SPEC_PATH)).json()) as {
      info: { title: string; version: string };
      paths: Record<string, unknown>;
    };
    expect(document.info).toMatchObject({ title: 'Secryn API', version: VERSION });
    expect(Object.keys(document.paths)).toEqual(['/v1/thing']);
  });
});
