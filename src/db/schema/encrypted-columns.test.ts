import { describe, expect, test } from 'bun:test';
import { blob, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { DecryptionError } from '../../crypto/errors.ts';
import { Keyring, generateDataKey } from '../../crypto/keyring.ts';
import { encryptedColumns, registerEncryptedColumn } from './encrypted-columns.ts';

const things = sqliteTable('registry_test_things', {
  id: text('id').primaryKey(),
  rev: integer('rev').notNull(),
  secret: blob('secret_ct', { mode: 'buffer' }),
  other: blob('other_ct', { mode: 'buffer' }),
});
const elsewhere = sqliteTable('registry_test_elsewhere', { id: integer('id').primaryKey() });

describe('encrypted-columns registry', () => {
  test('registers by SQL names and builds the AAD location', () => {
    const column = registerEncryptedColumn({
      table: things,
      idColumn: things.id,
      column: things.secret,
      versionColumn: things.rev,
    });
    expect(column).toMatchObject({
      tableName: 'registry_test_things',
      idColumnName: 'id',
      columnName: 'secret_ct',
      versionColumnName: 'rev',
    });
    expect(column.at('thg_1', 3)).toEqual({
      table: 'registry_test_things',
      column: 'secret_ct',
      rowId: 'thg_1',
      version: 3,
    });
    expect(() => column.at('thg_1')).toThrow(/need a version/);
    expect(encryptedColumns()).toContain(column);
  });

  test('registering again returns the same handle; a different layout is refused', () => {
    const first = registerEncryptedColumn({
      table: things,
      idColumn: things.id,
      column: things.other,
    });
    expect(
      registerEncryptedColumn({ table: things, idColumn: things.id, column: things.other }),
    ).toBe(first);
    expect(() =>
      registerEncryptedColumn({
        table: things,
        idColumn: things.id,
        column: things.other,
        versionColumn: things.rev,
      }),
    ).toThrow(/already registered differently/);
    expect(() =>
      registerEncryptedColumn({ table: things, idColumn: elsewhere.id, column: things.other }),
    ).toThrow(/does not belong/);
  });

  test('a value sealed for one row or column does not open at another', () => {
    const column = registerEncryptedColumn({
      table: things,
      idColumn: things.id,
      column: things.secret,
      versionColumn: things.rev,
    });
    const other = registerEncryptedColumn({
      table: things,
      idColumn: things.id,
      column: things.other,
    });
    const ring = new Keyring([{ version: 1, key: generateDataKey() }]);
    const sealed = ring.encrypt('s3cret', column.at('thg_1', 1));
    expect(ring.decryptString(sealed, column.at('thg_1', 1))).toBe('s3cret');
    for (const where of [column.at('thg_2', 1), column.at('thg_1', 2), other.at('thg_1')]) {
      expect(() => ring.decrypt(sealed, where)).toThrow(DecryptionError);
    }
  });
});

describe('owned columns', () => {
  const parents = sqliteTable('registry_test_parents', {
    id: text('id').primaryKey(),
    vault: text('vault_id').notNull(),
    project: text('project_id').notNull(),
  });
  const children = sqliteTable('registry_test_children', {
    id: text('id').primaryKey(),
    parent: text('parent_id').notNull(),
    value: blob('value', { mode: 'buffer' }),
  });
  const column = registerEncryptedColumn({
    table: children,
    idColumn: children.id,
    column: children.value,
    owner: {
      parent: { foreignKey: children.parent, key: parents.id },
      vaultId: parents.vault,
      projectId: parents.project,
    },
  });

  test('a value binds its parent, vault and project, each required', () => {
    const owner = { parentId: 'p1', vaultId: 'vlt_a', projectId: 'prj_a' };
    expect(column.owner).toEqual({
      parent: { table: 'registry_test_parents', foreignKey: 'parent_id', key: 'id' },
      vaultId: 'vault_id',
      projectId: 'project_id',
    });
    expect(() => column.at('c1')).toThrow(/need their parentId/);
    expect(() => column.at('c1', undefined, { ...owner, vaultId: undefined })).toThrow(
      /need their vaultId/,
    );
    const ring = new Keyring([{ version: 1, key: generateDataKey() }]);
    const sealed = ring.encrypt('s3cret', column.at('c1', undefined, owner));
    expect(ring.decryptString(sealed, column.at('c1', undefined, owner))).toBe('s3cret');
    for (const moved of [
      { ...owner, vaultId: 'vlt_b' },
      { ...owner, projectId: 'prj_b' },
      { ...owner, parentId: 'p2' },
    ]) {
      expect(() => ring.decrypt(sealed, column.at('c1', undefined, moved))).toThrow(
        DecryptionError,
      );
    }
  });

  test('every registered column of the product is walked with its owner', () => {
    const byName = new Map(encryptedColumns().map((c) => [`${c.tableName}.${c.columnName}`, c]));
    for (const name of [
      'resource_versions.value',
      'webhooks.url',
      'webhook_secrets.secret',
      'idempotency_keys.response_body',
    ]) {
      expect(byName.has(name)).toBe(true);
    }
    expect(byName.get('resource_versions.value')!.owner).toEqual({
      parent: { table: 'resources', foreignKey: 'resource_id', key: 'id' },
      vaultId: 'vault_id',
      projectId: 'project_id',
    });
  });
});
