import { defineCommand } from 'citty';
import { MasterKeyError } from '../crypto/errors.ts';
import { localActor, openInstance, type Instance } from '../instance.ts';
import { configuredKeyPath } from '../keyring/key-files.ts';
import '../keyring/known-columns.ts';
import {
  reencryptValues,
  type ReencryptProgress,
  type ReencryptResult,
} from '../keyring/reencrypt.ts';
import { rotateMasterKey, type KeyringContext } from '../keyring/rotate.ts';
import { keyringStatus, type KeyringStatus } from '../keyring/status.ts';
import { readUnfinishedReencryption, type RotationRecord } from '../keyring/store.ts';
import { cliLogger, commonArgs, jsonArg, loadCliConfig, print } from './common.ts';
import { CliFailure, ExitCode } from './exit.ts';

/**
 * Opens the instance for a `master-key` subcommand. `SECRYN_TEST_FIXTURES=keyring` (test-only)
 * also registers the keyring's test tables, so a test's child process walks them.
 */
async function openForKeyring(args: { config?: string }): Promise<Instance> {
  if (process.env.SECRYN_TEST_FIXTURES === 'keyring') await import('../keyring/test-fixture.ts');
  const { config } = loadCliConfig(args);
  return openInstance(config, cliLogger(config));
}

function contextOf(instance: Instance): KeyringContext {
  return {
    sqlite: instance.sqlite,
    config: instance.config,
    env: process.env,
    clock: instance.clock,
    logger: instance.logger,
    keyring: instance.keyring,
  };
}

/** `secryn master-key status [--json]`. */
const statusCommand = defineCommand({
  meta: {
    name: 'status',
    description: 'Show the master key fingerprint, rotations and data keys (no secrets)',
  },
  args: { ...commonArgs, ...jsonArg },
  async run({ args }) {
    const instance = await openForKeyring(args);
    try {
      const status = keyringStatus(
        instance.sqlite,
        instance.keyring,
        configuredKeyPath(instance.config),
      );
      print(args.json ? JSON.stringify(status) : renderStatus(status));
    } finally {
      await instance.close();
    }
  },
});

function renderStatus(s: KeyringStatus): string {
  const rows: [string, string][] = [
    ['fingerprint', s.fingerprint],
    ['source', s.key_file ? `file ${s.key_file}` : s.source],
    ['created', s.created_at],
    ['last rotation', s.last_rotated_at ? `${s.last_rotated_at} (${s.rotations} in all)` : 'never'],
  ];
  for (const [i, k] of s.data_keys.entries()) {
    rows.push([
      i === 0 ? 'data keys' : '',
      `v${k.version}${k.current ? ' (current)' : ''}  created ${k.created_at}  ${k.values} value(s)`,
    ]);
  }
  if (s.unreadable_values > 0) rows.push(['unreadable', `${s.unreadable_values} value(s)`]);
  if (s.reencryption) {
    rows.push([
      're-encryption',
      `unfinished: ${s.reencryption.remaining} value(s) left (continue with: secryn master-key rotate --reencrypt)`,
    ]);
  }
  for (const [i, file] of s.backup_files.entries()) {
    rows.push([i === 0 ? 'old keys' : '', `${file} (remove once the current key is backed up)`]);
  }
  return rows.map(([label, value]) => `${label.padEnd(14)} ${value}`).join('\n');
}

