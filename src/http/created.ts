/**
 * Answers a create (docs/api.md §1): status 201 and `Location` naming the new object, whose body
 * is returned unchanged so the route's response schema still types it.
 */
export function respondCreated<T>(
  set: { status?: unknown; headers: Record<string, unknown> },
  location: string,
  body: T,
): T {
  set.status = 201;
  set.headers['location'] = location;
  return body;
}
