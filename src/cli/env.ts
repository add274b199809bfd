/**
 * `secryn env export --vault V [--format dotenv|json|shell]` and `secryn env import FILE
 * --vault V`: a vault's secrets as an environment file and back. The import is one request to
 * `POST /v1/vaults/:id/secrets/import`, which applies all of it or nothing.
 */
import { defineCommand } from 'citty';
import { readFileSync } from 'node:fs';
import {
  DotenvError,
  ENV_FORMATS,
  formatEnv,
  parseDotenv,
  type EnvFormat,
} from '../client/env-format.ts';
import { environmentOf } from '../client/environment.ts';
import { resolveVault } from '../client/vaults.ts';
import { clientArgs, connect } from './client-common.ts';
import { jsonArg, print } from './common.ts';
import { CliFailure, ExitCode } from './exit.ts';

const vaultArg = {
  vault: {
    type: 'string',
    description: 'The vault: its id (vlt_…) or PROJECT/VAULT',
    valueHint: 'vault',
    required: true,
  },
} as const;

const exportCommand = defineCommand({
  meta: { name: 'export', description: 'Print a vault’s active secrets as dotenv, shell or JSON' },
  args: {
    ...vaultArg,
    format: {
      type: 'string',
      description: "dotenv (default), shell (export NAME='…') or json",
      valueHint: 'format',
    },
    'skip-invalid': {
      type: 'boolean',
      description: 'Leave out secrets whose names are not environment variable names',
      default: false,
    },
    ...clientArgs,
  },
  async run({ args }) {
    const format = (args.format ?? 'dotenv') as EnvFormat;
    if (!ENV_FORMATS.includes(format)) {
      throw new CliFailure(`--format must be one of ${ENV_FORMATS.join(', ')}`, ExitCode.USAGE);
    }
    const { entries, skipped } = await environmentOf(connect(args), [args.vault], {
      skipInvalid: args['skip-invalid'],
      checkNames: format !== 'json',
    });
    if (skipped.length)
      process.stderr.write(
        `secryn: skipped ${skipped.length} secret(s) with names that are not environment variable names\n`,
      );
    process.stdout.write(formatEnv(entries, format));
  },
});

type ImportAnswer = { created: string[]; updated: string[]; unchanged: string[] };

const importCommand = defineCommand({
  meta: {
    name: 'import',
    description:
      'Create or update a vault’s secrets from a dotenv file, all or nothing (- for stdin)',
  },
  args: {
    file: { type: 'positional', description: 'The dotenv file (- for stdin)', required: true },
    ...vaultArg,
    ...clientArgs,
    ...jsonArg,
  },
  async run({ args }) {
    const client = connect(args); // first: a bad --config or no login fails before any reading
    let text: string;
    try {
      text = args.file === '-' ? await Bun.stdin.text() : readFileSync(args.file, 'utf8');
    } catch (error) {
      throw new CliFailure(
        `cannot read ${args.file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      );
    }
    let entries;
    try {
      entries = parseDotenv(text);
    } catch (error) {
      if (error instanceof DotenvError) {
        throw new CliFailure(`${args.file}: ${error.message} (nothing imported)`, ExitCode.USAGE);
      }
      throw error;
    }
    const vaultId = await resolveVault(client, args.vault);
    const answer = await client.request<ImportAnswer>(
      'POST',
      `/v1/vaults/${vaultId}/secrets/import`,
      { secrets: entries.map(({ name, value }) => ({ name, value })) },
    );
    if (args.json) return print(JSON.stringify(answer));
    print(
      `Imported into ${vaultId}: ${answer.created.length} created, ${answer.updated.length} updated, ${answer.unchanged.length} unchanged`,
    );
  },
});

export const envCommand = defineCommand({
  meta: { name: 'env', description: 'Export a vault as an environment file, or import one' },
  subCommands: { export: exportCommand, import: importCommand },
});
