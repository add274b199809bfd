/**
 * The integrity record (keyring_integrity): the integrity root key wrapped under the master key,
 * and where the keyed audit chain starts. Opening it yields the derived MAC keys, which are kept
 * per connection in memory (like the data keys) for the API key and audit code to use. See
 * src/crypto/integrity.ts for the keys and docs/audit.md for what they protect.
 */
import type { Database } from 'bun:sqlite';
import { DecryptionError } from '../crypto/errors.ts';
import {
  deriveIntegrityKeys,
  generateIntegrityRootKey,
  hmacHex,
  hmacHexMatches,
  unwrapIntegrityRootKey,
  wrapIntegrityRootKey,
  type IntegrityKeys,
} from '../crypto/integrity.ts';
import { masterKeyFingerprint } from '../crypto/keyring.ts';
import { KeyringError, MasterKeyMismatchError } from './errors.ts';

/** The derived keys of an open instance, and the first audit entry hashed with a key. */
export type Integrity = IntegrityKeys & { auditKeyedFrom: number };

type IntegrityRow = {
  wrapped: Uint8Array;
  auditKeyedFrom: number;
  createdAt: number;
  /** keyring_state.value_format: covered by the MAC so it cannot be set back to 1. */
  valueFormat: number;
  mac: string;
};

const loaded = new WeakMap<Database, Integrity>();

/** Makes `integrity` the keys every MAC on this connection is made and checked with. */
export function registerIntegrity(sqlite: Database, integrity: Integrity): void {
  loaded.set(sqlite, integrity);
}

/** Zeroes and forgets the keys of a connection (the instance is closing). */
export function forgetIntegrity(sqlite: Database): void {
  const integrity = loaded.get(sqlite);
  if (!integrity) return;
  integrity.apiKeyMac.fill(0);
  integrity.auditChain.fill(0);
  integrity.state.fill(0);
  loaded.delete(sqlite);
}

/**
 * The integrity keys of this connection. Throws when the keyring was not opened on it: nothing
 * may write an API key or an audit entry without its MAC (fail closed).
 */
export function integrityOf(sqlite: Database): Integrity {
  const integrity = loaded.get(sqlite);
  if (!integrity) {
    throw new KeyringError('not_initialized', 'the integrity keys are not loaded on this database');
  }
  return integrity;
}

/** The integrity keys of this connection, if its keyring was opened. */
export function maybeIntegrityOf(sqlite: Database): Integrity | undefined {
  return loaded.get(sqlite);
}

/**
 * What the record's MAC covers: where the keyed chain starts, when the record was made, and the
 * oldest envelope format stored values may still have (keyring_state.value_format). Covering the
 * format stops someone with write access to the file from setting it back to 1, which would
 * make the owner-binding migration accept, and re-seal where it now lies, an old format-1
 * value moved in from a copy of the file.
 */
function stateMacInput(auditKeyedFrom: number, createdAt: number, valueFormat: number): string {
  return JSON.stringify(['secryn.integrity-state.v1', auditKeyedFrom, createdAt, valueFormat]);
}

/** The stored record, or undefined when this database has none (made by an older version). */
export function readIntegrityRow(sqlite: Database): IntegrityRow | undefined {
  return (
    sqlite
      .query<IntegrityRow, []>(
        `SELECT wrapped_key AS wrapped, audit_keyed_from AS auditKeyedFrom,
           created_at AS createdAt, mac,
           (SELECT value_format FROM keyring_state WHERE id = 1) AS valueFormat
         FROM keyring_integrity WHERE id = 1`,
      )
      .get() ?? undefined
  );
}

/**
 * Opens the record with `masterKey`: unwraps the root key, derives the subkeys and checks the
 * record's MAC. Throws KeyringError('damaged') when the root key does not open or the record
 * was altered.
 */
export function unlockIntegrity(masterKey: Uint8Array, row: IntegrityRow): Integrity {
  let root: Uint8Array | undefined;
  try {
    root = unwrapIntegrityRootKey(masterKey, row.wrapped);
  } catch (error) {
    if (!(error instanceof DecryptionError)) throw error;
  }
  if (!root) {
    throw new KeyringError(
      'damaged',
      'the integrity key does not open with the master key: the stored keyring was altered ' +
        '(restore it from a backup)',
    );
  }
  const keys = deriveIntegrityKeys(root);
  root.fill(0);
  const input = stateMacInput(row.auditKeyedFrom, row.createdAt, row.valueFormat);
  if (!hmacHexMatches(keys.state, input, row.mac)) {
    throw new KeyringError(
      'damaged',
      'the integrity record was altered (where the keyed audit chain starts, or the stored ' +
        "values' format, no longer matches its MAC): restore the database from a backup",
    );
  }
  return { ...keys, auditKeyedFrom: row.auditKeyedFrom };
}

