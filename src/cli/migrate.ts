import { defineCommand } from 'citty';
import { existsSync } from 'node:fs';
import { openDatabase } from '../db/client.ts';
import { runMigrations } from '../db/migrate.ts';
import { NotInitializedError } from '../instance.ts';
import { commonArgs, jsonArg, loadCliConfig, print } from './common.ts';

/** `secryn migrate`: applies pending schema migrations to an existing database (idempotent). */
export const migrateCommand = defineCommand({
  meta: { name: 'migrate', description: 'Apply pending database migrations' },
  args: { ...commonArgs, ...jsonArg },
  run({ args }) {
    const { config } = loadCliConfig(args);
    const path = config.storage.path;
    if (!existsSync(path)) throw new NotInitializedError(path);
    const sqlite = openDatabase(path, {
      synchronous: config.storage.synchronous,
      busyTimeoutMs: config.storage.busy_timeout_ms,
      mustExist: true,
    });
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
