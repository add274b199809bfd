/**
 * The instance keyring: what every feature uses to seal and open its encrypted columns. It holds
 * the unwrapped data keys and the master key it was opened with in memory, and follows changes
 * made by other processes through the `generation` counter (checked at most once per refresh
 * interval on encrypt, by the server's timer, and at once when a value names a data key it does
 * not hold):
 *  - a data-key rotation adds a data key wrapped under the current master key, which this
 *    process holds: it is unwrapped and made current without reading any key file;
 *  - a master-key rotation re-wraps the stored keys: the data keys already loaded stay loaded
 *    and only the recorded fingerprint changes, so nothing needs the new key file.
 * A data key it cannot unwrap (one added after a master-key rotation, by a process holding the
 * new key, when the new key is not readable here) makes the keyring unready, naming why: health
 * answers 503 and so does every request that needs that key; it never seals under an older key.
 */
import type { Database } from 'bun:sqlite';
import type { ValueLocation } from '../crypto/envelope.ts';
import { UnknownDataKeyError } from '../crypto/errors.ts';
import {
  masterKeyFingerprint,
  unwrapDataKey,
  wrapDataKey,
  type Keyring,
} from '../crypto/keyring.ts';
import type { Config } from '../config/schema.ts';
import { ServiceUnavailableError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { KeyringError } from './errors.ts';
import { forgetIntegrity } from './integrity.ts';
import {
  configuredKeyPath,
  loadConfiguredMasterKey,
  nextKeyPath,
  readKeyFileIfUsable,
  type Env,
} from './key-files.ts';
import {
  readKeyringGeneration,
  readKeyringSnapshot,
  readRotations,
  type KeyringState,
  type WrappedDataKey,
} from './store.ts';

/** Where the master key comes from (see src/crypto/master-key.ts for the order). */
export type MasterKeySource = 'file' | 'env' | 'credential';

/**
 * The keyring API every feature uses for its encrypted columns. Build locations with the
 * column's {@link import('../db/schema/encrypted-columns.ts').EncryptedColumn.at}.
 */
export interface InstanceKeyring {
  /**
   * Seals `plaintext` (strings as UTF-8) for `where` under the current data key.
   * Throws ServiceUnavailableError (503) when the keyring is not loaded or cannot load the
   * current data key.
   */
  encrypt(plaintext: Uint8Array | string, where: ValueLocation): Uint8Array;
  /**
   * Opens a value sealed for `where`. A value under a data key this process has not loaded yet
   * triggers one reload from the database. Throws DecryptionError for anything tampered,
   * misplaced or corrupt; ServiceUnavailableError (503) if its data key cannot be loaded.
   */
  decrypt(ciphertext: Uint8Array, where: ValueLocation): Uint8Array;
  /** {@link decrypt} then strict UTF-8 decoding (DecryptionError('invalid_utf8') if invalid). */
  decryptString(ciphertext: Uint8Array, where: ValueLocation): string;
  /** True while every stored data key is loaded; health answers 503 otherwise. */
  isReady(): boolean;
  /** The data-key version new values are sealed under. */
  readonly currentVersion: number;
  /** Fingerprint of the master key the database records. */
  readonly fingerprint: string;
  /** The configured master key source. */
  readonly source: MasterKeySource;
}

/** What a {@link LiveKeyring} reads from: the instance's connection, config and environment. */
export type LiveKeyringOptions = {
  sqlite: Database;
  config: Config;
  env: Env;
  logger: Logger;
  /** How often encrypt checks the generation counter; default 1000 ms. */
  refreshIntervalMs?: number;
  /** Monotonic milliseconds; default performance.now. */
  monotonicNow?: () => number;
};

type Loaded = { ring: Keyring; generation: number; fingerprint: string };

/** The master key this process holds: the one it opened with, or one it found later. */
type HeldMasterKey = { key: Uint8Array; fingerprint: string };

/** The {@link InstanceKeyring} of an open instance; built by `openKeyring` (open.ts). */
export class LiveKeyring implements InstanceKeyring {
  #loaded: Loaded | undefined;
  #master: HeldMasterKey | undefined;
  /** Why a stored data key cannot be loaded (the keyring is then unready), if it cannot. */
  #unavailable: string | undefined;
  #lastCheck: number;
  readonly #options: LiveKeyringOptions;
  readonly #interval: number;
  readonly #now: () => number;
  readonly source: MasterKeySource;

  /** `masterKey` (copied) must be the key that unwrapped `initial`. */
  constructor(
    options: LiveKeyringOptions,
    initial: Loaded,
    source: MasterKeySource,
    masterKey: Uint8Array,
  ) {
    this.#options = options;
    this.#interval = options.refreshIntervalMs ?? 1000;
    this.#now = options.monotonicNow ?? (() => performance.now());
    this.#loaded = initial;
    this.#master = { key: new Uint8Array(masterKey), fingerprint: initial.fingerprint };
    this.#lastCheck = this.#now();
    this.source = source;
  }

  encrypt(plaintext: Uint8Array | string, where: ValueLocation): Uint8Array {
    if (this.#now() - this.#lastCheck >= this.#interval) this.refresh();
    if (this.#unavailable) throw this.#unavailableError();
    return this.#ring().encrypt(plaintext, where);
  }

  decrypt(ciphertext: Uint8Array, where: ValueLocation): Uint8Array {
    return this.#opening(openBytes, ciphertext, where);
  }

  decryptString(ciphertext: Uint8Array, where: ValueLocation): string {
    return this.#opening(openText, ciphertext, where);
  }

  isReady(): boolean {
    return this.#unavailable === undefined && (this.#loaded?.ring.isReady ?? false);
  }

  /** Why the keyring is unready (for the log and `master-key status`), if it is. */
  get unavailableReason(): string | undefined {
    return this.#loaded ? this.#unavailable : 'the keyring is not loaded';
  }

  get currentVersion(): number {
    return this.#ring().currentVersion!;
  }

  get fingerprint(): string {
    return this.#loaded?.fingerprint ?? '';
  }

  /** The generation of the loaded keyring (grows with every rotation). */
  get generation(): number {
    return this.#loaded?.generation ?? 0;
  }

  /** Loaded data-key versions, ascending. */
  versions(): number[] {
    return this.#loaded?.ring.versions() ?? [];
  }

  /**
   * Checks the generation counter now and follows the database if another process changed the
   * keyring. Returns true if it loaded something new. A data key it cannot load is logged (once
   * per reason) and makes the keyring unready; the keys already loaded stay in use for reading.
   */
  refresh(): boolean {
    this.#lastCheck = this.#now();
    if (!this.#loaded) return false;
    const generation = readKeyringGeneration(this.#options.sqlite);
    if (generation === undefined || generation === this.#loaded.generation) return false;
    try {
      return this.reload();
    } catch (error) {
      this.#setUnavailable(error instanceof Error ? error.message : String(error));
      return false;
    }
  }

  /**
   * Follows the stored keyring unconditionally: records the current fingerprint, unwraps every
   * data key not loaded yet (with the master key held, or one found in the configured source,
   * `<key file>.next` or a rotation's new-key file) and switches to the current data key.
   * Returns true if a data key was added. Throws KeyringError('damaged') for a stored key that
   * does not open under a master key whose fingerprint matches.
   */
  reload(): boolean {
    if (!this.#loaded) throw new ServiceUnavailableError('The keyring is not loaded');
    const snapshot = readKeyringSnapshot(this.#options.sqlite);
    if (!snapshot) throw new KeyringError('not_initialized', 'the keyring has disappeared');
    const { state, wrapped } = snapshot;
    const ring = this.#loaded.ring;
    const missing = wrapped.filter((row) => !ring.has(row.version));
    let added = false;
    if (missing.length > 0) {
      const master = this.#masterKeyFor(state.fingerprint);
      if (master) {
        for (const row of missing) {
          const key = unwrapStoredKey(master.key, row);
          try {
            ring.add({ version: row.version, key }, row.version === state.currentVersion);
          } finally {
            key.fill(0);
          }
        }
        added = true;
      }
    }
    this.#loaded = { ring, generation: state.generation, fingerprint: state.fingerprint };
    this.#setUnavailable(this.#whyUnavailable(state, wrapped));
    return added;
  }

  /**
   * Wraps a new data key under the master key this process holds, which must be the one the
   * database records (the data-key rotation's check, made inside its transaction).
   * Throws KeyringError('conflict') otherwise.
   */
  wrapNewDataKey(fingerprint: string, version: number, dataKey: Uint8Array): Uint8Array {
    const master = this.#masterKeyFor(fingerprint);
    if (!master) {
      throw new KeyringError(
        'conflict',
        `this process does not hold the instance's current master key (fingerprint ${fingerprint})`,
      );
    }
    return wrapDataKey(master.key, version, dataKey);
  }

  /**
   * Forgets every key (master, data and integrity keys); the instance is then unhealthy and
   * cannot seal or open values.
   */
  close(): void {
    this.#loaded = undefined;
    forgetIntegrity(this.#options.sqlite);
    this.#master?.key.fill(0);
    this.#master = undefined;
  }

  #ring(): Keyring {
    if (!this.#loaded) throw new ServiceUnavailableError('The keyring is not loaded');
    return this.#loaded.ring;
  }

  /**
   * Runs an open; a value whose data key cannot be loaded is a 503, never an internal error.
   * `open` is one of the module's functions, not a closure per call (50 opens per vault read).
   */
  #opening<T>(open: Open<T>, ciphertext: Uint8Array, where: ValueLocation): T {
    try {
      return open(this.#ring(), ciphertext, where);
    } catch (error) {
      if (!(error instanceof UnknownDataKeyError)) throw error;
    }
    this.refresh();
    try {
      return open(this.#ring(), ciphertext, where);
    } catch (error) {
      if (!(error instanceof UnknownDataKeyError)) throw error;
      if (this.#unavailable) throw this.#unavailableError();
      // The database does not hold that version at all: this one value is damaged.
      throw new ServiceUnavailableError('A stored value names a data key this instance lacks');
    }
  }

  #unavailableError(): ServiceUnavailableError {
    return new ServiceUnavailableError(
      'The keyring cannot load a data key that stored values use (see the server log)',
    );
  }

  #whyUnavailable(state: KeyringState, wrapped: readonly WrappedDataKey[]): string | undefined {
    const ring = this.#loaded!.ring;
    const missing = wrapped.filter((row) => !ring.has(row.version)).map((r) => `v${r.version}`);
    if (missing.length === 0 && ring.currentVersion === state.currentVersion) return undefined;
    return (
      `data key ${missing.join(', ') || `v${state.currentVersion}`} is wrapped under master key ` +
      `${state.fingerprint}, which this process does not hold (it was started with ` +
      `${this.#master?.fingerprint ?? 'no key'}): restart it with the current master key`
    );
  }

  #setUnavailable(reason: string | undefined): void {
    if (reason !== undefined && reason !== this.#unavailable) {
      this.#options.logger.error('keyring unavailable: cannot load a data key', { reason });
    } else if (reason === undefined && this.#unavailable !== undefined) {
      this.#options.logger.info('keyring available again');
    }
    this.#unavailable = reason;
  }

  /** The master key with `fingerprint`: the one held, else one found in a known place. */
  #masterKeyFor(fingerprint: string): HeldMasterKey | undefined {
    if (this.#master?.fingerprint === fingerprint) return this.#master;
    const key = this.#findMasterKey(fingerprint);
    if (!key) return undefined;
    this.#master?.key.fill(0);
    this.#master = { key, fingerprint };
    return this.#master;
  }

  #findMasterKey(fingerprint: string): Uint8Array | undefined {
    const { config, env, sqlite } = this.#options;
    const candidates: (() => Uint8Array | undefined)[] = [
      () => loadConfiguredMasterKey(config, env).key,
    ];
    if (this.source === 'file') {
      candidates.push(() => readKeyFileIfUsable(nextKeyPath(configuredKeyPath(config)))?.key);
    }
    for (const rotation of readRotations(sqlite).reverse()) {
      if (rotation.newKeyFile && rotation.newFingerprint === fingerprint) {
        const path = rotation.newKeyFile;
        candidates.push(() => readKeyFileIfUsable(path)?.key);
      }
    }
    for (const candidate of candidates) {
      let key: Uint8Array | undefined;
      try {
        key = candidate();
      } catch {
        continue; // an unusable source is simply not a match
      }
      if (key && masterKeyFingerprint(key) === fingerprint) return key;
      key?.fill(0);
    }
    return undefined;
  }
}

/** One way of opening a sealed value with the loaded ring (see LiveKeyring.#opening). */
type Open<T> = (ring: Keyring, ciphertext: Uint8Array, where: ValueLocation) => T;
const openBytes: Open<Uint8Array> = (ring, ciphertext, where) => ring.decrypt(ciphertext, where);
const openText: Open<string> = (ring, ciphertext, where) => ring.decryptString(ciphertext, where);

/** Unwraps one stored key whose master key matched by fingerprint; failing means tampering. */
function unwrapStoredKey(masterKey: Uint8Array, row: WrappedDataKey): Uint8Array {
  try {
    return unwrapDataKey(masterKey, row.version, row.wrapped);
  } catch {
    throw new KeyringError(
      'damaged',
      `data key v${row.version} does not open with the master key whose fingerprint the ` +
        `database records: the stored keyring was altered (restore it from a backup)`,
    );
  }
}
