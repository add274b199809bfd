/**
 * Reloading the configuration file on SIGHUP (`secryn serve`): the file is read and validated
 * exactly as at start; a bad file changes nothing and every problem is logged. A good one
 * updates the keys that can change live in the running {@link Config} object itself (so every
 * part holding it, or one of its arrays, sees the new values) and then runs the hooks parts
 * registered with {@link onConfigReload}; keys that need a restart are named in the log.
 */
import type { Logger } from '../log/logger.ts';
import { ConfigError, loadConfig } from './load.ts';
import type { Config } from './schema.ts';

/**
 * Keys applied live, as `section.key`, or a whole `section`. The rest (listener, storage, key
 * files, worker sizes, …) are read once at start and need a restart.
 */
export const LIVE_KEYS: ReadonlySet<string> = new Set([
  'log.level',
  'log.format',
  'rate_limit.requests_per_minute',
  'rate_limit.burst',
  'webhooks.allowed_hosts',
  'webhooks.allowed_cidrs',
  'metrics.enabled',
  'metrics.listen',
  // The backup schedule: its scheduler registers a hook (src/backup).
  'backup',
]);

/** Told the new configuration (already applied to the running one) and the one before it. */
export type ReloadHook = (next: Config, previous: Config) => void | Promise<void>;

const hooks = new WeakMap<Config, ReloadHook[]>();

/** Runs `hook` after each successful reload of `config` (the running configuration object). */
export function onConfigReload(config: Config, hook: ReloadHook): void {
  const list = hooks.get(config) ?? [];
  list.push(hook);
  hooks.set(config, list);
}

/** What a reload did. */
export type ReloadResult =
  | { ok: true; applied: string[]; needRestart: string[] }
  | { ok: false; problems: string[] };

/**
 * Re-reads `path` into `running`. Never throws: a bad file is reported in the result and the
 * log, and leaves `running` untouched.
 */
export async function reloadConfig(
  running: Config,
  path: string,
  logger: Logger,
): Promise<ReloadResult> {
  let next: Config;
  try {
    next = loadConfig({ path, env: {} }).config;
  } catch (error) {
    const problems = error instanceof ConfigError ? error.lines : [String(error)];
    for (const line of problems) logger.error(line);
    logger.error('configuration not reloaded: the running configuration is unchanged', {
      config: path,
      problems: problems.length,
    });
    return { ok: false, problems };
  }
  const previous = structuredClone(running);
  const applied: string[] = [];
  const needRestart: string[] = [];
  for (const key of changedKeys(running, next)) {
    const [section, name] = key.split('.') as [keyof Config, string];
    if (!LIVE_KEYS.has(key) && !LIVE_KEYS.has(section)) {
      needRestart.push(key);
      continue;
    }
    setInPlace(running[section] as Record<string, unknown>, name, nextValue(next, section, name));
    applied.push(key);
  }
  for (const hook of hooks.get(running) ?? []) {
    try {
      await hook(running, previous);
    } catch (error) {
      logger.error('a reloaded setting could not be applied', {
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }
  logger.info('configuration reloaded', {
    config: path,
    applied: applied.join(',') || 'nothing changed',
  });
  if (needRestart.length > 0) {
    logger.warn('configuration changes that take effect only after a restart', {
      keys: needRestart.join(','),
    });
  }
  return { ok: true, applied, needRestart };
}

/** Dotted `section.key` names whose values differ. */
function changedKeys(a: Config, b: Config): string[] {
  const keys: string[] = [];
  const sections = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const section of sections) {
    const left = (a as Record<string, Record<string, unknown> | undefined>)[section] ?? {};
    const right = (b as Record<string, Record<string, unknown> | undefined>)[section] ?? {};
    for (const key of new Set([...Object.keys(left), ...Object.keys(right)])) {
      if (JSON.stringify(left[key]) !== JSON.stringify(right[key])) keys.push(`${section}.${key}`);
    }
  }
  return keys;
}

function nextValue(next: Config, section: keyof Config, name: string): unknown {
  return (next[section] as Record<string, unknown>)[name];
}

/** Arrays are refilled rather than replaced: parts hold them by reference (webhook policy). */
function setInPlace(target: Record<string, unknown>, name: string, value: unknown): void {
  const current = target[name];
  if (Array.isArray(current) && Array.isArray(value)) {
    current.splice(0, current.length, ...value);
  } else {
    target[name] = structuredClone(value);
  }
}
