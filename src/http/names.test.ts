import { describe, expect, test } from 'bun:test';
import { Value } from '@sinclair/typebox/value';
import { Elysia, t } from 'elysia';
import fc from 'fast-check';
import { InvalidRequestError } from '../errors.ts';
import { toPublicError } from '../http/error-funnel.ts';
import {
  assertResourceName,
  isResourceName,
  isTag,
  MAX_TAGS,
  normalizeTags,
  RESOURCE_NAME_RULE,
  ResourceName,
  Tag,
  TAG_RULE,
  Tags,
  TAGS_RULE,
} from './names.ts';

/** Code points refused anywhere, written independently of the pattern in names.ts. */
function isRefusedCodePoint(code: number): boolean {
  return (
    code <= 0x1f ||
    (code >= 0x7f && code <= 0x9f) ||
    code === 0x061c ||
    code === 0x200b ||
    code === 0x200e ||
    code === 0x200f ||
    (code >= 0x2028 && code <= 0x202e) ||
    (code >= 0x2060 && code <= 0x2064) ||
    (code >= 0x2066 && code <= 0x2069) ||
    code === 0xfeff ||
    (code >= 0xfff9 && code <= 0xfffb) ||
    code === 0xfffe ||
    code === 0xffff ||
    (code >= 0xd800 && code <= 0xdfff) // Array.from yields a lone surrogate as its own item
  );
}

/** Reference model of the documented rule, by code points. */
function followsRule(value: string, maxLength: number, banned: string): boolean {
  const codePoints = Array.from(value);
  if (codePoints.length < 1 || codePoints.length > maxLength) return false;
  if (/^\s/.test(value) || /\s$/.test(value)) return false;
  return codePoints.every((ch) => !banned.includes(ch) && !isRefusedCodePoint(ch.codePointAt(0)!));
}

const INTERESTING_UNITS = [
  'a',
  'Z',
  '7',
  '-',
  '_',
  '.',
  ' ',
  'é',
  'ß',
  'ж',
  '名',
  '😀',
  '\u200d',
  '\u00a0',
  '\u3000',
  '/',
  ',',
  '=',
  '\t',
  '\n',
  '\r',
  '\0',
  '\x7f',
  '\x85',
  '\u061c',
  '\u200b',
  '\u200e',
  '\u2028',
  '\u202e',
  '\u2066',
  '\ufeff',
  '\ufffe',
  '\ud83d', // lone high surrogate
  '\ude00', // lone low surrogate
];

const interestingString = fc
  .array(fc.constantFrom(...INTERESTING_UNITS), { maxLength: 70 })
  .map((units) => units.join(''));

