/** The OpenAPI `detail` of a route: summary, description and the feature's tag. */

/** A `detail(summary, description)` for one feature's routes, tagged `tag` unless told. */
export function routeDetail(tag: string) {
  return (summary: string, description: string, otherTag = tag) => ({
    summary,
    description,
    tags: [otherTag],
  });
}
