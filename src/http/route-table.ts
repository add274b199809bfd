/**
 * Answers "which methods does this path accept?" from the app's registered routes, so that a
 * known path with the wrong method is a 405 with `Allow`, not a 404. Built once, lazily.
 */
export class RouteTable {
  private compiled?: { pattern: RegExp; method: string }[];

  constructor(private readonly routes: () => { method: string; path: string }[]) {}

  /** Methods registered for a concrete request path, e.g. `['GET', 'PUT', 'DELETE']`. */
  allowedMethods(path: string): string[] {
    this.compiled ??= this.routes().map((route) => ({
      method: route.method.toUpperCase(),
      pattern: toPattern(route.path),
    }));
    const methods = new Set<string>();
    for (const route of this.compiled) if (route.pattern.test(path)) methods.add(route.method);
    return [...methods];
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
