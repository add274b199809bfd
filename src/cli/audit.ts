/** `secryn audit verify|export|prune`. */
import { defineCommand } from 'citty';
import type { Database } from 'bun:sqlite';
import { once } from 'node:events';
import { streamAuditEntries } from '../audit/query.ts';
import { localUserActor } from '../ledger/audit-record.ts';
import { pruneAuditLog } from '../audit/retention.ts';
import { toAuditEntryView, type AuditRow } from '../audit/rows.ts';
import { verifyChain } from '../audit/verify.ts';
import { readIntegrityWith } from '../keyring/integrity.ts';
import { loadConfiguredMasterKey } from '../keyring/key-files.ts';
import { assertKnownMigrationHistory } from '../db/migrate.ts';
import { timestampMs } from '../http/schemas.ts';
import { openInstance } from '../instance.ts';
import {
  cliLogger,
  commonArgs,
  jsonArg,
  loadCliConfig,
  openExistingDatabase,
  print,
} from './common.ts';
import { CliFailure, ExitCode } from './exit.ts';
import { DURATION_UNIT_MS } from '../clock.ts';

/**
 * Exit code of `secryn audit verify` when the chain is broken (sysexits EX_DATAERR), distinct
 * from 1 (could not check at all, e.g. the database is missing or unreadable) so that a cron
 * job or monitoring check can tell "tampered" from "failed to run".
 */
export const AUDIT_CHAIN_BROKEN = ExitCode.INTEGRITY;

/** Opens the database for reading only; the audit commands never need a write lock to read. */
function openForReading(args: { config?: string }): Database {
  const sqlite = openExistingDatabase(loadCliConfig(args).config);
  sqlite.run('PRAGMA query_only = ON');
  try {
    assertKnownMigrationHistory(sqlite);
  } catch (error) {
    sqlite.close();
    throw error;
  }
  return sqlite;
}

const verifyCommand = defineCommand({
  meta: {
    name: 'verify',
    description: `Check the audit log's hash chain (exit 0 intact, ${AUDIT_CHAIN_BROKEN} broken)`,
  },
  args: {
    ...commonArgs,
    ...jsonArg,
    anchor: {
      type: 'string',
      description:
        'A head hash recorded earlier elsewhere; fail if the chain no longer contains it',
      valueHint: 'hash',
    },
  },
  run({ args }) {
    // A hash is 64 lowercase hex characters; anything else could never be found, and would be
    // reported as entries cut from the log.
    if (args.anchor !== undefined && !/^[0-9a-f]{64}$/.test(args.anchor)) {
      throw new CliFailure(
        '--anchor must be an entry hash: 64 hex characters, as `audit verify` prints it',
        ExitCode.USAGE,
      );
    }
    const { config } = loadCliConfig(args);
    const sqlite = openForReading(args);
    let result;
    try {
      // Keyed entries prove nothing without the key: verifying needs the master key.
      const masterKey = loadConfiguredMasterKey(config, process.env);
      let key;
      try {
        key = readIntegrityWith(sqlite, masterKey.key);
      } finally {
        masterKey.key.fill(0);
      }
      result = verifyChain(sqlite, { anchor: args.anchor || undefined, key });
      key.apiKeyMac.fill(0);
      key.auditChain.fill(0);
      key.state.fill(0);
    } finally {
      sqlite.close();
    }
    if (args.json) {
      print(JSON.stringify(result));
    } else if (result.intact) {
      const from = result.start.checkpoint ? ` from checkpoint #${result.start.seq}` : '';
      const keyed = result.keyedFrom > 1 ? `, keyed from #${result.keyedFrom}` : '';
      print(
        `audit log intact: ${result.verified} entries${from}${keyed}; head #${result.head.seq} ${result.head.hash}`,
      );
    }
    if (!result.intact) {
      const problem = result.problem!;
      throw new CliFailure(
        `audit log broken (${problem.kind}): ${problem.message}`,
        AUDIT_CHAIN_BROKEN,
      );
    }
  },
});

/** Parses `--since`/`--until`: RFC 3339, a date, or a duration back from now (`7d`, `12h`, `30m`). */
function parseBound(flag: string, value: string | undefined, now: number): number | undefined {
  if (value === undefined || value === '') return undefined;
  const relative = /^(\d{1,6})([dhm])$/.exec(value);
  if (relative) {
    return now - Number(relative[1]) * DURATION_UNIT_MS[relative[2] as 'd' | 'h' | 'm'];
  }
  const ms = timestampMs(value, { dateOnly: true });
  if (ms === undefined) {
    throw new CliFailure(
      `--${flag} must be an RFC 3339 timestamp, a YYYY-MM-DD date or a duration like 7d`,
      2,
    );
  }
  return ms;
}

const CSV_COLUMNS = [
  'seq',
  'id',
  'at',
  'at_ms',
  'actor_type',
  'actor_id',
  'actor_name',
  'action',
  'target_type',
  'target_id',
  'outcome',
  'status',
  'ip',
  'user_agent',
  'request_id',
  'prev_hash',
  'hash',
] as const;

/**
 * One CSV field (RFC 4180). A text field that a spreadsheet would run as a formula (leading
 * `= + - @`, tab or CR; the user agent is client-chosen) is prefixed with `'`.
 */
