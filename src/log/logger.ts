/** The structured logger (pretty or JSON lines), never given secrets. */
// consola/core, not consola: Secryn brings its own reporter, and the full entry point loads the
// fancy reporter, prompts and node:util's inspector (~8 ms of every start-up).
import { createConsola, LogLevels, type ConsolaInstance, type LogObject } from 'consola/core';

export type LogFormat = 'pretty' | 'json';
export type LogLevelName = 'silent' | 'error' | 'warn' | 'info' | 'debug';

/** Structured fields attached to a log line. Never put secrets, tokens or bodies here. */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

/** The logger every part of Secryn writes through: `logger.info('message', { field: 1 })`. */
export type Logger = ConsolaInstance;

export type LoggerOptions = {
  level: LogLevelName;
  format: LogFormat;
  /** Where lines go; stderr by default so that stdout stays clean for command output. */
  write?: (line: string) => void;
  /** Colour the pretty format; default: stderr is a TTY and NO_COLOR is not set. */
  color?: boolean;
};

const LEVEL_NAMES: Record<number, string> = {
  0: 'error',
  1: 'warn',
  2: 'info',
  3: 'info',
  4: 'debug',
  5: 'trace',
};
const COLORS: Record<string, string> = {
  error: '\x1b[31m',
  warn: '\x1b[33m',
  info: '\x1b[36m',
  debug: '\x1b[90m',
};

/**
 * Creates the consola logger. `json` prints one JSON object per line (`time`, `level`, `msg`
 * and the fields) for journald and log shippers; `pretty` prints `time level msg k=v …`.
 */
export function createLogger(options: LoggerOptions): Logger {
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const color =
    options.color ??
    (Boolean(process.stderr.isTTY) && !process.env.NO_COLOR && options.format === 'pretty');
  return createConsola({
    level: options.level === 'silent' ? LogLevels.silent : LogLevels[options.level],
    reporters: [
      {
        log(entry: LogObject) {
          const { message, fields } = splitArgs(entry.args);
          const level = LEVEL_NAMES[entry.level] ?? 'info';
          const time = entry.date.toISOString();
          if (options.format === 'json') {
            write(
              JSON.stringify({
                time,
                level,
                msg: message,
                ...(entry.tag ? { tag: entry.tag } : {}),
                ...fields,
              }) + '\n',
            );
            return;
          }
          const pairs = Object.entries(fields)
            .filter(([, v]) => v !== undefined)
            .map(
              ([k, v]) =>
                `${k}=${typeof v === 'string' && /\s/.test(v) ? JSON.stringify(v) : String(v)}`,
            )
            .join(' ');
          const label = color ? `${COLORS[level] ?? ''}${level.padEnd(5)}\x1b[0m` : level.padEnd(5);
          write(`${time} ${label} ${message}${pairs ? ' ' + pairs : ''}\n`);
        },
      },
    ],
  });
}

function splitArgs(args: unknown[]): { message: string; fields: LogFields } {
  const fields: LogFields = {};
  const words: string[] = [];
  for (const arg of args) {
    if (arg instanceof Error) {
      fields.error = arg.message;
      if (arg.stack) fields.stack = arg.stack;
    } else if (arg && typeof arg === 'object') {
      Object.assign(fields, arg);
    } else {
      words.push(String(arg));
    }
  }
  return { message: words.join(' '), fields };
}
