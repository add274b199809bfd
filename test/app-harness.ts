/**
 * An in-process server for `app.handle` tests: the instance's features mounted as `serve`
 * mounts them, and an unlimited admin key to call it with. Kept apart from harness.ts so that
 * unit tests importing that file do not load the whole application.
 */
import { buildFeatures } from '../src/features.ts';
import type { Instance } from '../src/instance.ts';
import { insertApiKey, newApiKeyId } from '../src/keys/service.ts';
import { buildApp } from '../src/server.ts';

/** The app of `instance` with every feature mounted, as `secryn serve` builds it. */
export function appOf(instance: Instance) {
  const features = buildFeatures(instance);
  return buildApp(instance, { features: features.features, recordOutcome: features.recordOutcome });
}

/** Stores an unlimited, never-expiring admin key and returns its token. */
export function insertAdminKey(instance: Pick<Instance, 'db'>, now = Date.now()): string {
  return insertApiKey(
    instance.db,
    newApiKeyId(),
    {
      name: 'admin',
      role: 'admin',
      projectIds: [],
      vaultIds: [],
      scopes: null,
      expiresAt: null,
      rateLimit: { requestsPerMinute: null, burst: null },
    },
    'test',
    now,
  ).token;
}
