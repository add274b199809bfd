/** Values made once per database connection (prepared statements, caches). */
import type { Database } from 'bun:sqlite';

/**
 * A function that makes its value once per connection, on first use, and keeps it as long as
 * the connection lives: prepared statements, caches. One connection's values never leak into
 * another's (tests open many instances in one process).
 */
export function perConnection<T>(make: (sqlite: Database) => T): (sqlite: Database) => T {
  const values = new WeakMap<Database, T>();
  return (sqlite) => {
    let value = values.get(sqlite);
    if (value === undefined) {
      value = make(sqlite);
      values.set(sqlite, value);
    }
    return value;
  };
}
