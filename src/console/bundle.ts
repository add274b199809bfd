/**
 * A Bun macro (imported `with { type: 'macro' }`): returns the console bundle, built at the time
 * the importing module is bundled — inside the executable for `bun build --compile`, or when
 * `bun src/main.ts` loads it from source — so the binary carries the console with no build
 * output on disk. Bun.build cannot run inside a macro (the bundler waits on it), so the build
 * runs in a child process: `scripts/build-console.ts`.
 */
import { join } from 'node:path';

/** One bundled file, as scripts/build-console.ts prints it. */
export type ConsoleFile = { name: string; type: string; text: string };

/** The console's files (`app.js`, `app.css`). @throws Error when the bundle does not build. */
export function consoleBundle(): ConsoleFile[] {
  const script = join(import.meta.dir, '..', '..', 'scripts', 'build-console.ts');
  const child = Bun.spawnSync([process.execPath, script], { stdout: 'pipe', stderr: 'pipe' });
  if (child.exitCode !== 0) {
    throw new Error(`the console bundle did not build:\n${child.stderr.toString()}`);
  }
  return (JSON.parse(child.stdout.toString()) as { files: ConsoleFile[] }).files;
}
