/** `secryn master-key status|rotate|rotate-data-key`. */
import { defineCommand } from 'citty';
import { MasterKeyError } from '../crypto/errors.ts';
import { openInstance, type Instance } from '../instance.ts';
import { localActor } from '../os-user.ts';
import { configuredKeyPath, loadConfiguredMasterKey } from '../keyring/key-files.ts';
// The master_key.rotated listeners: the rotation's audit entry and its event.
import '../audit/rotation-hook.ts';
import '../events/rotation-hook.ts';
import {
  reencryptValues,
  type ReencryptProgress,
  type ReencryptResult,
} from '../keyring/reencrypt.ts';
import {
  assertMasterKeyRotatable,
  rotateDataKey,
  rotateMasterKey,
  type KeyringContext,
} from '../keyring/rotate.ts';
import { keyringStatus, type KeyringStatus } from '../keyring/status.ts';
import { readUnfinishedReencryption, type RotationRecord } from '../keyring/store.ts';
import { cliLogger, commonArgs, jsonArg, loadCliConfig, print } from './common.ts';
import { CliFailure, ExitCode } from './exit.ts';

/**
 * Opens the instance for a `master-key` subcommand. (Tests that need the keyring's test tables
 * walked preload test/fixtures/keyring-tables.ts into a source run; the product never loads it.)
 */
async function openForKeyring(args: { config?: string }): Promise<Instance> {
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
      `unfinished: ${s.reencryption.remaining} value(s) left (continue with: secryn master-key rotate-data-key --reencrypt)`,
    ]);
  }
  for (const [i, file] of s.backup_files.entries()) {
    rows.push([i === 0 ? 'old keys' : '', `${file} (remove once the current key is backed up)`]);
  }
  return rows.map(([label, value]) => `${label.padEnd(14)} ${value}`).join('\n');
}

const batchSizeArg = {
  'batch-size': {
    type: 'string',
    description: 'Values re-encrypted per transaction (default 500)',
    valueHint: 'n',
  },
} as const;

function parseBatchSize(value: string | undefined): number {
  const batchSize = value === undefined ? 500 : Number(value);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000) {
    throw new CliFailure('--batch-size must be an integer from 1 to 100000', ExitCode.USAGE);
  }
  return batchSize;
}

/**
 * A new data key (or the unfinished one, `resume`), then its re-encryption if asked. The data
 * key is wrapped under the current master key, which a running server holds: it loads it live.
 */
async function rotateDataKeyStep(
  ctx: KeyringContext,
  options: { reencrypt: boolean; batchSize: number; json: boolean; again: string },
): Promise<{ rotation: RotationRecord; resumed: boolean; result?: ReencryptResult }> {
  const pending = options.reencrypt ? readUnfinishedReencryption(ctx.sqlite) : undefined;
  let rotation: RotationRecord;
  if (pending) {
    rotation = pending;
    if (!options.json) {
      print(
        `resuming the re-encryption of rotation ${pending.id} (data key ` +
          `v${pending.newDataKeyVersion}, created ${new Date(pending.rotatedAt).toISOString()})`,
      );
    }
  } else {
    rotation = rotateDataKey(ctx, { actor: localActor() });
    if (!options.json) print(`new data key v${rotation.newDataKeyVersion} is current`);
  }
  if (!options.reencrypt) return { rotation, resumed: false };
  const bar = options.json ? undefined : progressBar();
  let result: ReencryptResult;
  try {
    result = await reencryptValues(ctx, rotation.id, {
      batchSize: options.batchSize,
      onProgress: bar?.update,
    });
  } finally {
    bar?.finish();
  }
  if (!options.json) {
    print(`re-encrypted ${result.reencrypted} value(s) under data key v${result.dataKeyVersion}`);
    if (result.undecryptable > 0) {
      print(`${result.undecryptable} value(s) do not decrypt (corrupt?) and were left as they are`);
    }
  }
  if (!result.completed) {
    throw new CliFailure(
      `re-encryption incomplete: ${result.remaining} value(s) remain under older data keys; ` +
        `run \`${options.again}\` again to continue`,
    );
  }
  return { rotation, resumed: Boolean(pending), result };
}

