/** `secryn version`. */
import { defineCommand } from 'citty';
import { VERSION } from '../version.ts';
import { commonArgs, jsonArg, print } from './common.ts';

/** `secryn version`: prints the version (and the Bun runtime it was built with). */
export const versionCommand = defineCommand({
  meta: { name: 'version', description: 'Print the Secryn version' },
  args: {
    // docs/api.md §9: every command takes --config. The version needs none, so it is read and ignored.
    config: { ...commonArgs.config, description: 'Accepted like on every command, and ignored' },
    ...jsonArg,
  },
  run({ args }) {
    if (args.json) print(JSON.stringify({ version: VERSION, bun: Bun.version }));
    else print(`secryn ${VERSION} (bun ${Bun.version})`);
  },
});
