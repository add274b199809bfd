/**
 * `secryn template render IN OUT [--watch] [--exec CMD]`: fills a file's
 * `{{ secret "VAULT" "NAME" }}` tags (src/client/template.ts) with the secrets' values and writes
 * OUT atomically with mode 0600 (a reader sees the old file or the new one, never half of it);
 * a missing secret is an error naming it and nothing is written. `--watch` renders again when a
 * secret of the vaults it uses changes (the event stream); `--exec CMD` runs `sh -c CMD` after
 * each successful render that changed OUT (e.g. to reload a server). A watch the server refuses
 * for good (401/403/404) ends the command with that refusal's exit code.
 */
import { defineCommand } from 'citty';
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../crypto/atomic-file.ts';
import type { SecrynClient } from '../client/http.ts';
import { vaultSecrets } from '../client/secrets.ts';
import { parseTemplate, renderTemplate, vaultsOf, type Template } from '../client/template.ts';
import { resolveVault } from '../client/vaults.ts';
import { ChangeBatcher, watchVaults } from '../client/watch.ts';
import { clientArgs, connect } from './client-common.ts';
import { CliFailure, ExitCode } from './exit.ts';

/** Fetches what the template needs and renders it (one request per vault). */
async function render(
  client: SecrynClient,
  template: Template,
  ids: ReadonlyMap<string, string>,
  source: string,
): Promise<string> {
  const values = new Map<string, Map<string, string>>();
  await Promise.all(
    [...ids].map(async ([ref, id]) => {
      const secrets = await vaultSecrets(client, id);
      values.set(ref, new Map(secrets.map((s) => [s.name, s.value!])));
    }),
  );
  return renderTemplate(template, values, source);
}

/** Runs `sh -c command`; its failure is reported, not thrown (the file is written already). */
async function runHook(command: string): Promise<number> {
  const proc = Bun.spawn(['sh', '-c', command], {
    stdin: 'ignore',
    stdout: 'inherit',
    stderr: 'inherit',
  });
  const status = await proc.exited;
  if (status !== 0) process.stderr.write(`secryn: --exec command exited with status ${status}\n`);
  return status;
}

const renderCommand = defineCommand({
  meta: {
    name: 'render',
    description:
      'Render a template that refers to secrets into a 0600 file: template render IN OUT',
  },
  args: {
    in: { type: 'positional', description: 'The template file', required: true },
    out: { type: 'positional', description: 'The file to write (mode 0600)', required: true },
    watch: {
      type: 'boolean',
      description: 'Render again whenever a secret of the vaults it uses changes',
      default: false,
    },
    exec: {
      type: 'string',
      description: 'Run this with sh -c after each render that changed the file',
      valueHint: 'command',
    },
    ...clientArgs,
  },
  async run({ args }) {
    let text: string;
    try {
      text = readFileSync(args.in, 'utf8');
    } catch (error) {
      throw new CliFailure(
        `cannot read ${args.in}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
        ExitCode.FAILURE,
      );
    }
    const template = parseTemplate(text, args.in);
    const client = connect(args);
    const refs = vaultsOf(template);
    const ids = new Map(
      await Promise.all(refs.map(async (ref) => [ref, await resolveVault(client, ref)] as const)),
    );
    let written: string | undefined;
    /** Renders and writes when the result differs from what was written; true if it wrote. */
    const renderOnce = async () => {
      const output = await render(client, template, ids, args.in);
      if (output === written) return false;
      writeFileAtomic(args.out, output, 0o600);
      written = output;
      return true;
    };
    if (!args.watch) {
      await renderOnce();
      if (args.exec && (await runHook(args.exec)) !== 0) {
        throw new CliFailure('the --exec command failed', ExitCode.FAILURE);
      }
      return;
    }
    // Subscribed before the first render, so that no change falls between the two.
    let ready = false;
    let missed = false;
    const batcher = new ChangeBatcher(async () => {
      try {
        if (!(await renderOnce())) return;
        process.stderr.write(`secryn: secrets changed; rendered ${args.out} again\n`);
        if (args.exec) await runHook(args.exec);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        process.stderr.write(
          `secryn: rendering again failed (${message}); ${args.out} is unchanged\n`,
        );
      }
    });
    const watcher = watchVaults(client, [...ids.values()], {
      onChange: () => (ready ? batcher.notify() : (missed = true)),
      onNotice: (message) => process.stderr.write(`secryn: ${message}\n`),
    });
    await Promise.race([watcher.ready, Bun.sleep(5000)]);
    try {
      await renderOnce();
    } catch (error) {
      watcher.stop();
      throw error;
    }
    if (args.exec) await runHook(args.exec);
    ready = true;
    if (missed) batcher.notify();
    // Until a signal ends the process (the timer keeps it alive between reconnects), or the
    // server refuses the watch for good (key revoked or expired, grant or vault gone): then OUT
    // can no longer be kept current, which a supervisor must learn from the exit status rather
    // than from a file that silently goes stale. OUT stays as last rendered.
    const keepAlive = setInterval(() => {}, 1 << 30);
    const refusal = await watcher.gaveUp;
    clearInterval(keepAlive);
    throw new CliFailure(
      `no longer watching for changes: ${refusal.message}`,
      refusal.exitCode,
      refusal.code,
    );
  },
});

export const templateCommand = defineCommand({
  meta: { name: 'template', description: 'Render files that refer to secrets' },
  subCommands: { render: renderCommand },
});
