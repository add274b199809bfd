/**
 * The instance keyring: what every feature uses to seal and open its encrypted columns. It holds
 * the unwrapped data keys in memory (never the master key) and follows changes made by other
 * processes: a `master-key rotate --reencrypt` elsewhere adds a data key and makes it current;
 * this keyring notices through the `generation` counter (checked at most once per refresh
 * interval on encrypt, and at once when a value names a data key it does not hold) and reloads
 * from the database, re-reading the master key from its source.
 */
import type { Database } from 'bun:sqlite';
import type { ValueLocation } from '../crypto/envelope.ts';
import { UnknownDataKeyError } from '../crypto/errors.ts';
import { masterKeyFingerprint, type Keyring } from '../crypto/keyring.ts';
import type { Config } from '../config/schema.ts';
import { ServiceUnavailableError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { KeyringError, MasterKeyMismatchError } from './errors.ts';
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
  unlockKeyring,
} from './store.ts';

/** Where the master key comes from (see src/crypto/master-key.ts for the order). */
export type MasterKeySource = 'file' | 'env' | 'credential';

/**
 * The keyring API every feature uses for its encrypted columns. Build locations with the
 * column's {@link import('./encrypted-columns.ts').EncryptedColumn.at}.
 */
export interface InstanceKeyring {
  /**
   * Seals `plaintext` (strings as UTF-8) for `where` under the current data key.
   * Throws ServiceUnavailableError (503) when the keyring is not loaded.
   */
  encrypt(plaintext: Uint8Array | string, where: ValueLocation): Uint8Array;
  /**
   * Opens a value sealed for `where`. A value under a data key this process has not loaded yet
   * triggers one reload from the database. Throws DecryptionError for anything tampered,
   * misplaced or corrupt; UnknownDataKeyError if the database does not hold its data key either.
   */
  decrypt(ciphertext: Uint8Array, where: ValueLocation): Uint8Array;
  /** {@link decrypt} then strict UTF-8 decoding (DecryptionError('invalid_utf8') if invalid). */
  decryptString(ciphertext: Uint8Array, where: ValueLocation): string;
  /** True while a current data key is loaded; health answers 503 otherwise. */
  isReady(): boolean;
  /** The data-key version new values are sealed under. */
  readonly currentVersion: number;
  /** Fingerprint of the master key that unwrapped the loaded data keys. */
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

/** The {@link InstanceKeyring} of an open instance; built by `openKeyring` (open.ts). */
export class LiveKeyring implements InstanceKeyring {
  #loaded: Loaded | undefined;
  #lastCheck: number;
  #failedGeneration: number | undefined;
  readonly #options: LiveKeyringOptions;
  readonly #interval: number;
  readonly #now: () => number;
  readonly source: MasterKeySource;

  constructor(options: LiveKeyringOptions, initial: Loaded, source: MasterKeySource) {
    this.#options = options;
    this.#interval = options.refreshIntervalMs ?? 1000;
    this.#now = options.monotonicNow ?? (() => performance.now());
    this.#loaded = initial;
    this.#lastCheck = this.#now();
    this.source = source;
  }

  encrypt(plaintext: Uint8Array | string, where: ValueLocation): Uint8Array {
    if (this.#now() - this.#lastCheck >= this.#interval) this.refresh();
    return this.#ring().encrypt(plaintext, where);
  }

  decrypt(ciphertext: Uint8Array, where: ValueLocation): Uint8Array {
    try {
      return this.#ring().decrypt(ciphertext, where);
    } catch (error) {
      if (!(error instanceof UnknownDataKeyError) || !this.refresh()) throw error;
      return this.#ring().decrypt(ciphertext, where);
    }
  }

  decryptString(ciphertext: Uint8Array, where: ValueLocation): string {
    try {
      return this.#ring().decryptString(ciphertext, where);
    } catch (error) {
      if (!(error instanceof UnknownDataKeyError) || !this.refresh()) throw error;
      return this.#ring().decryptString(ciphertext, where);
    }
  }

  isReady(): boolean {
    return this.#loaded?.ring.isReady ?? false;
  }

  get currentVersion(): number {
    return this.#ring().currentVersion!;
  }

  get fingerprint(): string {
    return this.#loaded?.fingerprint ?? '';
  }

  /** The generation of the loaded keyring (grows with every data-key change). */
  get generation(): number {
    return this.#loaded?.generation ?? 0;
  }

  /** Loaded data-key versions, ascending. */
  versions(): number[] {
    return this.#loaded?.ring.versions() ?? [];
  }

  /**
   * Checks the generation counter now and reloads if another process changed the keyring.
   * Returns true if it reloaded. A failed reload is logged (once per generation) and the keys
   * already loaded stay in use, so values they protect keep decrypting.
   */
  refresh(): boolean {
    this.#lastCheck = this.#now();
    if (!this.#loaded) return false;
    const generation = readKeyringGeneration(this.#options.sqlite);
    if (generation === undefined || generation === this.#loaded.generation) return false;
    try {
      this.reload();
      this.#failedGeneration = undefined;
      return true;
    } catch (error) {
      if (this.#failedGeneration !== generation) {
        this.#failedGeneration = generation;
        this.#options.logger.error('keyring reload failed; keeping the data keys already loaded', {
          reason: error instanceof Error ? error.message : String(error),
        });
      }
      return false;
    }
  }

  /**
   * Reloads the keyring from the database unconditionally, reading the master key again. Accepts,
   * in order: the configured source, `<key file>.next` (a rotation between its commit and its
   * file swap), and the new-key file of a rotation recorded for an env/credential source. Throws
   * MasterKeyMismatchError if none matches the stored fingerprint; the old keys then stay loaded.
   */
  reload(): void {
    if (!this.#loaded) throw new ServiceUnavailableError('The keyring is not loaded');
    // Files can move between our reads while another process finishes a swap: try again.
    for (let attempt = 1; ; attempt++) {
      const snapshot = readKeyringSnapshot(this.#options.sqlite);
      if (!snapshot) throw new KeyringError('not_initialized', 'the keyring has disappeared');
      const key = this.#findMasterKey(snapshot.state.fingerprint);
      if (key) {
        try {
          const ring = unlockKeyring(key, snapshot.state, snapshot.wrapped);
          this.#loaded = {
            ring,
            generation: snapshot.state.generation,
            fingerprint: snapshot.state.fingerprint,
          };
          return;
        } finally {
          key.fill(0);
        }
      }
      if (attempt === 3) {
        throw new MasterKeyMismatchError(
          `no available master key matches fingerprint ${snapshot.state.fingerprint}`,
          snapshot.state.fingerprint,
          '',
        );
      }
    }
  }

  /** Forgets every data key and the integrity keys; the instance is then unhealthy and cannot seal or open values. */
  close(): void {
    this.#loaded = undefined;
    forgetIntegrity(this.#options.sqlite);
  }

  #ring(): Keyring {
    if (!this.#loaded) throw new ServiceUnavailableError('The keyring is not loaded');
    return this.#loaded.ring;
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
