import { defineCommand } from 'citty';
import { VERSION } from '../version.ts';
import { auditCommand } from './audit.ts';
import { backupCommand } from './backup.ts';
import { initCommand } from './init.ts';
import { keysCommand } from './keys.ts';
import { masterKeyCommand } from './master-key.ts';
import { migrateCommand } from './migrate.ts';
import { restoreCommand } from './restore.ts';
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
    keys: keysCommand,
    migrate: migrateCommand,
    'master-key': masterKeyCommand,
    audit: auditCommand,
    backup: backupCommand,
    restore: restoreCommand,
    version: versionCommand,
  },
});
