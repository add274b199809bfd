/** `secryn migrate`. */
import { defineCommand } from 'citty';
import { runMigrations } from '../db/migrate.ts';
import { commonArgs, jsonArg, loadCliConfig, openExistingDatabase, print } from './common.ts';

/** `secryn migrate`: applies pending schema migrations to an existing database (idempotent). */
export const migrateCommand = defineCommand({
  meta: { name: 'migrate', description: 'Apply pending database migrations' },
  args: { ...commonArgs, ...jsonArg },
  run({ args }) {
    const sqlite = openExistingDatabase(loadCliConfig(args).config);
    try {
      const applied = runMigrations(sqlite);
      if (args.json) print(JSON.stringify({ applied }));
      else
        print(
          applied.length
            ? `applied ${applied.length} migration(s): ${applied.join(', ')}`
            : 'database is up to date',
        );
    } finally {
      sqlite.close();
    }
  },
});
