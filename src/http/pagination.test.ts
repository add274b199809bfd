import { describe, expect, test } from 'bun:test';
import { linkHeader, listResponse, readPage } from './pagination.ts';

describe('pagination', () => {
  test('defaults and offsets', () => {
    expect(readPage({})).toEqual({ page: 1, limit: 50, offset: 0 });
    expect(readPage({ page: '3', limit: '25' })).toEqual({ page: 3, limit: 25, offset: 50 });
  });

  test('Link: next and prev where they exist, relative, other parameters kept', () => {
    const url = 'http://internal:8420/v1/things?type=secret&page=2&limit=10';
    expect(linkHeader(url, readPage({ page: '2', limit: '10' }), 35)).toBe(
      '</v1/things?type=secret&page=3&limit=10>; rel="next", </v1/things?type=secret&page=1&limit=10>; rel="prev"',
    );
    expect(linkHeader(url, readPage({ page: '4', limit: '10' }), 35)).toBe(
      '</v1/things?type=secret&page=3&limit=10>; rel="prev"',
    );
    expect(linkHeader('http://x/v1/things', readPage({}), 50)).toBeUndefined();
    // Past the end: prev points at the last page that has items.
    expect(linkHeader('http://x/v1/things', readPage({ page: '9', limit: '10' }), 35)).toBe(
      '</v1/things?page=4&limit=10>; rel="prev"',
    );
  });

  test('listResponse builds the body and sets the header', () => {
    const set = { headers: {} as Record<string, unknown> };
    const body = listResponse(new Request('http://x/v1/t'), set, readPage({ limit: '1' }), 2, [
      'a',
    ]);
    expect(body).toEqual({ data: ['a'], pagination: { total: 2, page: 1, limit: 1 } });
    expect(set.headers.link).toBe('</v1/t?page=2&limit=1>; rel="next"');
  });
});
