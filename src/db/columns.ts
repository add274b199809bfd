/** Column helpers shared by every table: epoch-millisecond timestamps and their RFC 3339 form. */
import { integer } from 'drizzle-orm/sqlite-core';

/**
 * A timestamp column stored as integer milliseconds since the Unix epoch (UTC). Integers sort
 * and compare cheaply in SQLite; the API renders them as RFC 3339 with {@link toRfc3339}.
 */
export const epochMs = (name: string) => integer(name, { mode: 'number' });

/** Renders epoch milliseconds as RFC 3339 UTC with second precision (`2024-01-15T10:30:00Z`). */
export function toRfc3339(ms: number): string;
export function toRfc3339(ms: number | null | undefined): string | null;
export function toRfc3339(ms: number | null | undefined): string | null {
  if (ms === null || ms === undefined) return null;
  const second = Math.floor(ms / 1000);
  if (second === lastSecond) return lastText;
  // toISOString is `YYYY-MM-DDTHH:MM:SS.sssZ` for years 0–9999: drop the milliseconds.
  lastText = new Date(ms).toISOString().slice(0, 19) + 'Z';
  lastSecond = second;
  return lastText;
}

// The last second rendered: a row's created_at and updated_at, and the rows of a list page, often
// fall in the same second, and a Date + toISOString per field was ~4 % of a list page's CPU.
let lastSecond = Number.NaN;
let lastText = '';
