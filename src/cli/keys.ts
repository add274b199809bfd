/** `secryn keys create|list|revoke`: API keys managed straight in the database. */
import { Value } from '@sinclair/typebox/value';
import { defineCommand } from 'citty';
import { KEY_CHANGE_VISIBLE_AFTER_MS } from '../access/authenticate.ts';
import { isPermission, isRole, type Permission } from '../access/permissions.ts';
import { commitLocalChange } from '../changes/index.ts';
import { toRfc3339 } from '../db/columns.ts';
import { AppError } from '../errors.ts';
import { openInstance, type Instance } from '../instance.ts';
import { localActor } from '../os-user.ts';
import {
  checkKeyReferences,
  checkNewApiKey,
  findApiKey,
  emitApiKeyEvent,
  insertApiKey,
  listApiKeys,
  newApiKeyId,
  parseDuration,
  revokeApiKey,
  toApiKeyObject,
  type NewApiKey,
} from '../keys/service.ts';
import { CreateApiKeyBody } from '../keys/schemas.ts';
import type { ApiKeyRow } from '../db/schema/keys.ts';
import { cliLogger, commonArgs, jsonArg, loadCliConfig, print, printable } from './common.ts';
import { CliFailure, ExitCode } from './exit.ts';

/**
 * `secryn keys create|list|revoke`: API keys managed straight in the database, with no server
 * (and safely beside a running one: each change is one short IMMEDIATE transaction that waits
 * up to `storage.busy_timeout_ms` for the server's write lock, and is audited in it as the local
 * OS user). The operator at the console is not limited by the no-escalation rules. A token is
 * printed once, to stdout, and never logged.
 */

/**
 * Every value of a repeatable flag, in order: `--project a --project=b --project c,d`. citty
 * (like `util.parseArgs` without `multiple`) keeps only the last occurrence, so the raw
 * arguments are read here. Commas also separate values (ids and scopes never contain one).
 */
export function repeatedFlag(rawArgs: readonly string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const arg = rawArgs[i]!;
    if (arg === '--') break;
    let value: string | undefined;
    if (arg === `--${name}`) value = rawArgs[++i];
    else if (arg.startsWith(`--${name}=`)) value = arg.slice(name.length + 3);
    else continue;
    if (value === undefined) throw new CliFailure(`--${name} needs a value`, ExitCode.USAGE);
    values.push(...value.split(',').map((v) => v.trim()));
  }
  if (values.some((v) => v === ''))
    throw new CliFailure(`--${name} has an empty value`, ExitCode.USAGE);
  return [...new Set(values)];
}

function positiveInteger(flag: string, value: string | undefined): number | null {
  if (value === undefined || value === '') return null;
  if (!/^[1-9][0-9]{0,8}$/.test(value)) {
    throw new CliFailure(`--${flag} must be a positive integer`, ExitCode.USAGE);
  }
  return Number(value);
}

/** The rule `POST /v1/api-keys` applies to `name`: the CLI must not store a name the API refuses. */
const KEY_NAME = CreateApiKeyBody.properties.name;

/** @throws CliFailure (exit 2) with the API's own message when `name` breaks {@link KEY_NAME}. */
function checkKeyName(name: string): void {
  if (!Value.Check(KEY_NAME, name)) {
    throw new CliFailure(`--name: ${String(KEY_NAME.error)}`, ExitCode.USAGE);
  }
}

/** Opens the instance, runs `work`, and always closes it. */
async function withInstance<T>(
  args: { config?: string },
  work: (instance: Instance) => T,
): Promise<T> {
  const { config } = loadCliConfig(args);
  const instance = openInstance(config, cliLogger(config));
  try {
    return work(instance);
  } finally {
    await instance.close();
  }
}

