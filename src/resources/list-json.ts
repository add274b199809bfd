/**
 * The serialised API objects of listed resources, kept per connection until the next resource
 * write: a list page is then one index walk for its ids and a string join, instead of reading
 * ~50 rows, building their objects and serialising them on every request (issue 16: ~94 µs of
 * row reading and ~30 µs of JSON per page of 50). Metadata only — values are never listed, so
 * no plaintext is kept. The cache is exact: {@link resourcesGeneration} moves inside the write
 * job of every change to a resource or to a vault's visibility, and a moved generation empties it.
 */
import type { Database } from 'bun:sqlite';
import { perConnection } from '../db/per-connection.ts';
import { toResourceObject } from './objects.ts';
import { resourcesByIds, resourcesGeneration } from './store.ts';

/** Most objects kept per connection (~0.5 KB each); when full, the cache starts over. */
const MAX_OBJECTS = 20_000;

type ObjectCache = { generation: number; json: Map<string, string> };

const cacheOf = perConnection((): ObjectCache => ({ generation: -1, json: new Map() }));

/** The JSON array of the API objects of the resources `ids`, in that order. */
export function resourceObjectsJson(sqlite: Database, ids: readonly string[]): string {
  const cache = cacheOf(sqlite);
  const generation = resourcesGeneration(sqlite);
  if (cache.generation !== generation) {
    cache.json.clear();
    cache.generation = generation;
  }
  let missing = ids.filter((id) => !cache.json.has(id));
  if (missing.length > 0) {
    if (cache.json.size + missing.length > MAX_OBJECTS) {
      cache.json.clear();
      missing = [...ids];
    }
    for (const row of resourcesByIds(sqlite, missing)) {
      cache.json.set(row.id, JSON.stringify(toResourceObject(row)));
    }
  }
  let out = '[';
  for (let i = 0; i < ids.length; i++) {
    const json = cache.json.get(ids[i]!);
    // The ids come from a read of this same connection and generation: a row cannot vanish
    // between the two statements (reads and write jobs are synchronous).
    if (json === undefined) throw new Error(`resource ${ids[i]} vanished from its list`);
    out += i === 0 ? json : `,${json}`;
  }
  return `${out}]`;
}
