/**
 * Projects and their vaults: create, rename, restrict, delete when empty (each only if the key
 * may); a refused delete shows the server's reason.
 */
import { useState } from 'preact/hooks';
import { api, ApiError, type List, type Me } from '../api.ts';
import { Field, formValue, Status, useAction, useLoad } from '../ui.tsx';

type Project = { id: string; name: string; description: string | null };
type Vault = { id: string; project_id: string; name: string; restricted: boolean };

export function ProjectsPage({ me }: { me: Me }) {
  const may = (p: string) => me.permissions.includes(p);
  const { data, error, reload } = useLoad(async () => {
    const [projects, vaults] = await Promise.all([
      may('projects:read')
        ? api<List<Project>>('GET', '/v1/projects?limit=100')
        : Promise.resolve({ data: [] as Project[] }),
      api<List<Vault>>('GET', '/v1/vaults?limit=100'),
    ]);
    return { projects: projects.data, vaults: vaults.data };
  });
  const action = useAction();
  const create = (event: Event) => {
    event.preventDefault();
    const name = formValue(event, 'name');
    const form = event.currentTarget as HTMLFormElement;
    void action.run(async () => {
      await api('POST', '/v1/projects', { body: { name } });
      form.reset();
      await reload();
      return `Project ${name} created.`;
    });
  };
  // Keys that see vaults but not projects (access keys) still get their vaults, ungrouped.
  const projectIds = new Set(data?.projects.map((p) => p.id));
  const loose = data?.vaults.filter((v) => !projectIds.has(v.project_id)) ?? [];
  return (
    <section>
      <h1>Projects and vaults</h1>
      <Status error={error} />
      {may('projects:write') && (
        <form class="inline" onSubmit={create} aria-label="New project">
          <Field label="New project name">
            <input name="name" required maxLength={100} />
          </Field>
          <button type="submit" disabled={action.busy}>
            Create project
          </button>
        </form>
      )}
      <Status error={action.error} ok={action.ok} />
      {data?.projects.map((project) => (
        <ProjectBlock
          key={project.id}
          me={me}
          project={project}
          vaults={data.vaults.filter((v) => v.project_id === project.id)}
          changed={reload}
        />
      ))}
      {loose.length > 0 && <VaultList me={me} vaults={loose} changed={reload} />}
      {data && data.projects.length === 0 && loose.length === 0 && <p>Nothing here yet.</p>}
    </section>
  );
}

function ProjectBlock(props: {
  me: Me;
  project: Project;
  vaults: Vault[];
  changed: () => Promise<void>;
}) {
  const { me, project, vaults, changed } = props;
  const may = (p: string) => me.permissions.includes(p);
  const action = useAction();
  const [renaming, setRenaming] = useState(false);
  const rename = (event: Event) => {
    event.preventDefault();
    const name = formValue(event, 'name');
    void action.run(async () => {
      await api('PUT', `/v1/projects/${project.id}`, { body: { name } });
      setRenaming(false);
      await changed();
      return 'Renamed.';
    });
  };
  const remove = () =>
    action.run(async () => {
      if (!confirm(`Delete project ${project.name}?`)) return;
      await refusedAs(`Project ${project.name} was not deleted`, () =>
        api('DELETE', `/v1/projects/${project.id}`),
      );
      await changed();
    });
  const createVault = (event: Event) => {
    event.preventDefault();
    const name = formValue(event, 'name');
    const form = event.currentTarget as HTMLFormElement;
    void action.run(async () => {
      await api('POST', '/v1/vaults', { body: { name, project_id: project.id } });
      form.reset();
      await changed();
      return `Vault ${name} created.`;
    });
  };
  return (
    <article class="project" aria-labelledby={`p-${project.id}`}>
      <h2 id={`p-${project.id}`}>{project.name}</h2>
      {project.description && <p>{project.description}</p>}
      <div class="actions">
        {may('projects:write') && !renaming && (
          <button type="button" onClick={() => setRenaming(true)}>
            Rename project
          </button>
        )}
        {may('projects:write') && (
          <button type="button" class="danger" onClick={remove}>
            Delete project
          </button>
        )}
      </div>
      {renaming && (
        <form class="inline" onSubmit={rename}>
          <Field label="Project name">
            <input name="name" required defaultValue={project.name} />
          </Field>
          <button type="submit">Save</button>
          <button type="button" onClick={() => setRenaming(false)}>
            Cancel
          </button>
        </form>
      )}
      <VaultList me={me} vaults={vaults} changed={changed} />
      {may('vaults:write') && (
        <form class="inline" onSubmit={createVault} aria-label={`New vault in ${project.name}`}>
          <Field label="New vault name">
            <input name="name" required maxLength={100} />
          </Field>
          <button type="submit" disabled={action.busy}>
            Create vault
          </button>
        </form>
      )}
      <Status error={action.error} ok={action.ok} />
    </article>
  );
}

