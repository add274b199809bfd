/**
 * House rule: every source file in `src/` opens (after an optional shebang) with a comment saying
 * what it is for, so a reader knows a file's job before reading its code.
 */
import { expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const SRC = resolve(import.meta.dir, '..', 'src');

/** True when the text, after a shebang and blank lines, starts with a comment. */
export function opensWithComment(text: string): boolean {
  return /^(#![^\n]*\n)?\s*(\/\*|\/\/)/.test(text);
}

test('every source file opens with a comment saying what it is for', () => {
  const files = [...new Bun.Glob('**/*.ts').scanSync(SRC)].filter((f) => !f.endsWith('.test.ts'));
  expect(files.length).toBeGreaterThan(100);
  const bare = files.filter((f) => !opensWithComment(readFileSync(join(SRC, f), 'utf8')));
  expect(bare.sort()).toEqual([]);
});

test('the check tells a header from code', () => {
  expect(opensWithComment('/** Does X. */\nimport a from "a";')).toBe(true);
  expect(opensWithComment('#!/usr/bin/env bun\n/** Entry point. */\n')).toBe(true);
  expect(opensWithComment('import a from "a";\n/** Does X. */')).toBe(false);
});
