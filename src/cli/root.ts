/** The `secryn` command tree, each command loaded only when it runs. */
import { defineCommand, type ArgsDef, type CommandDef } from 'citty';
import { VERSION } from '../version.ts';

/**
 * The `secryn` command tree. Every command lives in its own file in `src/cli/` and is imported
 * only when it runs (or when `--help` lists it), so `secryn serve` does not pay for loading the
 * code of every other command at start.
 */
export const rootCommand = defineCommand({
  meta: {
    name: 'secryn',
    version: VERSION,
    description: 'Self-hosted secrets manager in one executable',
  },
  subCommands: {
    init: () => import('./init.ts').then((m) => m.initCommand),
    serve: () => import('./serve.ts').then((m) => m.serveCommand),
    keys: () => import('./keys.ts').then((m) => m.keysCommand),
    migrate: () => import('./migrate.ts').then((m) => m.migrateCommand),
    'migrate-storage': () => import('./migrate-storage.ts').then((m) => m.migrateStorageCommand),
    'master-key': () => import('./master-key.ts').then((m) => m.masterKeyCommand),
    audit: () => import('./audit.ts').then((m) => m.auditCommand),
    backup: () => import('./backup.ts').then((m) => m.backupCommand),
    restore: () => import('./restore.ts').then((m) => m.restoreCommand),
    version: () => import('./version.ts').then((m) => m.versionCommand),
    // Client commands: they talk to a server (--url / SECRYN_URL, token from SECRYN_TOKEN or login).
    login: () => import('./login.ts').then((m) => m.loginCommand),
    logout: () => import('./logout.ts').then((m) => m.logoutCommand),
    whoami: () => import('./whoami.ts').then((m) => m.whoamiCommand),
    secret: () => import('./secret.ts').then((m) => m.secretCommand),
    project: () => import('./project.ts').then((m) => m.projectCommand),
    vault: () => import('./vault.ts').then((m) => m.vaultCommand),
    env: () => import('./env.ts').then((m) => m.envCommand),
    run: () => import('./run-program.ts').then((m) => m.runProgramCommand),
    template: () => import('./template.ts').then((m) => m.templateCommand),
    // The tree is handed in, so completion.ts need not import this module (no cycle).
    completion: (): Promise<CommandDef<any>> =>
      import('./completion.ts').then((m) =>
        m.completionCommandFor(rootCommand as unknown as CommandDef<ArgsDef>),
      ),
  },
});