function VaultList({
  me,
  vaults,
  changed,
}: {
  me: Me;
  vaults: Vault[];
  changed: () => Promise<void>;
}) {
  if (vaults.length === 0) return <p class="muted">No vaults.</p>;
  return (
    <ul class="vaults">
      {vaults.map((vault) => (
        <VaultRow key={vault.id} me={me} vault={vault} changed={changed} />
      ))}
    </ul>
  );
}

function VaultRow({ me, vault, changed }: { me: Me; vault: Vault; changed: () => Promise<void> }) {
  const may = me.permissions.includes('vaults:write');
  const action = useAction();
  const [renaming, setRenaming] = useState(false);
  const rename = (event: Event) => {
    event.preventDefault();
    const name = formValue(event, 'name');
    void action.run(async () => {
      await api('PUT', `/v1/vaults/${vault.id}`, { body: { name } });
      setRenaming(false);
      await changed();
    });
  };
  const remove = () =>
    action.run(async () => {
      if (!confirm(`Delete vault ${vault.name}? Only an empty vault can be deleted.`)) return;
      await refusedAs(`Vault ${vault.name} was not deleted`, () =>
        api('DELETE', `/v1/vaults/${vault.id}`),
      );
      await changed();
    });
  // Restricted: reachable only by admins, managers of its project and keys granted it by id.
  const restrict = () =>
    action.run(async () => {
      await api('PUT', `/v1/vaults/${vault.id}`, { body: { restricted: !vault.restricted } });
      await changed();
      return vault.restricted
        ? `${vault.name} is no longer restricted.`
        : `${vault.name} is now restricted.`;
    });
  return (
    <li>
      {renaming ? (
        <form class="inline" onSubmit={rename}>
          <Field label="Vault name">
            <input name="name" required defaultValue={vault.name} />
          </Field>
          <button type="submit">Save</button>
          <button type="button" onClick={() => setRenaming(false)}>
            Cancel
          </button>
        </form>
      ) : (
        <a href={`#/vaults/${vault.id}`}>{vault.name}</a>
      )}
      {vault.restricted && <span class="badge">restricted</span>}
      {may && !renaming && (
        <>
          <button
            type="button"
            class="small"
            onClick={() => setRenaming(true)}
            aria-label={`Rename vault ${vault.name}`}
          >
            Rename
          </button>
          <button
            type="button"
            class="small"
            onClick={restrict}
            aria-label={`${vault.restricted ? 'Unrestrict' : 'Restrict'} vault ${vault.name}`}
          >
            {vault.restricted ? 'Unrestrict' : 'Restrict'}
          </button>
          <button
            type="button"
            class="small danger"
            onClick={remove}
            aria-label={`Delete vault ${vault.name}`}
          >
            Delete
          </button>
        </>
      )}
      <Status error={action.error} ok={action.ok} />
    </li>
  );
}

/** Runs a delete; a 409 (not empty) becomes "<what>: <the server's reason>". */
async function refusedAs(what: string, call: () => Promise<unknown>): Promise<void> {
  try {
    await call();
  } catch (error) {
    if (error instanceof ApiError && error.status === 409)
      throw new Error(`${what}: ${error.message}`);
    throw error;
  }
}
