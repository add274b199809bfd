/**
 * The template language of `secryn template render` (README "Using Secryn from the command
 * line"): text in which `{{ secret "VAULT" "NAME" }}` stands for the value of secret NAME of
 * vault VAULT (an id `vlt_…` or `PROJECT/VAULT`), and `\{{` for a literal `{{`. Nothing else:
 * any other `{{` is an error naming its line, so a typo never renders silently as text.
 * Strings are double-quoted; inside them `\"` is a quote and `\\` a backslash.
 */
import { ExitCode } from '../cli/exit.ts';
import { ClientError } from './http.ts';

/** A reference to one secret, and where it stands (for error messages). */
export type SecretRef = { vault: string; name: string; line: number };

/** A parsed template: literal text and references, in order. */
export type Template = (string | SecretRef)[];

const STRING = String.raw`"((?:[^"\\\n]|\\["\\])*)"`;
/** The one tag there is, anchored at a `{{`. */
const TAG = new RegExp(String.raw`^\{\{[ \t]*secret[ \t]+${STRING}[ \t]+${STRING}[ \t]*\}\}`);

const unquote = (text: string) => text.replace(/\\(["\\])/g, '$1');

/** Parses template text; a malformed tag is a ClientError naming its line. */
export function parseTemplate(text: string, source = 'the template'): Template {
  const parts: Template = [];
  let literal = '';
  let line = 1;
  for (let i = 0; i < text.length; ) {
    if (text.startsWith('\\{{', i)) {
      literal += '{{';
      i += 3;
      continue;
    }
    if (text.startsWith('{{', i)) {
      const match = TAG.exec(text.slice(i, i + 4096));
      if (!match) {
        throw new ClientError(
          `${source}, line ${line}: "{{" must start {{ secret "VAULT" "NAME" }} (write \\{{ for a literal "{{")`,
          ExitCode.REJECTED,
          'TEMPLATE_INVALID',
        );
      }
      if (literal !== '') parts.push(literal);
      literal = '';
      parts.push({ vault: unquote(match[1]!), name: unquote(match[2]!), line });
      i += match[0].length;
      continue;
    }
    if (text[i] === '\n') line++;
    literal += text[i];
    i++;
  }
  if (literal !== '') parts.push(literal);
  return parts;
}

/** The distinct vaults a template refers to, in order of first use. */
export function vaultsOf(template: Template): string[] {
  return [...new Set(template.flatMap((part) => (typeof part === 'string' ? [] : [part.vault])))];
}

/**
 * Renders with `values` (vault → name → value). Every missing secret is named in one error, and
 * nothing is rendered: a half-filled file must never be written.
 */
export function renderTemplate(
  template: Template,
  values: ReadonlyMap<string, ReadonlyMap<string, string>>,
  source = 'the template',
): string {
  const missing: string[] = [];
  let out = '';
  for (const part of template) {
    if (typeof part === 'string') {
      out += part;
      continue;
    }
    const value = values.get(part.vault)?.get(part.name.normalize('NFC'));
    if (value === undefined) missing.push(`"${part.name}" in ${part.vault} (line ${part.line})`);
    else out += value;
  }
  if (missing.length > 0) {
    throw new ClientError(
      `${source} refers to secrets that do not exist or are not active: ${[...new Set(missing)].join(', ')}; nothing was written`,
      ExitCode.NOT_FOUND,
      'NOT_FOUND',
    );
  }
  return out;
}
