#!/usr/bin/env bun
/** Entry point of the `secryn` executable. */
import { rootCommand } from './cli/root.ts';
import { runCli } from './cli/run.ts';

// Everything Secryn writes (database, keys, backups) is for its own user only.
process.umask(0o077);

await runCli(rootCommand, process.argv.slice(2));
