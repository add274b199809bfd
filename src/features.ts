import type { AnyElysia } from 'elysia';
import type { Instance } from './instance.ts';

/** What `serve` mounts and runs for an instance. */
export type Features = {
  /** Feature route modules, each declaring its own `/v1/...` paths. */
  features: AnyElysia[];
  /** Starts background workers (webhook delivery, purges); called once the server listens. */
  start(): Promise<void>;
  /** Stops them, letting in-flight work finish or be released. */
  stop(): Promise<void>;
};

/**
 * Assembles every feature of Secryn for an instance. This is the one place that knows the full
 * list, so that `serve` and the end-to-end tests mount exactly the same thing.
 */
export function buildFeatures(instance: Instance): Features {
  void instance;
  return {
    features: [],
    async start() {},
    async stop() {},
  };
}
