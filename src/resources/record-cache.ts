/**
 * A bounded cache of resource records for the single reads (`GET /v1/resources/:id`, the vault
 * read API), which every deployment repeats far more often than it writes: the point read they
 * replace costs more than the rest of the handler together (a WAL read lock per statement).
 *
 * Correctness rests on the same rule as the list memos in store.ts: every change to `resources`
 * rows or to a vault's `restricted` flag clears the cache inside its write job, and only this
 * process writes resources. The CLI's `master-key rotate --reencrypt` does rewrite sealed values
 * from another process; a cached value sealed under the previous data key still opens (data keys
 * are never deleted), so a cached record is never wrong, at worst sealed under an older key.
 *
 * Entries are frozen (a caller that tried to change one would throw) and dropped oldest first
 * past `maxEntries` or `maxBytes` (sealed values count by size).
 */
export class RecordCache<T extends object> {
  private readonly entries = new Map<string, { value: T; bytes: number }>();
  private bytes = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number,
  ) {}

  get(key: string): T | undefined {
    return this.entries.get(key)?.value;
  }

  /** Caches `value` (frozen by the caller) under `key`, counting `bytes` against the budget. */
  set(key: string, value: T, bytes: number): void {
    if (bytes > this.maxBytes) return;
    this.delete(key);
    while (this.entries.size >= this.maxEntries || this.bytes + bytes > this.maxBytes) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.delete(oldest.value);
    }
    this.entries.set(key, { value, bytes });
    this.bytes += bytes;
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  /** Entries and bytes held (for tests). */
  get size(): { entries: number; bytes: number } {
    return { entries: this.entries.size, bytes: this.bytes };
  }

  /** Forgets the entry under `key`, if any. */
  delete(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.bytes -= entry.bytes;
  }
}
