import { defineConfig } from 'drizzle-kit';

// The whole data model is `src/db/schema/` (one module per area, all exported from index.ts);
// drizzle-kit diffs it into `migrations/`, which `scripts/db-generate.ts` then indexes for
// embedding in the executable.
export default defineConfig({
  dialect: 'sqlite',
  schema: './src/db/schema/index.ts',
  out: './migrations',
});
