import { defineCommand } from 'citty';
import { existsSync } from 'node:fs';
import { createInstance } from '../instance.ts';
import { cliLogger, commonArgs, jsonArg, loadCliConfig, print } from './common.ts';

/**
 * `secryn init`: creates a new instance — the data directory (0700) and the database with its
 * schema. Refuses to touch an existing instance. `--if-missing` turns "already exists" into a
 * no-op success, for the quick start script.
 */
export const initCommand = defineCommand({
  meta: {
    name: 'init',
    description: 'Create a new instance (database, master key, first admin API key)',
  },
  args: {
    ...commonArgs,
    ...jsonArg,
    'if-missing': {
      type: 'boolean',
      description: 'Succeed without changes when an instance already exists',
      default: false,
    },
  },
  async run({ args }) {
    const { config } = loadCliConfig(args);
    if (args['if-missing'] && existsSync(config.storage.path)) {
      if (!args.json) print(`using the existing instance at ${config.storage.path}`);
      else print(JSON.stringify({ created: false, database: config.storage.path }));
      return;
    }
    const logger = cliLogger(config);
    const instance = createInstance(config, logger);
    await instance.close();
    if (args.json) {
      print(JSON.stringify({ created: true, database: config.storage.path }));
    } else {
      print(`created a new Secryn instance at ${config.storage.path}`);
    }
  },
});
