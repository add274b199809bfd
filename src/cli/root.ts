import { defineCommand } from 'citty';
import { VERSION } from '../version.ts';
import { initCommand } from './init.ts';
import { migrateCommand } from './migrate.ts';
import { serveCommand } from './serve.ts';
import { versionCommand } from './version.ts';

/** The `secryn` command tree. Every command lives in its own file in `src/cli/`. */
export const rootCommand = defineCommand({
  meta: {
    name: 'secryn',
    version: VERSION,
    description: 'Self-hosted secrets manager in one executable',
  },
  subCommands: {
    init: initCommand,
    serve: serveCommand,
    migrate: migrateCommand,
    version: versionCommand,
  },
});
