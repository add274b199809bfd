/**
 * The one per-connection cache: prepared statements, caches and per-database state, made once
 * per connection on first use and kept as long as the connection lives. One connection's values
 * never leak into another's (tests open many instances in one process).
 */
import type { Database } from 'bun:sqlite';

/**
 * A function that makes its value once per connection, on first use (with that caller's extra
 * arguments), and returns the same value for that connection afterwards.
 */
export function perConnection<T, A extends unknown[] = []>(
  make: (sqlite: Database, ...args: A) => T,
): (sqlite: Database, ...args: A) => T {
  const values = new WeakMap<Database, T>();
  return (sqlite, ...args) => {
    let value = values.get(sqlite);
    if (value === undefined) {
      value = make(sqlite, ...args);
      values.set(sqlite, value);
    }
    return value;
  };
}