function csvField(value: string | number | null): string {
  if (value === null) return '';
  if (typeof value === 'number') return String(value);
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

function csvLine(row: AuditRow): string {
  const view = toAuditEntryView(row);
  const values: (string | number | null)[] = [
    row.seq,
    row.id,
    view.at,
    row.at,
    row.actorType,
    row.actorId,
    row.actorName,
    row.action,
    row.targetType,
    row.targetId,
    row.outcome,
    row.status,
    row.ip,
    row.userAgent,
    row.requestId,
    row.prevHash,
    row.hash,
  ];
  return values.map(csvField).join(',');
}

/** JSON Lines: the API shape plus `seq` and `at_ms`, which an outside verifier needs to re-hash. */
function jsonLine(row: AuditRow): string {
  return JSON.stringify({ seq: row.seq, ...toAuditEntryView(row), at_ms: row.at });
}

/** Whether `error` says the reader of stdout has gone (`secryn audit export | head`). */
function isBrokenPipe(error: unknown): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === 'EPIPE';
}

/**
 * Stdout for a streamed export. `write` waits when the pipe is full, so memory stays bounded,
 * and resolves false once the reader has gone: the export then stops, quietly and with exit 0,
 * as `cat` does under `head` — the reader took what it wanted. Any other write error is thrown.
 * `close` must be called at the end: until then a late EPIPE (after a write that had returned
 * true) is absorbed here instead of surfacing as an uncaught 'error' event.
 */
function exportSink(): { write(chunk: string): Promise<boolean>; close(): void } {
  let gone = false;
  let failure: unknown;
  const onError = (error: unknown) => {
    if (isBrokenPipe(error)) gone = true;
    else failure ??= error;
  };
  process.stdout.on('error', onError);
  return {
    async write(chunk) {
      if (failure !== undefined) throw failure;
      if (gone) return false;
      try {
        if (!process.stdout.write(chunk)) await once(process.stdout, 'drain');
      } catch (error) {
        if (isBrokenPipe(error)) return false;
        throw error;
      }
      return !gone;
    },
    close: () => void process.stdout.off('error', onError),
  };
}

const exportCommand = defineCommand({
  meta: { name: 'export', description: 'Stream audit entries to stdout (oldest first)' },
  args: {
    ...commonArgs,
    since: {
      type: 'string',
      description: 'Only entries at or after this time (RFC 3339, YYYY-MM-DD, or 7d/12h/30m ago)',
      valueHint: 'time',
    },
    until: {
      type: 'string',
      description: 'Only entries before this time (same forms as --since)',
      valueHint: 'time',
    },
    format: {
      type: 'string',
      description: 'jsonl (default) or csv',
      default: 'jsonl',
      valueHint: 'jsonl|csv',
    },
  },
  async run({ args }) {
    const format = args.format;
    if (format !== 'jsonl' && format !== 'csv') {
      throw new CliFailure('--format must be jsonl or csv', 2);
    }
    const now = Date.now();
    const range = {
      since: parseBound('since', args.since, now),
      until: parseBound('until', args.until, now),
    };
    const sqlite = openForReading(args);
    const out = exportSink();
    try {
      const render = format === 'csv' ? csvLine : jsonLine;
      let buffer = format === 'csv' ? `${CSV_COLUMNS.join(',')}\n` : '';
      for (const row of streamAuditEntries(sqlite, range)) {
        buffer += render(row) + '\n';
        if (buffer.length >= 64 * 1024) {
          if (!(await out.write(buffer))) return;
          buffer = '';
        }
      }
      if (buffer) await out.write(buffer);
    } finally {
      out.close();
      sqlite.close();
    }
  },
});

const pruneCommand = defineCommand({
  meta: {
    name: 'prune',
    description: 'Delete entries older than audit.retention_days (or --days), keeping verify valid',
  },
  args: {
    ...commonArgs,
    ...jsonArg,
    days: {
      type: 'string',
      description: 'Retention in days (default: audit.retention_days; 0 keeps everything)',
      valueHint: 'n',
    },
  },
  async run({ args }) {
    const { config } = loadCliConfig(args);
    let retentionDays = config.audit.retention_days;
    if (args.days !== undefined) {
      if (!/^\d{1,5}$/.test(args.days)) throw new CliFailure('--days must be a whole number', 2);
      retentionDays = Number(args.days);
    }
    const instance = openInstance(config, cliLogger(config));
    try {
      const result = await pruneAuditLog(instance, {
        retentionDays,
        actor: localUserActor(),
        recordNoop: true,
      });
      if (args.json) print(JSON.stringify({ retention_days: retentionDays, ...result }));
      else if (retentionDays === 0) print('audit retention is 0 (keep forever): nothing pruned');
      else
        print(
          `pruned ${result.pruned} audit entries older than ${retentionDays} days` +
            (result.checkpoint
              ? `; the chain now starts after #${result.checkpoint.throughSeq}`
              : '') +
            (result.heldBack > 0
              ? `; ${result.heldBack} older entries kept until [audit.ship] has sent them`
              : ''),
        );
    } finally {
      await instance.close();
    }
  },
});

/** `secryn audit verify|export|prune`. */
export const auditCommand = defineCommand({
  meta: { name: 'audit', description: 'Verify, export and prune the audit log' },
  subCommands: { verify: verifyCommand, export: exportCommand, prune: pruneCommand },
});
