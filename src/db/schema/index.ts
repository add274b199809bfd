/**
 * The data model: every table of the instance, one module per area. drizzle-kit diffs this
 * module into `migrations/` (drizzle.config.ts), and encrypted-columns.ts searches its exports
 * for the encrypted columns, so a table (or an encrypted column) exists exactly when it is
 * exported from here.
 */
export * from './instance.ts';
export * from './keyring.ts';
export * from './projects.ts';
export * from './vaults.ts';
export * from './resources.ts';
export * from './keys.ts';
export * from './events.ts';
export * from './webhooks.ts';
export * from './audit.ts';
export * from './idempotency.ts';
export * from './audit-ship.ts';
export * from './sessions.ts';
