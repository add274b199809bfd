import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fsyncDirectory, writeFileAtomic } from './atomic-file.ts';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'secryn-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  test('creates a file with the given mode and leaves no temp file', () => {
    const target = path.join(dir, 'master.key');
    writeFileAtomic(target, 'first\n', 0o600);
    expect(fs.readFileSync(target, 'utf8')).toBe('first\n');
    expect(fs.statSync(target).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dir)).toEqual(['master.key']);
  });

  test('replaces existing content and mode', () => {
    const target = path.join(dir, 'f');
    fs.writeFileSync(target, 'old content that is longer', { mode: 0o644 });
    writeFileAtomic(target, new Uint8Array([1, 2, 3]), 0o400);
    expect([...fs.readFileSync(target)]).toEqual([1, 2, 3]);
    expect(fs.statSync(target).mode & 0o777).toBe(0o400);
    expect(fs.readdirSync(dir)).toEqual(['f']);
  });

  test('mode is exact regardless of umask', () => {
    const previous = process.umask(0o077);
    try {
      const target = path.join(dir, 'g');
      writeFileAtomic(target, 'x', 0o644);
      expect(fs.statSync(target).mode & 0o777).toBe(0o644);
    } finally {
      process.umask(previous);
    }
  });

  test('failure leaves the target untouched and no temp file', () => {
    const target = path.join(dir, 'sub');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'keep'), 'k');
    expect(() => writeFileAtomic(target, 'x', 0o600)).toThrow(); // cannot rename over a non-empty dir
    expect(fs.readdirSync(dir)).toEqual(['sub']);
    expect(fs.readFileSync(path.join(target, 'keep'), 'utf8')).toBe('k');
  });
});

describe('writeFileAtomic without replacing', () => {
  test('creates a missing file; an existing one is left as it was, EEXIST, no temp file', () => {
    const target = path.join(dir, 'marker');
    writeFileAtomic(target, 'first\n', 0o600, { replace: false });
    expect(fs.readFileSync(target, 'utf8')).toBe('first\n');
    expect(fs.statSync(target).mode & 0o777).toBe(0o600);
    let code: string | undefined;
    try {
      writeFileAtomic(target, 'second\n', 0o600, { replace: false });
    } catch (error) {
      code = (error as NodeJS.ErrnoException).code;
    }
    expect(code).toBe('EEXIST');
    expect(fs.readFileSync(target, 'utf8')).toBe('first\n');
    expect(fs.readdirSync(dir)).toEqual(['marker']);
  });
});

describe('fsyncDirectory', () => {
  test('succeeds on a directory and throws on a missing one', () => {
    fsyncDirectory(dir);
    expect(() => fsyncDirectory(path.join(dir, 'nope'))).toThrow();
  });
});