describe('resource names', () => {
  test('accepts ordinary names, inner spaces and unicode letters', () => {
    for (const name of [
      'a',
      'DATABASE_URL',
      'db password',
      'prod.api-key_2',
      'clé secrète',
      'пароль',
      '数据库密码',
      'ключ 😀',
      'family 👨‍👩‍👧',
      'a\\b',
      'x?y#z%20',
    ]) {
      expect(isResourceName(name)).toBe(true);
      expect(Value.Check(ResourceName, name)).toBe(true);
    }
  });

  test('255 characters pass, 256 are refused; characters are code points', () => {
    expect(isResourceName('a'.repeat(255))).toBe(true);
    expect(isResourceName('a'.repeat(256))).toBe(false);
    expect(isResourceName('😀'.repeat(255))).toBe(true); // 510 UTF-16 units
    expect(isResourceName('😀'.repeat(256))).toBe(false);
    expect(Value.Check(ResourceName, 'é'.repeat(255))).toBe(true);
    expect(Value.Check(ResourceName, 'é'.repeat(256))).toBe(false);
  });

  test('refuses empty, "/", control characters, edge whitespace and invisible controls', () => {
    for (const name of [
      '',
      '/',
      'a/b',
      '/leading',
      'tab\there',
      'new\nline',
      'nul\0',
      'del\x7f',
      'c1\x85',
      ' leading',
      'trailing ',
      '\u00a0nbsp',
      'ideographic\u3000',
      ' ',
      'bidi\u202eoverride',
      'isolate\u2066x',
      'zero\u200bwidth',
      'line\u2028sep',
      'bom\ufeff',
      'lone\ud83d',
      '\ude00lone',
    ]) {
      expect(isResourceName(name)).toBe(false);
      expect(Value.Check(ResourceName, name)).toBe(false);
    }
    expect(isResourceName(42)).toBe(false);
    expect(isResourceName(null)).toBe(false);
  });

  test('validator and TypeBox schema both match the reference model (property)', () => {
    fc.assert(
      fc.property(fc.oneof(interestingString, fc.string({ unit: 'binary' })), (value) => {
        const expected = followsRule(value, 255, '/');
        expect(isResourceName(value)).toBe(expected);
        expect(Value.Check(ResourceName, value)).toBe(expected);
      }),
      { numRuns: 3000 },
    );
  });

  test('assertResourceName returns the name or throws naming the field', () => {
    expect(assertResourceName('ok')).toBe('ok');
    const error = catchError(() => assertResourceName('bad/name', 'secret.name'));
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect((error as InvalidRequestError).details).toEqual({
      field: 'secret.name',
      reason: RESOURCE_NAME_RULE,
    });
  });

  test('a huge input is rejected quickly (no catastrophic backtracking)', () => {
    const huge = 'a'.repeat(1_000_000) + '/';
    const started = performance.now();
    expect(isResourceName(huge)).toBe(false);
    expect(isResourceName(' '.repeat(1_000_000))).toBe(false);
    expect(isResourceName('a'.repeat(1_000_000))).toBe(false);
    expect(performance.now() - started).toBeLessThan(500);
  });
});

describe('tags', () => {
  test('1..64 characters, "/" and "=" allowed, "," refused', () => {
    expect(isTag('a')).toBe(true);
    expect(isTag('x'.repeat(64))).toBe(true);
    expect(isTag('x'.repeat(65))).toBe(false);
    expect(isTag('team/payments')).toBe(true);
    expect(isTag('env=prod')).toBe(true);
    expect(isTag('production')).toBe(true);
    expect(isTag('étiquette')).toBe(true);
    expect(isTag('a,b')).toBe(false);
    expect(isTag('')).toBe(false);
    expect(isTag(' padded')).toBe(false);
    expect(isTag('ctl\u0001')).toBe(false);
    expect(Value.Check(Tag, 'x'.repeat(65))).toBe(false);
  });

  test('tag validator and schema match the reference model (property)', () => {
    fc.assert(
      fc.property(interestingString, (value) => {
        const expected = followsRule(value, 64, ',');
        expect(isTag(value)).toBe(expected);
        expect(Value.Check(Tag, value)).toBe(expected);
      }),
      { numRuns: 3000 },
    );
  });

  test('at most 32 tags', () => {
    const tags = (n: number) => Array.from({ length: n }, (_, i) => `t${i}`);
    expect(Value.Check(Tags, tags(MAX_TAGS))).toBe(true);
    expect(Value.Check(Tags, tags(33))).toBe(false);
    expect(normalizeTags(tags(32))).toHaveLength(32);
    expect(catchError(() => normalizeTags(tags(33)))).toMatchObject({
      details: { field: 'tags', reason: TAGS_RULE },
    });
    expect(catchError(() => normalizeTags('prod'))).toMatchObject({
      details: { field: 'tags', reason: TAGS_RULE },
    });
  });

  test('normalizeTags de-duplicates exactly, keeps first-seen order', () => {
    expect(normalizeTags(['prod', 'db', 'prod', 'Prod', 'db'])).toEqual(['prod', 'db', 'Prod']);
    expect(normalizeTags([])).toEqual([]);
  });

  test('normalizeTags names the offending index', () => {
    const error = catchError(() => normalizeTags(['ok', 'x'.repeat(65)], 'filter.tags'));
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect((error as InvalidRequestError).details).toEqual({
      field: 'filter.tags.1',
      reason: TAG_RULE,
    });
    expect(catchError(() => normalizeTags(['ok', 7]))).toMatchObject({
      details: { field: 'tags.1', reason: TAG_RULE },
    });
  });
});

