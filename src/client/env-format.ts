/**
 * Secrets as environment files: writing them (`dotenv`, `shell`, `json`) and reading dotenv
 * back, so that `env export` → `env import` reproduces every value exactly (spaces, newlines,
 * `=`, quotes, `$`, unicode). The dotenv parser is strict: a line it cannot read is an error
 * naming the line, never skipped (a silently dropped secret is worse than a failed import).
 *
 * dotenv as written here: `NAME="value"` with `\\ \" \n \r \t \$` escaped, which the common
 * dotenv readers (Node's dotenv, python-dotenv, docker compose) read back the same way.
 * Accepted on input: blank lines, `# comments`, an optional `export ` prefix, unquoted values
 * (trimmed; a ` #` starts a comment), single quotes (literal) and double quotes (those
 * escapes), both of which may span lines.
 */

/** What an environment variable name may be (POSIX portable names). */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export type EnvEntry = { name: string; value: string };

export const ENV_FORMATS = ['dotenv', 'json', 'shell'] as const;
export type EnvFormat = (typeof ENV_FORMATS)[number];

/** The entries in `format` (names must already be valid for dotenv and shell). */
export function formatEnv(entries: readonly EnvEntry[], format: EnvFormat): string {
  if (format === 'json') {
    return (
      JSON.stringify(Object.fromEntries(entries.map((e) => [e.name, e.value])), null, 2) + '\n'
    );
  }
  return entries
    .map(({ name, value }) =>
      format === 'shell'
        ? `export ${name}='${value.replaceAll("'", `'\\''`)}'\n`
        : `${name}="${escapeDouble(value)}"\n`,
    )
    .join('');
}

function escapeDouble(value: string): string {
  return value.replace(/[\\"\n\r\t$]/g, (c) => DOUBLE_ESCAPES_OUT[c]!);
}
const DOUBLE_ESCAPES_OUT: Record<string, string> = {
  '\\': '\\\\',
  '"': '\\"',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  $: '\\$',
};
const DOUBLE_ESCAPES_IN: Record<string, string> = {
  '\\': '\\',
  '"': '"',
  n: '\n',
  r: '\r',
  t: '\t',
  $: '$',
  "'": "'",
};

/** A dotenv file that cannot be read, with the (1-based) line where reading stopped. */
export class DotenvError extends Error {
  constructor(
    readonly line: number,
    reason: string,
  ) {
    super(`line ${line}: ${reason}`);
    this.name = 'DotenvError';
  }
}

/** Parses dotenv text; a name given twice is an error (which one was meant is unclear). */
export function parseDotenv(text: string): EnvEntry[] {
  const entries: EnvEntry[] = [];
  const seen = new Set<string>();
  const source = text.replace(/^\uFEFF/, '').replace(/\r\n/g, '\n');
  let i = 0;
  let line = 1;
  const peek = () => source[i];
  while (i < source.length) {
    // Leading blanks, then a blank line or a comment.
    while (peek() === ' ' || peek() === '\t') i++;
    if (peek() === '\n') {
      i++;
      line++;
      continue;
    }
    if (i >= source.length) break;
    if (peek() === '#') {
      while (i < source.length && peek() !== '\n') i++;
      continue;
    }
    const startLine = line;
    if (source.startsWith('export ', i)) {
      i += 7;
      while (peek() === ' ' || peek() === '\t') i++;
    }
    const nameMatch = /^[A-Za-z_][A-Za-z0-9_]*/.exec(source.slice(i, i + 1024));
    if (!nameMatch) throw new DotenvError(line, 'expected NAME=value');
    const name = nameMatch[0];
    i += name.length;
    while (peek() === ' ' || peek() === '\t') i++;
    if (peek() !== '=') throw new DotenvError(line, `expected "=" after ${name}`);
    i++;
    while (peek() === ' ' || peek() === '\t') i++;
    let value = '';
    const quote = peek();
    if (quote === '"' || quote === "'") {
      i++;
      for (;;) {
        if (i >= source.length) throw new DotenvError(startLine, `unterminated ${quote} quote`);
        const c = source[i]!;
        if (c === quote) {
          i++;
          break;
        }
        if (c === '\n') line++;
        if (c === '\\' && quote === '"') {
          const next = source[i + 1];
          const escaped = next === undefined ? undefined : DOUBLE_ESCAPES_IN[next];
          if (escaped === undefined) {
            throw new DotenvError(line, `unknown escape \\${next ?? ''} in a "…" value`);
          }
          value += escaped;
          i += 2;
          continue;
        }
        value += c;
        i++;
      }
      // After the closing quote: blanks, then an optional comment, then the end of the line.
      while (peek() === ' ' || peek() === '\t') i++;
      if (peek() === '#') while (i < source.length && peek() !== '\n') i++;
      if (i < source.length && peek() !== '\n') {
        throw new DotenvError(line, `unexpected text after the quoted value of ${name}`);
      }
    } else {
      const end = source.indexOf('\n', i);
      let raw = source.slice(i, end === -1 ? source.length : end);
      i += raw.length;
      const comment = raw.search(/[ \t]#/);
      if (comment !== -1) raw = raw.slice(0, comment);
      value = raw.trim();
      if (/["'`]/.test(value[0] ?? '')) throw new DotenvError(line, `unterminated quote`);
    }
    if (seen.has(name)) throw new DotenvError(startLine, `${name} is given twice`);
    seen.add(name);
    entries.push({ name, value });
  }
  return entries;
}