/**
 * Creates the integrity record under `masterKey`, with the keyed audit chain starting at
 * `auditKeyedFrom`, and registers its keys on the connection. Run inside the caller's
 * transaction.
 */
export function createIntegrity(
  sqlite: Database,
  masterKey: Uint8Array,
  auditKeyedFrom: number,
  now: number,
): Integrity {
  const root = generateIntegrityRootKey();
  try {
    const keys = deriveIntegrityKeys(root);
    sqlite
      .query(
        `INSERT INTO keyring_integrity (id, wrapped_key, audit_keyed_from, created_at, mac)
         VALUES (1, ?, ?, ?, ?)`,
      )
      .run(
        wrapIntegrityRootKey(masterKey, root),
        auditKeyedFrom,
        now,
        hmacHex(keys.state, stateMacInput(auditKeyedFrom, now, readValueFormatOf(sqlite))),
      );
    const integrity = { ...keys, auditKeyedFrom };
    registerIntegrity(sqlite, integrity);
    return integrity;
  } finally {
    root.fill(0);
  }
}

function readValueFormatOf(sqlite: Database): number {
  return (
    sqlite
      .query<{ f: number }, []>('SELECT value_format AS f FROM keyring_state WHERE id = 1')
      .get()?.f ?? 1
  );
}

/**
 * Sets keyring_state.value_format to 2 and renews the record's MAC to cover it, in one step
 * (call inside the caller's write transaction, with the keys of this connection loaded).
 */
export function markValueFormatBound(sqlite: Database): void {
  sqlite.query('UPDATE keyring_state SET value_format = 2 WHERE id = 1 AND value_format < 2').run();
  sealIntegrityState(sqlite);
}

/**
 * Renews the record's MAC over the state as it is now (after a change this process made on
 * purpose; never to accept a state found on opening). A database without the record has
 * nothing to renew.
 */
export function sealIntegrityState(sqlite: Database): void {
  const row = readIntegrityRow(sqlite);
  if (!row) return;
  const { state } = integrityOf(sqlite);
  sqlite
    .query('UPDATE keyring_integrity SET mac = ? WHERE id = 1')
    .run(hmacHex(state, stateMacInput(row.auditKeyedFrom, row.createdAt, row.valueFormat)));
}

/**
 * Re-wraps the integrity root key from `oldKey` to `newKey` (a master-key rotation, inside its
 * transaction). The root key, and so every MAC, stays the same. A database without the record
 * (not opened since the upgrade) has nothing to re-wrap.
 */
export function rewrapIntegrityKey(sqlite: Database, oldKey: Uint8Array, newKey: Uint8Array): void {
  const row = readIntegrityRow(sqlite);
  if (!row) return;
  const root = unwrapIntegrityRootKey(oldKey, row.wrapped);
  if (!root) {
    throw new KeyringError('damaged', 'the integrity key does not open with the master key');
  }
  try {
    sqlite
      .query('UPDATE keyring_integrity SET wrapped_key = ? WHERE id = 1')
      .run(wrapIntegrityRootKey(newKey, root));
  } finally {
    root.fill(0);
  }
}

/** The next audit position: the entry after the newest one, or after the retention checkpoint. */
export function nextAuditSeq(sqlite: Database): number {
  const head =
    sqlite.query<{ seq: number | null }, []>('SELECT MAX(seq) AS seq FROM audit_log').get()?.seq ??
    sqlite
      .query<{ seq: number }, []>('SELECT through_seq AS seq FROM audit_checkpoint WHERE id = 1')
      .get()?.seq ??
    0;
  return head + 1;
}

/**
 * The integrity keys of a database opened without an instance (`audit verify`, `restore`'s
 * check of a backup), changing nothing: the master key must be the one the keyring records and
 * the record must exist and open. Throws MasterKeyMismatchError or KeyringError otherwise.
 */
export function readIntegrityWith(sqlite: Database, masterKey: Uint8Array): Integrity {
  const state = sqlite
    .query<
      { fingerprint: string },
      []
    >('SELECT master_key_fingerprint AS fingerprint FROM keyring_state WHERE id = 1')
    .get();
  if (!state) throw new KeyringError('not_initialized', 'the database has no keyring');
  const fingerprint = masterKeyFingerprint(masterKey);
  if (fingerprint !== state.fingerprint) {
    throw new MasterKeyMismatchError(
      `wrong master key: the configured key (fingerprint ${fingerprint}) is not the one this ` +
        `database is sealed with (fingerprint ${state.fingerprint})`,
      state.fingerprint,
      fingerprint,
    );
  }
  const row = readIntegrityRow(sqlite);
  if (!row) {
    throw new KeyringError(
      'not_initialized',
      'the database has no integrity record (it was last opened by a version before integrity ' +
        'protection): start the instance once to create it',
    );
  }
  return unlockIntegrity(masterKey, row);
}
