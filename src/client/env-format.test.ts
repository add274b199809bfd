import { describe, expect, test } from 'bun:test';
import { DotenvError, formatEnv, parseDotenv } from './env-format.ts';

const TRICKY = [
  { name: 'PLAIN', value: 'hello' },
  { name: 'SPACES', value: '  two  words  ' },
  { name: 'NEWLINES', value: 'line one\nline two\r\nend\n' },
  { name: 'EQUALS', value: 'a=b==c' },
  { name: 'QUOTES', value: `it's "quoted" \`back\`` },
  { name: 'DOLLAR', value: '$HOME ${PATH} $(whoami)' },
  { name: 'BACKSLASH', value: 'C:\\path\\n not a newline' },
  { name: 'HASH', value: 'a #not a comment' },
  { name: 'UNICODE', value: 'café ☕ 日本語 🔐' },
  { name: 'EMPTY', value: '' },
];

describe('dotenv', () => {
  test('export → parse reproduces every value exactly', () => {
    expect(parseDotenv(formatEnv(TRICKY, 'dotenv'))).toEqual(TRICKY);
  });

  test('shell format is read back by a real shell byte for byte', () => {
    const script =
      formatEnv(TRICKY, 'shell') + TRICKY.map((e) => `printf '%s\\0' "$${e.name}"`).join('\n');
    const out = Bun.spawnSync(['sh', '-c', script]).stdout.toString();
    expect(out.split('\0').slice(0, -1)).toEqual(TRICKY.map((e) => e.value));
  });

  test('json format', () => {
    expect(JSON.parse(formatEnv(TRICKY, 'json'))).toEqual(
      Object.fromEntries(TRICKY.map((e) => [e.name, e.value])),
    );
  });

  test('reads what people write: comments, export, unquoted, single quotes, multi-line', () => {
    const text = [
      '# a comment',
      '',
      'export A=plain value # trailing comment',
      "B='single $NOT \\n expanded'",
      'C="multi',
      'line"',
      '  D = spaced  ',
      'E=',
      'F="x" # ok',
    ].join('\n');
    expect(parseDotenv(text)).toEqual([
      { name: 'A', value: 'plain value' },
      { name: 'B', value: 'single $NOT \\n expanded' },
      { name: 'C', value: 'multi\nline' },
      { name: 'D', value: 'spaced' },
      { name: 'E', value: '' },
      { name: 'F', value: 'x' },
    ]);
  });

  test('refuses what it cannot read, naming the line', () => {
    const cases: [string, number, RegExp][] = [
      ['A=1\nnot a line\n', 2, /expected "=" after not/],
      ['A=1\nB="open\n\n', 2, /unterminated/],
      ['A="x" junk', 1, /unexpected text/],
      ['A="\\q"', 1, /unknown escape/],
      ['A=1\nA=2', 2, /twice/],
      ['1A=x', 1, /expected NAME=value/],
    ];
    for (const [text, line, reason] of cases) {
      let error: unknown;
      try {
        parseDotenv(text);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(DotenvError);
      expect((error as DotenvError).line).toBe(line);
      expect((error as DotenvError).message).toMatch(reason);
    }
  });
});
