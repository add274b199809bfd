import { describe, expect, test } from 'bun:test';
import { RecordCache } from './record-cache.ts';

describe('RecordCache', () => {
  test('drops the oldest entries past the entry limit', () => {
    const cache = new RecordCache<{ n: number }>(3, 1_000);
    for (let n = 1; n <= 5; n++) cache.set(`k${n}`, { n }, 10);
    expect(cache.get('k1')).toBeUndefined();
    expect(cache.get('k2')).toBeUndefined();
    expect(cache.get('k5')).toEqual({ n: 5 });
    expect(cache.size).toEqual({ entries: 3, bytes: 30 });
  });

  test('drops the oldest entries past the byte budget; refuses one larger than it', () => {
    const cache = new RecordCache<{ n: number }>(100, 100);
    cache.set('a', { n: 1 }, 40);
    cache.set('b', { n: 2 }, 40);
    cache.set('c', { n: 3 }, 40);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.size).toEqual({ entries: 2, bytes: 80 });
    cache.set('huge', { n: 4 }, 101);
    expect(cache.get('huge')).toBeUndefined();
    cache.set('b', { n: 5 }, 10); // replacing an entry releases its bytes
    expect(cache.size).toEqual({ entries: 2, bytes: 50 });
    cache.clear();
    expect(cache.size).toEqual({ entries: 0, bytes: 0 });
    expect(cache.get('c')).toBeUndefined();
  });
});