/** `secryn master-key rotate [--reencrypt] [--new-key-file PATH]`. */
const rotateCommand = defineCommand({
  meta: {
    name: 'rotate',
    description:
      'Replace the master key (re-wrapping the keyring); --reencrypt also re-encrypts every value under a new data key',
  },
  args: {
    ...commonArgs,
    ...jsonArg,
    reencrypt: {
      type: 'boolean',
      description:
        'Also create a new data key and re-encrypt every stored value under it (resumes an interrupted run)',
      default: false,
    },
    'new-key-file': {
      type: 'string',
      description:
        'Where to write the new key when the current one comes from SECRYN_MASTER_KEY or a systemd credential',
      valueHint: 'path',
    },
    'batch-size': {
      type: 'string',
      description: 'Values re-encrypted per transaction (default 500)',
      valueHint: 'n',
    },
  },
  async run({ args }) {
    const batchSize = args['batch-size'] === undefined ? 500 : Number(args['batch-size']);
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000) {
      throw new CliFailure('--batch-size must be an integer from 1 to 100000', ExitCode.USAGE);
    }
    const instance = await openForKeyring(args);
    try {
      const ctx = contextOf(instance);
      const pending = args.reencrypt ? readUnfinishedReencryption(instance.sqlite) : undefined;
      let rotation: RotationRecord;
      if (pending) {
        rotation = pending;
        if (!args.json) {
          print(
            `resuming the re-encryption of rotation ${pending.id} (master key already rotated ` +
              `on ${new Date(pending.rotatedAt).toISOString()})`,
          );
        }
      } else {
        try {
          rotation = rotateMasterKey(ctx, {
            actor: localActor(),
            reencrypt: args.reencrypt,
            newKeyFile: args['new-key-file'],
          });
        } catch (error) {
          if (error instanceof MasterKeyError && error.reason === 'exists') {
            throw new CliFailure(
              `${error.message} (give --new-key-file a path that does not exist)`,
            );
          }
          throw error;
        }
        if (!args.json) print(rotationLines(rotation).join('\n'));
      }
      let result: ReencryptResult | undefined;
      if (args.reencrypt) {
        const bar = args.json ? undefined : progressBar();
        try {
          result = await reencryptValues(ctx, rotation.id, { batchSize, onProgress: bar?.update });
        } finally {
          bar?.finish();
        }
      }
      if (args.json) {
        print(
          JSON.stringify({
            rotation_id: rotation.id,
            resumed: Boolean(pending),
            old_fingerprint: rotation.oldFingerprint,
            new_fingerprint: rotation.newFingerprint,
            source: rotation.keySource,
            key_file: rotation.keyFile,
            backup_file: rotation.backupFile,
            new_key_file: rotation.newKeyFile,
            reencryption: result
              ? {
                  data_key_version: result.dataKeyVersion,
                  reencrypted: result.reencrypted,
                  remaining: result.remaining,
                  undecryptable: result.undecryptable,
                  completed: result.completed,
                }
              : null,
          }),
        );
      } else if (result) {
        print(
          `re-encrypted ${result.reencrypted} value(s) under data key v${result.dataKeyVersion}`,
        );
        if (result.undecryptable > 0) {
          print(
            `${result.undecryptable} value(s) do not decrypt (corrupt?) and were left as they are`,
          );
        }
      }
      if (result && !result.completed) {
        throw new CliFailure(
          `re-encryption incomplete: ${result.remaining} value(s) remain under older data keys; ` +
            'run `secryn master-key rotate --reencrypt` again to continue',
        );
      }
    } finally {
      await instance.close();
    }
  },
});

function rotationLines(rotation: RotationRecord): string[] {
  const lines = [
    `master key rotated: fingerprint ${rotation.oldFingerprint} -> ${rotation.newFingerprint}`,
  ];
  if (rotation.keyFile) {
    lines.push(
      `the old key is kept at ${rotation.backupFile}; remove it once you have a backup of the ` +
        `new key in ${rotation.keyFile}`,
    );
  } else {
    const source =
      rotation.keySource === 'env'
        ? 'the SECRYN_MASTER_KEY environment variable'
        : 'the systemd credential';
    lines.push(
      `the new key is in ${rotation.newKeyFile} (mode 0600); the database now requires it:`,
      `  1. put its content in ${source} and restart secryn serve (a start with the old key is refused;`,
      `     a server already running keeps serving, reading the new key from that file if it must reload)`,
      `  2. back the new key up, then delete ${rotation.newKeyFile}`,
    );
  }
  return lines;
}

/** A progress bar on stderr when it is a TTY; nothing otherwise. */
function progressBar(): { update: (p: ReencryptProgress) => void; finish: () => void } | undefined {
  if (!process.stderr.isTTY) return undefined;
  let lastDraw = 0;
  let drawn = false;
  return {
    update(p) {
      const now = performance.now();
      if (now - lastDraw < 100 && p.done < p.total) return;
      lastDraw = now;
      drawn = true;
      const ratio = p.total > 0 ? Math.min(p.done / p.total, 1) : 1;
      const width = 30;
      const filled = Math.round(ratio * width);
      process.stderr.write(
        `\rre-encrypting [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ` +
          `${Math.floor(ratio * 100)}% ${p.done}/${p.total} ${p.table}.${p.column}\x1b[K`,
      );
    },
    finish() {
      if (drawn) process.stderr.write('\n');
    },
  };
}

/** `secryn master-key`: the master key's status and rotation. */
export const masterKeyCommand = defineCommand({
  meta: { name: 'master-key', description: 'Show or rotate the master key' },
  subCommands: { status: statusCommand, rotate: rotateCommand },
});
