/**
 * Fills an instance with many sealed secrets and audit entries, written directly in large
 * transactions (seconds for 100 000), for the tests and benches that need a big database.
 */
import { appendAuditEntries, localAuditEntry } from '../src/ledger/audit-record.ts';
import { resourceValueColumn, versionRowId } from '../src/db/schema/resources.ts';
import type { Instance } from '../src/instance.ts';
import { insertProject, newProjectId } from '../src/projects/service.ts';
import { newResourceId } from '../src/resources/store.ts';
import { insertVault, newVaultId } from '../src/vaults/service.ts';

const CHUNK = 10_000;

/** Adds `secrets` secrets (one vault of a new project) and `entries` audit entries. */
export function fillDatabase(
  instance: Pick<Instance, 'sqlite' | 'db' | 'keyring' | 'clock'>,
  secrets: number,
  entries: number,
): void {
  const { sqlite, db, keyring, clock } = instance;
  const now = Date.now();
  const projectId = newProjectId();
  const vaultId = newVaultId();
  const by = 'fill';
  sqlite.transaction(() => {
    insertProject(db, { id: projectId, name: 'big', description: null, createdBy: by }, now);
    const vault = { id: vaultId, projectId, name: 'v', description: null, restricted: false };
    insertVault(db, { ...vault, createdBy: by }, now);
  })();
  const insertRow = sqlite.prepare(
    `INSERT INTO resources (id, vault_id, project_id, type, name, description, tags, enabled,
       content_type, current_version, created_at, updated_at, created_by)
     VALUES (?, ?, ?, 'secret', ?, NULL, '[]', 1, 'text/plain', 1, ?, ?, 'fill')`,
  );
  const insertVersion = sqlite.prepare(
    `INSERT INTO resource_versions (id, resource_id, version, value, created_at, created_by)
     VALUES (?, ?, 1, ?, ?, 'fill')`,
  );
  for (let start = 0; start < secrets; start += CHUNK) {
    sqlite.transaction(() => {
      for (let i = start; i < Math.min(secrets, start + CHUNK); i++) {
        const id = newResourceId();
        insertRow.run(id, vaultId, projectId, `SECRET_${i}`, now + i, now + i);
        const rowId = versionRowId(id, 1);
        const where = resourceValueColumn.at(rowId, 1, { parentId: id, vaultId, projectId });
        const value = `postgres://app:${crypto.randomUUID()}@db-${i}.internal:5432/app`;
        insertVersion.run(rowId, id, keyring.encrypt(value, where), now + i);
      }
    })();
  }
  for (let start = 0; start < entries; start += CHUNK) {
    const n = Math.min(CHUNK, entries - start);
    sqlite.transaction(() =>
      appendAuditEntries(db, clock, Array(n).fill(localAuditEntry('fill.entry', null))),
    )();
  }
}