/** A failure of the key rules (bad scope, admin with limits, ...) as one CLI line. */
function asCliFailure(error: unknown): unknown {
  if (error instanceof AppError && error.code === 'INVALID_REQUEST') {
    const field = typeof error.details?.field === 'string' ? error.details.field : undefined;
    const flag = field === undefined ? '' : `${FLAG_OF_FIELD[field] ?? field}: `;
    return new CliFailure(
      `${flag}${String(error.details?.reason ?? error.message)}`,
      ExitCode.USAGE,
    );
  }
  return error;
}

const FLAG_OF_FIELD: Record<string, string> = {
  project_ids: '--project',
  vault_ids: '--vault',
  scopes: '--scope',
  expires_at: '--expires-in',
};

const createCommand = defineCommand({
  meta: { name: 'create', description: 'Create an API key and print its token (shown once)' },
  args: {
    ...commonArgs,
    ...jsonArg,
    name: { type: 'string', description: 'Name of the key', required: true, valueHint: 'name' },
    role: {
      type: 'string',
      description: 'admin, manager, contributor, reader or access',
      required: true,
      valueHint: 'role',
    },
    project: {
      type: 'string',
      description: 'Limit to a project (repeatable)',
      valueHint: 'prj_id',
    },
    vault: { type: 'string', description: 'Grant a vault (repeatable)', valueHint: 'vlt_id' },
    scope: {
      type: 'string',
      description: "Narrow the role's permissions (repeatable), e.g. resources:read",
      valueHint: 'permission',
    },
    'expires-in': {
      type: 'string',
      description: 'Expire after a duration: 45s, 30m, 12h, 90d, 2w',
      valueHint: 'duration',
    },
    'rate-limit': {
      type: 'string',
      description: 'Requests per minute for this key (default: rate_limit.requests_per_minute)',
      valueHint: 'n',
    },
    burst: {
      type: 'string',
      description: 'Burst size for this key (default: rate_limit.burst)',
      valueHint: 'n',
    },
  },
  async run({ args, rawArgs }) {
    checkKeyName(args.name);
    const role = args.role;
    if (!isRole(role)) {
      throw new CliFailure(
        `--role must be one of admin, manager, contributor, reader, access`,
        ExitCode.USAGE,
      );
    }
    const scopeValues = repeatedFlag(rawArgs, 'scope');
    const unknownScope = scopeValues.find((scope) => !isPermission(scope));
    if (unknownScope !== undefined) {
      throw new CliFailure(`--scope: unknown permission "${unknownScope}"`, ExitCode.USAGE);
    }
    let expiresInMs: number | null = null;
    if (args['expires-in'] !== undefined && args['expires-in'] !== '') {
      const parsed = parseDuration(args['expires-in']);
      if (parsed === undefined) {
        throw new CliFailure(
          '--expires-in must be a duration such as 90d, 12h or 30m',
          ExitCode.USAGE,
        );
      }
      expiresInMs = parsed;
    }
    const requestsPerMinute = positiveInteger('rate-limit', args['rate-limit']);
    const burst = positiveInteger('burst', args.burst);
    const result = await withInstance(args, (instance) => {
      const now = instance.clock.now();
      const key: NewApiKey = {
        name: args.name,
        role,
        projectIds: repeatedFlag(rawArgs, 'project'),
        vaultIds: repeatedFlag(rawArgs, 'vault'),
        scopes: scopeValues.length > 0 ? (scopeValues as Permission[]) : null,
        expiresAt: expiresInMs === null ? null : now + expiresInMs,
        rateLimit: { requestsPerMinute, burst },
      };
      try {
        checkNewApiKey(key, now);
        checkKeyReferences(instance.db, key);
      } catch (error) {
        throw asCliFailure(error);
      }
      const id = newApiKeyId();
      return commitLocalChange(instance, 'api_key.create', { type: 'api_key', id }, () => {
        const created = insertApiKey(instance.db, id, key, `local_user:${localActor()}`, now);
        emitApiKeyEvent(instance.db, 'api_key.created', created.row, now);
        return created;
      });
    });
    const key = toApiKeyObject(result.row);
    if (args.json) {
      print(JSON.stringify({ ...key, token: result.token }));
      return;
    }
    print(`created API key ${key.id} "${key.name}" (${key.role}${describeLimits(result.row)})`);
    print(`token: ${result.token}`);
    print('Store this token now (e.g. in a password manager): it is shown only once.');
  },
});

