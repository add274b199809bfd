/** `secryn backup <file>`. */
import { defineCommand } from 'citty';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { recipientProblem, readIdentityFile } from '../backup/age.ts';
import { appendAuditEntry, localAuditEntry } from '../ledger/audit-record.ts';
import { BackupError, createBackup, withSourceDatabase } from '../backup/backup.ts';
import { verifyBackup, writeCheckedBackup } from '../backup/checked.ts';
import { createPostgresBackup } from '../backup/postgres.ts';
import { BackupIntegrityError } from '../backup/restore.ts';
import { systemClock } from '../clock.ts';
import type { Config } from '../config/schema.ts';
import { createDb } from '../db/client.ts';
import { loadConfiguredMasterKey } from '../keyring/key-files.ts';
import { commonArgs, jsonArg, loadCliConfig, print } from './common.ts';
import { CliFailure, ExitCode } from './exit.ts';

/**
 * `secryn backup <file>`: a consistent copy of the database, safe while the server runs. It holds
 * values only encrypted and never the master key: back the key up separately. With
 * `--encrypt-to age1…` (repeatable) the whole file is age-encrypted to those recipients and
 * checked by decrypting it again. `secryn backup verify <file> [--identity PATH]` checks a
 * backup as restore would, without restoring it. On `backend = "postgres"` the backup is the
 * same portable file, taken from one REPEATABLE READ snapshot (../backup/postgres.ts).
 */
export const backupCommand = defineCommand({
  meta: {
    name: 'backup',
    description:
      'Write a consistent backup of the database to a new file; `backup verify FILE` checks one',
  },
  args: {
    ...commonArgs,
    ...jsonArg,
    file: {
      type: 'positional',
      description: 'The backup file to create (or `verify`, then the file to check)',
      required: true,
    },
    'encrypt-to': {
      type: 'string',
      description: 'age recipient (age1…) to encrypt the backup to; repeat or comma-separate',
      valueHint: 'RECIPIENT',
    },
    identity: {
      type: 'string',
      description: 'verify: age identity file for an encrypted backup',
      valueHint: 'PATH',
    },
  },
  async run({ args }) {
    // Backup and verify work on either backend; verify needs no storage at all.
    const { config } = loadCliConfig(args, { postgres: 'handled' });
    try {
      // citty cannot mix a positional with sub-commands: `verify` is recognised here
      // (a backup file literally named "verify" is written as ./verify).
      if (args.file === 'verify') {
        const file = args._[1];
        if (!file) throw new CliFailure('usage: secryn backup verify FILE [--identity PATH]');
        const masterKey = loadConfiguredMasterKey(config, process.env).key;
        const scratch = verifyScratch(config);
        try {
          const info = await verifyBackup(resolve(file), {
            identities:
              args.identity === undefined ? undefined : readIdentityFile(resolve(args.identity)),
            masterKey,
            config,
            scratchDirectory: scratch.path,
          });
          if (args.json) {
            print(
              JSON.stringify({
                file: info.path,
                ok: true,
                encrypted: info.encrypted,
                bytes: info.bytes,
                master_key_fingerprint: info.masterKeyFingerprint,
              }),
            );
          } else {
            print(
              `${info.path} is a good backup${info.encrypted ? ' (age-encrypted)' : ''}: integrity, ` +
                'keyring, API key MACs and the audit chain verify',
            );
          }
        } finally {
          masterKey.fill(0);
          scratch.remove();
        }
        return;
      }
      const recipients = recipientsOf(args['encrypt-to']);
      const target = resolve(args.file);
      const info =
        config.storage.backend === 'postgres'
          ? await createPostgresBackup(config, target, {
              recipients,
              clock: systemClock,
              env: process.env,
            })
          : recipients.length === 0
            ? { ...createBackup(config, target, systemClock), encrypted: false }
            : await withSourceDatabase(config, target, process.env, (sqlite, source, masterKey) =>
                writeCheckedBackup(sqlite, source, target, {
                  recipients,
                  masterKey,
                  config,
                  record: () => {
                    sqlite
                      .transaction(() =>
                        appendAuditEntry(
                          createDb(sqlite),
                          systemClock,
                          localAuditEntry('instance.backup', { type: 'instance', id: null }),
                        ),
                      )
                      .immediate();
                  },
                }),
              );
      if (args.json) {
        print(
          JSON.stringify({
            file: info.path,
            bytes: info.bytes,
            encrypted: info.encrypted,
            master_key_fingerprint: info.masterKeyFingerprint,
          }),
        );
        return;
      }
      print(`wrote ${info.path} (${info.bytes} bytes${info.encrypted ? ', age-encrypted' : ''})`);
      print(
        `It is sealed with master key ${info.masterKeyFingerprint}: keep a copy of that key apart from the ` +
          'backup; without it the backup cannot be read.' +
          (info.encrypted
            ? ' Restoring it also needs the identity of one of its recipients (--identity).'
            : ''),
      );
    } catch (error) {
      if (error instanceof BackupIntegrityError)
        throw new CliFailure(error.message, ExitCode.INTEGRITY);
      if (error instanceof BackupError) throw new CliFailure(error.message);
      throw error;
    }
  },
});

/**
 * Where `backup verify` checks its private copy: beside a SQLite instance's database (the
 * check needs the room a restore would), else a private directory of its own (verify needs no
 * storage: a PostgreSQL instance, or a machine with no instance at all).
 */
function verifyScratch(config: Config): { path: string; remove: () => void } {
  const beside = dirname(config.storage.path);
  if (config.storage.backend === 'sqlite' && existsSync(beside)) {
    return { path: beside, remove: () => {} };
  }
  const path = mkdtempSync(join(tmpdir(), 'secryn-verify-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** `--encrypt-to` given once, several times, or comma-separated; each checked up front. */
function recipientsOf(value: string | string[] | undefined): string[] {
  const recipients = (Array.isArray(value) ? value : value === undefined ? [] : [value])
    .flatMap((item) => item.split(','))
    .map((item) => item.trim())
    .filter(Boolean);
  for (const recipient of recipients) {
    const problem = recipientProblem(recipient);
    if (problem) throw new CliFailure(`--encrypt-to ${recipient.slice(0, 80)}: ${problem}`);
  }
  return recipients;
}
