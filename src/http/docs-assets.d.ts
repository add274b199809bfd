// Swagger UI files that src/http/docs.ts imports `with { type: 'file' }`: Bun resolves each to a
// file path (inside the executable's embedded file system once compiled), never to a module.
// Declared by exact name rather than `*.css`/`*.png` wildcards so that this file cannot collide
// with, or silently widen, asset declarations other modules add.

declare module 'swagger-ui-dist/swagger-ui-bundle.js' {
  const path: string;
  export default path;
}

declare module 'swagger-ui-dist/swagger-ui.css' {
  const path: string;
  export default path;
}

declare module 'swagger-ui-dist/index.css' {
  const path: string;
  export default path;
}

declare module 'swagger-ui-dist/favicon-32x32.png' {
  const path: string;
  export default path;
}

declare module 'swagger-ui-dist/favicon-16x16.png' {
  const path: string;
  export default path;
}