const listCommand = defineCommand({
  meta: { name: 'list', description: 'List API keys, newest first (revoked ones included)' },
  args: { ...commonArgs, ...jsonArg },
  async run({ args }) {
    const { rows, now } = await withInstance(args, (instance) => ({
      rows: listApiKeys(instance.db),
      now: instance.clock.now(),
    }));
    if (args.json) {
      print(JSON.stringify(rows.map((row) => toApiKeyObject(row))));
      return;
    }
    if (rows.length === 0) {
      print('no API keys');
      return;
    }
    const table = [
      ['ID', 'NAME', 'ROLE', 'LIMITS', 'EXPIRES', 'LAST USED', 'STATUS'],
      ...rows.map((row) => [
        row.id,
        row.name,
        row.role,
        describeLimits(row).replace(/^, /, '') || '-',
        toRfc3339(row.expiresAt) ?? 'never',
        toRfc3339(row.lastUsedAt) ?? 'never',
        row.revokedAt !== null
          ? 'revoked'
          : row.expiresAt !== null && row.expiresAt <= now
            ? 'expired'
            : 'active',
      ]),
    ];
    const cells = table.map((r) => r.map(printable));
    const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
    for (const r of cells)
      print(
        r
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      );
  },
});

const revokeCommand = defineCommand({
  meta: { name: 'revoke', description: 'Revoke an API key (refused from its next request on)' },
  args: {
    ...commonArgs,
    ...jsonArg,
    id: { type: 'positional', description: 'Id of the key (key_...)', required: true },
  },
  async run({ args }) {
    const id = args.id;
    const outcome = await withInstance(args, (instance) => {
      const before = findApiKey(instance.db, id);
      if (!before) throw new CliFailure(`no API key ${printable(id)}`);
      if (before.revokedAt !== null) return { row: before, already: true };
      const row = commitLocalChange(instance, 'api_key.revoke', { type: 'api_key', id }, () => {
        const now = instance.clock.now();
        const revoked = revokeApiKey(instance.db, id, now);
        if (revoked) emitApiKeyEvent(instance.db, 'api_key.revoked', revoked, now);
        return revoked;
      });
      return { row: row ?? before, already: false };
    });
    // A running server trusts its cached keys for a bounded time; say "revoked" only once it
    // must have looked again, so the key is refused from the next request on.
    if (!outcome.already) await Bun.sleep(KEY_CHANGE_VISIBLE_AFTER_MS);
    if (args.json) {
      print(JSON.stringify({ id, deleted: true, revoked_at: toRfc3339(outcome.row.revokedAt) }));
    } else if (outcome.already) {
      print(`API key ${id} was already revoked at ${toRfc3339(outcome.row.revokedAt)}`);
    } else {
      print(`revoked API key ${id} "${printable(outcome.row.name)}"`);
    }
  },
});

function describeLimits(row: ApiKeyRow): string {
  const parts: string[] = [];
  if (row.projectIds.length > 0) parts.push(`projects ${row.projectIds.join(',')}`);
  if (row.vaultIds.length > 0) parts.push(`vaults ${row.vaultIds.join(',')}`);
  if (row.scopes !== null) parts.push(`scopes ${row.scopes.join(',')}`);
  return parts.length > 0 ? `, ${parts.join('; ')}` : '';
}

/** `secryn keys`: create, list and revoke API keys. */
export const keysCommand = defineCommand({
  meta: { name: 'keys', description: 'Create, list and revoke API keys (works without a server)' },
  subCommands: { create: createCommand, list: listCommand, revoke: revokeCommand },
});
