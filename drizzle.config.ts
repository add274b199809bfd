import { defineConfig } from 'drizzle-kit';

// Every feature owns its tables in `src/<feature>/tables.ts`; drizzle-kit diffs them all into
// `migrations/`, which `scripts/db-generate.ts` then indexes for embedding in the executable.
export default defineConfig({
  dialect: 'sqlite',
  schema: './src/**/tables.ts',
  out: './migrations',
});
