import { defineCommand } from 'citty';
import { resolve } from 'node:path';
import { BackupError } from '../backup/backup.ts';
import { restoreBackup } from '../backup/restore.ts';
import { systemClock } from '../clock.ts';
import { cliLogger, commonArgs, jsonArg, loadCliConfig, print } from './common.ts';
import { CliFailure } from './exit.ts';

/**
 * `secryn restore <file>`: replaces the database with a backup sealed with the configured master
 * key, keeping the replaced database beside it. The server must be stopped first.
 */
export const restoreCommand = defineCommand({
  meta: { name: 'restore', description: 'Replace the database with a backup (server stopped)' },
  args: {
    ...commonArgs,
    ...jsonArg,
    file: { type: 'positional', description: 'A file written by `secryn backup`', required: true },
  },
  run({ args }) {
    const { config } = loadCliConfig(args);
    try {
      const result = restoreBackup(config, resolve(args.file), {
        env: process.env,
        clock: systemClock,
        logger: cliLogger(config),
      });
      if (args.json) {
        print(JSON.stringify({ restored: result.restored.path, previous: result.previous }));
        return;
      }
      print(`restored ${config.storage.path} from ${result.restored.path}`);
      if (result.previous) {
        print(`the replaced database is kept at ${result.previous}; remove it once you are sure`);
      }
    } catch (error) {
      if (error instanceof BackupError) throw new CliFailure(error.message);
      throw error;
    }
  },
});
