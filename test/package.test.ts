/*
 * What package.json promises about installing Secryn. The Node.js versions (`engines`): Node
 * only runs npm and the install scripts (Bun runs everything else), so each major's floor must
 * admit every locked package's own `engines.node`. Air-gapped at install time too: `npm ci` runs @scarf/scarf's postinstall (pulled in by
 * swagger-ui-dist), which reports the install to scarf.sh unless the root package.json opts
 * out. This runs scarf's own report script the way npm runs it for this project, pointed at a
 * local listener (its SCARF_LOCAL_PORT switch) instead of scarf.sh, and requires that nothing
 * arrives there.
 */
import { expect, test } from 'bun:test';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './harness.ts';

const SCARF_DIR = join(REPO_ROOT, 'node_modules/@scarf/scarf');

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));

// Packages whose `engines` claim more than they need: the contract test runs Prism on the Node
// this project supports (20.19+), so the claim is checked by running it, not by reading it.
const ENGINES_CLAIM_TOO_MUCH = new Set([
  'node_modules/@stoplight/prism-cli',
  'node_modules/@stoplight/prism-core',
  'node_modules/@stoplight/prism-http',
  'node_modules/@stoplight/prism-http-server',
]);

test('engines.node admits every locked package (the dev tools included), and the node here meets it', () => {
  const range = String(pkg.engines?.node);
  // The oldest release of each major the range admits: each must satisfy every package.
  const floors = [...range.matchAll(/(?:\^|>=)(\d+\.\d+\.\d+)/g)].map((m) => m[1]!);
  expect(floors.length).toBeGreaterThan(0);
  for (const floor of floors) expect(Bun.semver.satisfies(floor, range)).toBe(true);
  const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8'));
  const refusing = Object.entries(lock.packages as Record<string, { engines?: { node?: string } }>)
    .filter(([name, entry]) => name !== '' && entry.engines?.node !== undefined)
    .filter(([name]) => !ENGINES_CLAIM_TOO_MUCH.has(name))
    .flatMap(([name, entry]) =>
      floors
        .filter((floor) => !Bun.semver.satisfies(floor, entry.engines!.node!))
        .map((floor) => `${name} (${entry.engines!.node}) refuses ${floor}`),
    );
  expect(refusing).toEqual([]);
  const node = Bun.which('node');
  if (node) {
    const version = Bun.spawnSync([node, '--version']).stdout.toString().trim().slice(1);
    expect(Bun.semver.satisfies(version, range)).toBe(true);
  }
});

test('package.json turns scarf analytics off', () => {
  expect(pkg.scarfSettings).toEqual({ enabled: false });
});

test.skipIf(!existsSync(join(SCARF_DIR, 'report.js')))(
  "scarf's postinstall, run as npm runs it here, sends nothing",
  async () => {
    const received: string[] = [];
    const listener = Bun.serve({
      hostname: '::',
      port: 0,
      fetch: async (request) => {
        received.push(`${request.method} ${new URL(request.url).pathname}`);
        return new Response('ok');
      },
    });
    try {
      const env: Record<string, string> = {};
      for (const [key, value] of Object.entries(process.env)) {
        // The opt-outs an operator's shell might carry would hide a missing package.json switch.
        if (value === undefined || /^(SCARF_|DO_NOT_TRACK$|npm_)/i.test(key)) continue;
        env[key] = value;
      }
      Object.assign(env, {
        INIT_CWD: REPO_ROOT,
        SCARF_LOCAL_PORT: String(listener.port),
        SCARF_VERBOSE: 'true',
      });
      const runtime = Bun.which('node') ?? process.execPath;
      const proc = Bun.spawn([runtime, join(SCARF_DIR, 'report.js')], {
        cwd: SCARF_DIR,
        env,
        stdin: 'ignore',
        stdout: 'pipe',
        stderr: 'pipe',
      });
      const [stdout, stderr] = await Promise.all([
        new Response(proc.stdout).text(),
        new Response(proc.stderr).text(),
        proc.exited,
      ]);
      expect(received).toEqual([]);
      // Scarf's verbose log names why it stopped: the package.json switch, not some failure
      // (no npm, a timeout) that would hide a reporting install elsewhere.
      expect(`${stdout}${stderr}`).toMatch(
        /Scarf has been disabled via a package\.json|User has opted out/,
      );
    } finally {
      listener.stop(true);
    }
  },
  60_000,
);