function reencryptionJson(result: ReencryptResult | undefined) {
  return result
    ? {
        data_key_version: result.dataKeyVersion,
        reencrypted: result.reencrypted,
        remaining: result.remaining,
        undecryptable: result.undecryptable,
        completed: result.completed,
      }
    : null;
}

/** `secryn master-key rotate-data-key [--reencrypt]`. */
const rotateDataKeyCommand = defineCommand({
  meta: {
    name: 'rotate-data-key',
    description:
      'Seal new values under a new data key (running servers switch without a restart); --reencrypt also re-encrypts every stored value',
  },
  args: {
    ...commonArgs,
    ...jsonArg,
    reencrypt: {
      type: 'boolean',
      description:
        'Also re-encrypt every stored value under the new data key (resumes an interrupted run)',
      default: false,
    },
    ...batchSizeArg,
  },
  async run({ args }) {
    const batchSize = parseBatchSize(args['batch-size']);
    const instance = await openForKeyring(args);
    try {
      const step = await rotateDataKeyStep(contextOf(instance), {
        reencrypt: args.reencrypt,
        batchSize,
        json: Boolean(args.json),
        again: 'secryn master-key rotate-data-key --reencrypt',
      });
      if (args.json) {
        print(
          JSON.stringify({
            rotation_id: step.rotation.id,
            resumed: step.resumed,
            data_key_version: step.rotation.newDataKeyVersion,
            reencryption: reencryptionJson(step.result),
          }),
        );
      }
    } finally {
      await instance.close();
    }
  },
});

/** `secryn master-key rotate [--reencrypt] [--new-key-file PATH]`. */
const rotateCommand = defineCommand({
  meta: {
    name: 'rotate',
    description:
      'Replace the master key (re-wrapping the keyring); --reencrypt first moves every value to a new data key',
  },
  args: {
    ...commonArgs,
    ...jsonArg,
    reencrypt: {
      type: 'boolean',
      description:
        'First rotate the data key and re-encrypt every stored value (as rotate-data-key --reencrypt; resumes an interrupted run), then rotate the master key',
      default: false,
    },
    'new-key-file': {
      type: 'string',
      description:
        'Where to write the new key when the current one comes from SECRYN_MASTER_KEY or a systemd credential',
      valueHint: 'path',
    },
    ...batchSizeArg,
  },
  async run({ args }) {
    const batchSize = parseBatchSize(args['batch-size']);
    const instance = await openForKeyring(args);
    try {
      const ctx = contextOf(instance);
      // Refuse a flag that does not fit the key's source before anything changes.
      const loaded = loadConfiguredMasterKey(ctx.config, ctx.env);
      loaded.key.fill(0);
      assertMasterKeyRotatable(loaded, args['new-key-file']);
      // The data key first: wrapped under the master key running servers hold, so they load
      // it live; re-wrapping afterwards changes no data key they need.
      const step = args.reencrypt
        ? await rotateDataKeyStep(ctx, {
            reencrypt: true,
            batchSize,
            json: Boolean(args.json),
            again: 'secryn master-key rotate --reencrypt',
          })
        : undefined;
      let rotation: RotationRecord;
      try {
        rotation = rotateMasterKey(ctx, {
          actor: localActor(),
          newKeyFile: args['new-key-file'],
        });
      } catch (error) {
        if (error instanceof MasterKeyError && error.reason === 'exists') {
          throw new CliFailure(`${error.message} (give --new-key-file a path that does not exist)`);
        }
        throw error;
      }
      if (args.json) {
        print(
          JSON.stringify({
            rotation_id: rotation.id,
            resumed: step?.resumed ?? false,
            old_fingerprint: rotation.oldFingerprint,
            new_fingerprint: rotation.newFingerprint,
            source: rotation.keySource,
            key_file: rotation.keyFile,
            backup_file: rotation.backupFile,
            new_key_file: rotation.newKeyFile,
            data_key_rotation_id: step?.rotation.id ?? null,
            reencryption: reencryptionJson(step?.result),
          }),
        );
      } else {
        print(rotationLines(rotation).join('\n'));
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
      `  1. put its content in ${source} (a start with the old key is refused; a server already`,
      `     running keeps serving with the data keys it holds and needs no restart)`,
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
  subCommands: {
    status: statusCommand,
    rotate: rotateCommand,
    'rotate-data-key': rotateDataKeyCommand,
  },
});
