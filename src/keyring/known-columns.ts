/**
 * Loads every module that registers an encrypted column or a rotation hook, so that the
 * `master-key` commands (which re-encrypt and count values) see all of them, not only the ones
 * the command happens to import. Each feature adds one side-effect import here when it
 * registers its column (resources, webhooks, idempotency) or its rotation hook (audit, events).
 */
export {};
import '../webhooks/tables.ts'; // webhook_secrets.secret
import '../events/rotation-hook.ts'; // master_key.rotated event
import '../resources/tables.ts'; // resource_versions.value
import '../idempotency/tables.ts'; // idempotency_keys.response_body
import '../audit/rotation-hook.ts'; // master_key.rotate audit entry