describe('Unicode NFC', () => {
  const decomposed = 'cafe\u0301'; // e + combining acute accent
  const composed = 'caf\u00e9';
  // U+0958 is a composition exclusion: NFC turns it into two code points.
  const lengthened = '\u0958'.repeat(200);

  test('names and tags are returned in NFC; a tag given in both forms is kept once', () => {
    expect(assertResourceName(decomposed)).toBe(composed);
    expect(assertResourceName(composed)).toBe(composed);
    expect(normalizeTags([decomposed, composed, 'prod'])).toEqual([composed, 'prod']);
  });

  test('a name that NFC lengthens past the limit is refused, naming the field', () => {
    expect(isResourceName(lengthened)).toBe(true);
    expect(lengthened.normalize('NFC')).toHaveLength(400);
    expect(catchError(() => assertResourceName(lengthened, 'x.name'))).toMatchObject({
      details: { field: 'x.name', reason: RESOURCE_NAME_RULE },
    });
    expect(catchError(() => normalizeTags(['ok', '\u0958'.repeat(40)]))).toMatchObject({
      details: { field: 'tags.1', reason: TAG_RULE },
    });
  });
});

describe('through the HTTP error funnel', () => {
  const app = new Elysia()
    .onError(({ code, error, set }) => {
      const result = toPublicError(code, error);
      set.status = result.status;
      return result.body;
    })
    .post('/things', ({ body }) => ({ name: body.name, tags: normalizeTags(body.tags ?? []) }), {
      body: t.Object({ name: ResourceName, tags: t.Optional(Tags) }),
    });

  const post = async (body: unknown) => {
    const response = await app.handle(
      new Request('http://localhost/things', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }),
    );
    return { status: response.status, text: await response.text() };
  };

  test('a valid body passes and tags come back de-duplicated', async () => {
    const { status, text } = await post({ name: 'db password', tags: ['a', 'b', 'a'] });
    expect(status).toBe(200);
    expect(JSON.parse(text)).toEqual({ name: 'db password', tags: ['a', 'b'] });
  });

  test('names and tags are decoded to NFC; NFC lengthening past the limit is a 400, not a 500', async () => {
    const ok = await post({ name: 'cafe\u0301', tags: ['cafe\u0301', 'caf\u00e9'] });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.text)).toEqual({ name: 'caf\u00e9', tags: ['caf\u00e9'] });
    const cases: [unknown, string, string][] = [
      [{ name: '\u0958'.repeat(200) }, 'name', RESOURCE_NAME_RULE],
      [{ name: 'ok', tags: ['ok', '\u0958'.repeat(40)] }, 'tags.1', TAG_RULE],
    ];
    for (const [body, field, reason] of cases) {
      const { status, text } = await post(body);
      expect(status).toBe(400);
      expect(JSON.parse(text).error.details).toEqual({ field, reason });
      expect(text).not.toContain('\u0958');
    }
  });

  test('each rule reports its own safe reason and the field, never the input', async () => {
    const secretLooking = 'hunter2-SECRET';
    const cases: [unknown, string, string][] = [
      [{ name: `${secretLooking}/x` }, 'name', RESOURCE_NAME_RULE],
      [{ name: `${secretLooking}`.repeat(20) }, 'name', RESOURCE_NAME_RULE],
      [{ name: `${secretLooking}\n` }, 'name', RESOURCE_NAME_RULE],
      [{ name: '' }, 'name', RESOURCE_NAME_RULE],
      [{ name: 'ok', tags: ['a', 'b', 'c', `${secretLooking},`] }, 'tags.3', TAG_RULE],
      [{ name: 'ok', tags: ['a', secretLooking.repeat(5)] }, 'tags.1', TAG_RULE],
      [{ name: 'ok', tags: Array.from({ length: 33 }, (_, i) => `t${i}`) }, 'tags', TAGS_RULE],
    ];
    for (const [body, field, reason] of cases) {
      const { status, text } = await post(body);
      expect(status).toBe(400);
      expect(JSON.parse(text).error.details).toMatchObject({ field, reason });
      expect(text).not.toContain(secretLooking);
      expect(text).not.toContain('t32');
    }
  });
});

function catchError(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}
