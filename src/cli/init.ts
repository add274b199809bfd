/** `secryn init`: creates a new instance and its first admin key. */
import { defineCommand } from 'citty';
import { existsSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { createInstance } from '../instance.ts';
import { configuredKeyPath } from '../keyring/key-files.ts';
import { cliLogger, commonArgs, jsonArg, loadCliConfig, print } from './common.ts';
import { CliFailure } from './exit.ts';
// First admin API key (access layer): created and audited inside init's own transaction.
import { commitLocalChange } from '../changes/index.ts';
import { systemClock } from '../clock.ts';
import { localActor } from '../os-user.ts';
import { INITIAL_ADMIN_KEY, insertApiKey, newApiKeyId } from '../keys/service.ts';

/**
 * `secryn init`: creates a new instance — the data directory (0700), the master key file (0600;
 * unless the key comes from SECRYN_MASTER_KEY or a systemd credential), the database with its
 * schema and the keyring. Refuses to touch an existing database or key file. `--if-missing`
 * turns "already exists" into a no-op success, for the quick start script.
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
    'force-location': {
      type: 'boolean',
      description: 'Create the database even under /etc, /usr, /boot or /efi',
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
    if (!args['force-location']) refuseSystemLocation(config.storage.path);
    const logger = cliLogger(config);
    // --- first admin API key: same transaction as the instance, audited as the local user ---
    let adminKey: { id: string; token: string } | undefined;
    const instance = createInstance(config, logger, (db, sqlite) => {
      const id = newApiKeyId();
      const now = systemClock.now();
      // Joins the instance's creating transaction.
      const change = { sqlite, db, clock: systemClock };
      const { token } = commitLocalChange(change, 'api_key.create', { type: 'api_key', id }, () =>
        insertApiKey(db, id, INITIAL_ADMIN_KEY, `local_user:${localActor()}`, now),
      );
      adminKey = { id, token };
    });
    // --- end first admin API key ---
    const { source, fingerprint } = instance.keyring;
    await instance.close();
    const keyFile = source === 'file' ? configuredKeyPath(config) : null;
    if (args.json) {
      print(
        JSON.stringify({
          created: true,
          database: config.storage.path,
          master_key: { source, file: keyFile, fingerprint },
          admin_key: adminKey, // { id, token }: the token is shown only this once
        }),
      );
    } else {
      print(`created a new Secryn instance at ${config.storage.path}`);
      print(
        keyFile
          ? `master key written to ${keyFile} (mode 0600, fingerprint ${fingerprint}); ` +
              'back it up apart from the database: without it no value can be read'
          : `master key taken from the ${source === 'env' ? 'SECRYN_MASTER_KEY environment variable' : 'systemd credential'} ` +
              `(fingerprint ${fingerprint}); no key file was written`,
      );
    }
    // --- first admin API key: printed once, never logged ---
    if (!args.json && adminKey) {
      print(`first admin API key ${adminKey.id}: ${adminKey.token}`);
      print('Store this token now (e.g. in a password manager): it is shown only once.');
    }
  },
});

/**
 * Directories that hold no data by design and that systemd's ProtectSystem= (full and strict,
 * as in systemd/secryn.service) makes read-only to every service: a database created there by
 * `init` run as root works for that command and fails the service at its first write. Home
 * directories stay allowed (a development instance in a checkout under /home is fine).
 */
const SYSTEM_DIRECTORIES = ['/etc', '/usr', '/boot', '/efi'];

function refuseSystemLocation(databasePath: string): void {
  const directory = dirname(resolve(databasePath));
  const system = SYSTEM_DIRECTORIES.find(
    (root) => directory === root || directory.startsWith(root + sep),
  );
  if (system === undefined) return;
  throw new CliFailure(
    `refusing to create the database in ${directory}: the service cannot write under ${system} ` +
      '(ProtectSystem=strict); set storage.path under /var/lib/secryn (see ' +
      'config/secryn.systemd.toml), or pass --force-location',
  );
}
