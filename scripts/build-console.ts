/**
 * Bundles the web console (`console/src`) with Bun.build: minified browser JavaScript and CSS,
 * in memory. `src/console/bundle.ts` runs this as a separate process from a Bun macro, so the
 * bundle is built whenever the server is compiled (`npm run build`) or run from source, and no
 * build output is ever written or committed. Prints `{"files": [{name, type, text}]}`.
 *
 * Usage: `bun scripts/build-console.ts` (JSON on stdout; errors on stderr, exit 1).
 */
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dir, '..');

/** One bundled file: `app.js` or `app.css`. */
export type ConsoleFile = { name: string; type: string; text: string };

/** Builds the console bundle. @throws Error with Bun's build log. */
export async function buildConsole(): Promise<ConsoleFile[]> {
  const result = await Bun.build({
    entrypoints: [join(root, 'console', 'src', 'main.tsx')],
    target: 'browser',
    format: 'esm',
    minify: true,
    naming: { entry: 'app.[ext]', asset: '[name].[ext]' },
    define: { 'process.env.NODE_ENV': '"production"' },
    throw: false,
  });
  if (!result.success) throw new Error(result.logs.map(String).join('\n'));
  return Promise.all(
    result.outputs.map(async (output) => ({
      name: output.path.replace(/^.*\//, ''),
      type: output.type,
      text: await output.text(),
    })),
  );
}

if (import.meta.main) {
  try {
    process.stdout.write(JSON.stringify({ files: await buildConsole() }));
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  }
}
