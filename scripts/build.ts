/**
 * `npm run build`: compiles Secryn into one self-contained executable (default `dist/secryn`)
 * for the platform this runs on, then proves the result works by running it from an empty
 * directory. Exits non-zero (and removes the binary) when either step fails.
 *
 * Usage: `bun scripts/build.ts [--outfile PATH] [--target bun-<os>-<arch>[-…]]`
 */
import { mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pkg from '../package.json' with { type: 'json' };

const repoRoot = resolve(import.meta.dir, '..');

/** Where `npm run build` writes the executable. */
export const DEFAULT_OUTFILE = join(repoRoot, 'dist', 'secryn');

export type BuildOptions = {
  /** Path of the executable to write (parent directories are created). */
  outfile?: string;
  /** A `bun-<os>-<arch>[-<simd>][-<libc>]` target; default {@link currentTarget}. */
  target?: Bun.Build.CompileTarget;
};

export type BuildResult = {
  outfile: string;
  target: Bun.Build.CompileTarget;
  bytes: number;
  buildMs: number;
  /** What `secryn version` printed during the smoke test. */
  versionLine: string;
};

/**
 * The compile target of the machine running the build. Linux without glibc is taken to be
 * musl. The SIMD level is left to Bun's default, so on a CPU without AVX2 pass
 * `--target bun-linux-x64-baseline` (Bun then needs that runtime, which it downloads).
 */
export function currentTarget(): Bun.Build.CompileTarget {
  const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
  if (process.platform === 'darwin') return `bun-darwin-${arch}`;
  if (process.platform === 'win32') return `bun-windows-${arch}`;
  const report = process.report?.getReport?.() as
    | { header?: { glibcVersionRuntime?: string } }
    | undefined;
  return report?.header?.glibcVersionRuntime ? `bun-linux-${arch}` : `bun-linux-${arch}-musl`;
}

/**
 * Compiles `src/main.ts` with minification and ESM bytecode (about half the start-up time of
 * a plain compile; plain `bytecode` without `format: 'esm'` cannot hold the top-level await in
 * `main.ts`). The executable does not read `.env` or `bunfig.toml` from the directory it is
 * started in: a secrets manager takes configuration only from `--config`, `SECRYN_CONFIG` or
 * its defaults, and a stray `bunfig.toml` could otherwise preload arbitrary code into it.
 * `SECRYN_TEST_HOOKS` is defined false, so test-only code (crash points) is not in the binary.
 * Then runs {@link smokeTest}; a binary that fails it is deleted (and so is the previous one).
 * @throws Error with Bun's build log or the failing command's output.
 */
export async function buildBinary(options: BuildOptions = {}): Promise<BuildResult> {
  const outfile = resolve(options.outfile ?? DEFAULT_OUTFILE);
  const target = options.target ?? currentTarget();
  // Built beside the destination and renamed over it only once it passes the smoke test: a
  // process running or starting the old binary meanwhile is not disturbed, and a failed build
  // removes the old one too, so that no later step ships a binary older than the source.
  const staging = `${outfile}.building-${process.pid}`;
  const fail = (error: Error): never => {
    rmSync(staging, { force: true });
    rmSync(outfile, { force: true });
    throw error;
  };
  const started = performance.now();
  const result = await Bun.build({
    // The backup worker is a second entry point: a Worker's module must be embedded on its own
    // (src/backup/off-thread.ts resolves it as ./backup/backup-worker.ts in the binary).
    entrypoints: [
      join(repoRoot, 'src', 'main.ts'),
      join(repoRoot, 'src', 'backup', 'backup-worker.ts'),
    ],
    compile: { target, outfile: staging, autoloadDotenv: false, autoloadBunfig: false },
    minify: true,
    bytecode: true,
    format: 'esm',
    // Each dynamic import() its own chunk: `serve` then loads only the code it runs, not every
    // command's (~4 ms CPU and ~2 MiB less at start-up than one module holding everything).
    splitting: true,
    // Compiles test-only hooks (crash points) out of the release: see src/types.d.ts.
    define: { SECRYN_TEST_HOOKS: 'false' },
    throw: false,
  });
  const buildMs = performance.now() - started;
  if (!result.success) {
    return fail(new Error(`bun build failed:\n${result.logs.map(String).join('\n')}`));
  }
  let versionLine: string;
  try {
    versionLine = await smokeTest(staging);
  } catch (error) {
    return fail(error instanceof Error ? error : new Error(String(error)));
  }
  renameSync(staging, outfile);
  return { outfile, target, bytes: statSync(outfile).size, buildMs, versionLine };
}

/**
 * Runs the executable from an empty temporary directory the way a new user would:
 * `secryn version` must print this package's version, and `secryn init` + `secryn migrate`
 * against a fresh config must succeed, which proves the embedded migrations load without the
 * source tree. Returns the version line.
 * @throws Error naming the command, its exit code and its output.
 */
export async function smokeTest(binary: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'secryn-build-'));
  try {
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, NO_COLOR: '1' };
    const run = async (args: string[]) => {
      const child = Bun.spawn([binary, ...args], { cwd: dir, env, stdout: 'pipe', stderr: 'pipe' });
      const [stdout, stderr, code] = await Promise.all([
        new Response(child.stdout).text(),
        new Response(child.stderr).text(),
        child.exited,
      ]);
      if (code !== 0) {
        throw new Error(
          `smoke test: \`secryn ${args.join(' ')}\` exited ${code}\n${stdout}${stderr}`.trimEnd(),
        );
      }
      return stdout;
    };
    const versionLine = (await run(['version'])).trim();
    if (!versionLine.startsWith(`secryn ${pkg.version} `)) {
      throw new Error(
        `smoke test: \`secryn version\` printed ${JSON.stringify(versionLine)}, ` +
          `expected "secryn ${pkg.version} (bun …)"`,
      );
    }
    const config = join(dir, 'secryn.toml');
    writeFileSync(
      config,
      `[storage]\npath = "smoke.db"\n[encryption]\nmaster_key_file = "master.key"\n` +
        `[log]\nlevel = "warn"\n`,
    );
    await run(['init', '--config', config]);
    await run(['migrate', '--config', config]);
    return versionLine;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `dist/secryn` inside the working directory, the absolute path elsewhere. */
function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : path;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { outfile: { type: 'string' }, target: { type: 'string' } },
    strict: true,
  });
  try {
    const built = await buildBinary({
      outfile: values.outfile,
      target: values.target as Bun.Build.CompileTarget | undefined,
    });
    const mib = (built.bytes / 1024 / 1024).toFixed(1);
    console.log(
      `built ${displayPath(built.outfile)} ` +
        `(${built.target}, minify + bytecode + esm + splitting) in ${(built.buildMs / 1000).toFixed(1)} s\n` +
        `size: ${mib} MiB (${built.bytes} bytes)\n` +
        `smoke test passed: ${built.versionLine}`,
    );
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  }
}
