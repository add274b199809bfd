/** The error funnel's echo of client-chosen names: bounded, no control characters. */
import { expect, test } from 'bun:test';
import { ECHOED_NAME_MAX, echoedName, errorBody } from './error-funnel.ts';

test('echoedName keeps short clean names, strips escapes and control characters, bounds length', () => {
  expect(echoedName('project_ids.0')).toBe('project_ids.0');
  expect(echoedName('\u001b[1;31mred\u001b[0m')).toBe('red');
  expect(echoedName('a\u0000b\u007fc\u0085d\u009be\tf\ng')).toBe('abcdefg');
  expect(echoedName('x'.repeat(ECHOED_NAME_MAX))).toBe('x'.repeat(ECHOED_NAME_MAX));
  expect(echoedName('x'.repeat(ECHOED_NAME_MAX + 1))).toBe(`${'x'.repeat(ECHOED_NAME_MAX - 1)}…`);
  // Counted in characters, never cutting a surrogate pair; lone surrogates are dropped.
  expect(echoedName('😀'.repeat(100))).toBe(`${'😀'.repeat(ECHOED_NAME_MAX - 1)}…`);
  expect(echoedName('a\ud800b\udc00c')).toBe('abc');
  // Control characters padding a huge name do not let it through whole.
  expect(echoedName('\u0000'.repeat(1_000_000) + 'tail')).toBe('…');
});

test('errorBody applies it to details.field and leaves the rest', () => {
  const body = errorBody('INVALID_REQUEST', 'Invalid request parameters', {
    field: `${'f'.repeat(500)}\u0007`,
    reason: 'Unknown field',
    location: 'query',
  });
  expect(body.error.details).toEqual({
    field: `${'f'.repeat(ECHOED_NAME_MAX - 1)}…`,
    reason: 'Unknown field',
    location: 'query',
  });
});
