/** `secryn backup <file>`. */
import { defineCommand } from 'citty';
import { resolve } from 'node:path';
import { BackupError, createBackup } from '../backup/backup.ts';
import { systemClock } from '../clock.ts';
import { commonArgs, jsonArg, loadCliConfig, print } from './common.ts';
import { CliFailure } from './exit.ts';

/**
 * `secryn backup <file>`: a consistent copy of the database, safe while the server runs. It holds
 * values only encrypted and never the master key: back the key up separately.
 */
export const backupCommand = defineCommand({
  meta: { name: 'backup', description: 'Write a consistent backup of the database to a new file' },
  args: {
    ...commonArgs,
    ...jsonArg,
    file: { type: 'positional', description: 'The backup file to create', required: true },
  },
  run({ args }) {
    const { config } = loadCliConfig(args);
    try {
      const info = createBackup(config, resolve(args.file), systemClock);
      if (args.json) {
        print(
          JSON.stringify({
            file: info.path,
            bytes: info.bytes,
            master_key_fingerprint: info.masterKeyFingerprint,
          }),
        );
        return;
      }
      print(`wrote ${info.path} (${info.bytes} bytes)`);
      print(
        `It is sealed with master key ${info.masterKeyFingerprint}: keep a copy of that key apart from the ` +
          'backup; without it the backup cannot be read.',
      );
    } catch (error) {
      if (error instanceof BackupError) throw new CliFailure(error.message);
      throw error;
    }
  },
});
