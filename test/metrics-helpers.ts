/**
 * Helpers for the metrics tests: `promtool check metrics` / `check rules` (Debian's `prometheus`
 * package; .ci/run installs it, and a CI run without it fails here rather than skipping), and a
 * reader for one sample of the exposition text.
 */
import { expect } from 'bun:test';

/** The promtool executable, or null outside CI when it is not installed. */
export function promtoolPath(): string | null {
  const path = Bun.which('promtool');
  if (path) return path;
  if (process.env.CI === 'true') {
    throw new Error('promtool is not installed: apt-get install prometheus (.ci/run does)');
  }
  console.warn('promtool not installed (apt-get install prometheus): skipping its check');
  return null;
}

/** Runs `promtool check metrics` on exposition text and expects no problem at all. */
export async function promtool(text: string): Promise<void> {
  const path = promtoolPath();
  if (!path) return;
  const proc = Bun.spawn([path, 'check', 'metrics'], {
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
  });
  proc.stdin.write(text);
  await proc.stdin.end();
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  expect(`${out}${err}`.trim()).toBe('');
  expect(code).toBe(0);
}

/** Runs `promtool check rules FILE` and expects success. */
export async function promtoolRules(file: string): Promise<string> {
  const path = promtoolPath();
  if (!path) return '';
  const proc = Bun.spawn([path, 'check', 'rules', file], { stdout: 'pipe', stderr: 'pipe' });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  expect({ code, err }).toEqual({ code: 0, err: '' });
  return out;
}

/** The value of the sample `name{labels}` (exactly these labels), or NaN when absent. */
export function sample(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      found[pair[1]!] = pair[2]!;
    }
    if (
      JSON.stringify(Object.entries(found).sort()) !== JSON.stringify(Object.entries(labels).sort())
    ) {
      continue;
    }
    return match[3] === '+Inf' ? Infinity : match[3] === '-Inf' ? -Infinity : Number(match[3]);
  }
  return NaN;
}
