/**
 * Answers "which methods does this path accept?" from the app's registered routes, so that a
 * known path with the wrong method is a 405 with `Allow`, not a 404. Built once, lazily.
 */
export class RouteTable {
  private compiled?: { pattern: RegExp; method: string; path: string }[];

  constructor(private readonly routes: () => { method: string; path: string }[]) {}

  /** Methods registered for a concrete request path, e.g. `['GET', 'PUT', 'DELETE']`. */
  allowedMethods(path: string): string[] {
    const methods = new Set<string>();
    for (const route of this.table()) if (route.pattern.test(path)) methods.add(route.method);
    return [...methods];
  }

  /**
   * The registered template (`/v1/resources/:id`) a request URL falls under, whatever its
   * method, or undefined: for requests answered before routing (the metrics label them).
   */
  templateOf(url: string): string | undefined {
    const start = url.indexOf('/', url.indexOf('//') + 2);
    if (start === -1) return undefined;
    const query = url.indexOf('?', start);
    const path = url.slice(start, query === -1 ? undefined : query);
    return this.table().find((route) => route.pattern.test(path))?.path;
  }

  private table() {
    this.compiled ??= this.routes().map((route) => ({
      method: route.method.toUpperCase(),
      path: route.path,
      pattern: toPattern(route.path),
    }));
    return this.compiled;
  }
}

function toPattern(path: string): RegExp {
  const body = path
    .split('/')
    .map((segment) => {
      if (segment === '*') return '.*';
      if (segment.startsWith(':')) return '[^/]+';
      return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return new RegExp(`^${body}/?$`);
}
