/**
 * `secryn audit export` through the real CLI: the time bounds it accepts (real calendar dates
 * only) and how it ends when its reader goes away.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { appendAuditEntry, localAuditEntry } from '../src/ledger/audit-record.ts';
import { manualClock } from '../src/clock.ts';
import { loadConfig } from '../src/config/load.ts';
import { createInstance } from '../src/instance.ts';
import { cliCommand, memoryLogger, pinnedEnv, runCli, tempDir, writeConfig } from './harness.ts';

const DAY = 86_400_000;

/**
 * An instance in `dir` whose log holds `count` local `thing.read` entries, the first at `startMs`
 * and each `stepMs` after the one before; returns its config path.
 */
async function instanceWithEntries(
  dir: string,
  startMs: number,
  count: number,
  stepMs: number,
): Promise<string> {
  const config = writeConfig(dir);
  const clock = manualClock(startMs);
  const instance = createInstance(loadConfig({ path: config }).config, memoryLogger(), undefined, {
    clock,
  });
  instance.sqlite.transaction(() => {
    for (let i = 0; i < count; i++) {
      appendAuditEntry(instance.db, clock, localAuditEntry('thing.read', null));
      clock.advance(stepMs);
    }
  })();
  await instance.close();
  return config;
}

describe('secryn audit export', () => {
  const dir = tempDir();
  let config: string;

  beforeAll(async () => {
    // One entry at noon UTC each day from 2024-02-27 (2024 is a leap year) to 2024-03-02.
    config = await instanceWithEntries(dir.path, Date.UTC(2024, 1, 27, 12), 5, DAY);
  });
  afterAll(() => dir[Symbol.dispose]());

  const days = async (...bounds: string[]) => {
    const result = await runCli(['audit', 'export', '--config', config, ...bounds]);
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    return result.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as { at: string }).at.slice(0, 10));
  };

  test('real dates and times are accepted in every documented form', async () => {
    expect(await days('--since', '2024-02-29')).toEqual(['2024-02-29', '2024-03-01', '2024-03-02']);
    expect(await days('--until', '2024-02-29T12:00:00Z')).toEqual(['2024-02-27', '2024-02-28']);
    expect(
      await days('--since', '2024-02-29t11:59z', '--until', '2024-03-01 13:30:00+01:00'),
    ).toEqual(['2024-02-29', '2024-03-01']);
  });

  test('an impossible calendar date or time is refused naming the option, exit 2', async () => {
    for (const [option, value] of [
      ['--since', '2026-02-30'], // Date.parse makes it March 2
      ['--since', '2025-02-29'], // not a leap year
      ['--until', '2024-04-31'],
      ['--until', '2024-02-30T10:00:00+01:00'],
      ['--since', '2024-02-01T24:00:00Z'], // Date.parse makes it the next day
      ['--since', '2026-13-45'],
    ] as const) {
      const result = await runCli(['audit', 'export', '--config', config, option, value]);
      expect(`${value}: ${result.exitCode} ${result.stderr}`).toBe(
        `${value}: 2 secryn: ${option} must be an RFC 3339 timestamp, a YYYY-MM-DD date or a duration like 7d\n`,
      );
      expect(result.stdout).toBe('');
    }
  });
});

describe('secryn audit export | head', () => {
  const dir = tempDir();
  let config: string;

  beforeAll(async () => {
    // Far more than a pipe holds (64 KiB) plus one export chunk (64 KiB): about 1.5 MB of CSV.
    config = await instanceWithEntries(dir.path, Date.UTC(2026, 0, 1), 5000, 1000);
  });
  afterAll(() => dir[Symbol.dispose]());

  /** Runs `secryn <args> | <reader>` in bash; the status is the CLI's (pipefail), or the reader's. */
  async function piped(args: string[], reader: string) {
    const proc = Bun.spawn(
      ['bash', '-c', `set -o pipefail; "$@" | ${reader}`, 'bash', ...cliCommand(), ...args],
      { env: pinnedEnv(), stdout: 'pipe', stderr: 'pipe', stdin: 'ignore' },
    );
    const [stdout, stderr, exitCode] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    return { exitCode, stdout, stderr };
  }

  test('a reader that stops early ends the export quietly with exit 0', async () => {
    const full = await runCli(['audit', 'export', '--config', config, '--format', 'csv']);
    expect(full.stdout.length).toBeGreaterThan(1_000_000);
    for (const [format, reader] of [
      ['csv', 'head -2'],
      ['jsonl', 'head -c 10'],
    ] as const) {
      const result = await piped(
        ['audit', 'export', '--config', config, '--format', format],
        reader,
      );
      expect(`${format}: ${result.exitCode} ${result.stderr}`).toBe(`${format}: 0 `);
    }
    const csv = await piped(['audit', 'export', '--config', config, '--format', 'csv'], 'head -2');
    expect(csv.stdout).toBe(full.stdout.split('\n').slice(0, 2).join('\n') + '\n');
  }, 30_000);
});
