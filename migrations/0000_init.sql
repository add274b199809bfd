CREATE TABLE `audit_checkpoint` (
	`id` integer PRIMARY KEY NOT NULL,
	`through_seq` integer NOT NULL,
	`through_hash` text NOT NULL,
	`pruned_at` integer NOT NULL,
	`pruned_total` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `audit_log` (
	`seq` integer PRIMARY KEY NOT NULL,
	`id` text NOT NULL,
	`at` integer NOT NULL,
	`actor_type` text NOT NULL,
	`actor_id` text,
	`actor_name` text,
	`action` text NOT NULL,
	`target_type` text,
	`target_id` text,
	`outcome` text NOT NULL,
	`status` integer,
	`ip` text,
	`user_agent` text,
	`request_id` text,
	`prev_hash` text NOT NULL,
	`hash` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `audit_log_at_idx` ON `audit_log` (`at`);--> statement-breakpoint
CREATE TABLE `instance` (
	`id` integer PRIMARY KEY NOT NULL,
	`created_at` integer NOT NULL,
	`created_by` text NOT NULL,
	`health_probe_at` integer
);
--> statement-breakpoint
CREATE TABLE `events` (
	`seq` integer PRIMARY KEY NOT NULL,
	`id` text NOT NULL,
	`type` text NOT NULL,
	`project_id` text,
	`payload` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `events_id_unique` ON `events` (`id`);--> statement-breakpoint
CREATE INDEX `events_created_idx` ON `events` (`created_at`);--> statement-breakpoint
CREATE INDEX `events_type_idx` ON `events` (`type`,`seq`);--> statement-breakpoint
CREATE TABLE `expiry_notices` (
	`resource_id` text NOT NULL,
	`expires_at` integer NOT NULL,
	`threshold` text NOT NULL,
	`event_id` text NOT NULL,
	`emitted_at` integer NOT NULL,
	PRIMARY KEY(`resource_id`, `expires_at`, `threshold`)
);
--> statement-breakpoint
CREATE TABLE `idempotency_keys` (
	`id` text PRIMARY KEY NOT NULL,
	`api_key_id` text NOT NULL,
	`request_hash` text NOT NULL,
	`status` integer NOT NULL,
	`location` text,
	`target_type` text,
	`target_id` text,
	`response_body` blob NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `idempotency_keys_expires_idx` ON `idempotency_keys` (`expires_at`);--> statement-breakpoint
CREATE TABLE `keyring_data_keys` (
	`version` integer PRIMARY KEY NOT NULL,
	`wrapped_key` blob NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `keyring_reencrypt_progress` (
	`rotation_id` integer NOT NULL,
	`table_name` text NOT NULL,
	`column_name` text NOT NULL,
	`last_row_id` text,
	`done` integer DEFAULT false NOT NULL,
	`reencrypted` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`rotation_id`, `table_name`, `column_name`),
	FOREIGN KEY (`rotation_id`) REFERENCES `keyring_rotations`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `keyring_rotations` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`rotated_at` integer NOT NULL,
	`completed_at` integer,
	`actor` text NOT NULL,
	`old_fingerprint` text NOT NULL,
	`new_fingerprint` text NOT NULL,
	`key_source` text NOT NULL,
	`key_file` text,
	`backup_file` text,
	`new_key_file` text,
	`new_data_key_version` integer,
	`reencrypt_completed_at` integer,
	`reencrypted_values` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE `keyring_state` (
	`id` integer PRIMARY KEY NOT NULL,
	`master_key_fingerprint` text NOT NULL,
	`current_data_key_version` integer NOT NULL,
	`generation` integer NOT NULL,
	`created_at` integer NOT NULL,
	`last_rotated_at` integer,
	CONSTRAINT "keyring_state_singleton" CHECK("keyring_state"."id" = 1)
);
--> statement-breakpoint
CREATE TABLE `api_keys` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`role` text NOT NULL,
	`lookup_id` text NOT NULL,
	`token_hash` blob NOT NULL,
	`project_ids` text NOT NULL,
	`vault_ids` text NOT NULL,
	`scopes` text,
	`rate_limit_per_minute` integer,
	`rate_limit_burst` integer,
	`expires_at` integer,
	`last_used_at` integer,
	`created_at` integer NOT NULL,
	`created_by` text NOT NULL,
	`revoked_at` integer,
	CONSTRAINT "api_keys_role_check" CHECK("api_keys"."role" IN ('admin', 'manager', 'contributor', 'reader', 'access')),
	CONSTRAINT "api_keys_rate_limit_check" CHECK(("api_keys"."rate_limit_per_minute" IS NULL OR "api_keys"."rate_limit_per_minute" > 0) AND ("api_keys"."rate_limit_burst" IS NULL OR "api_keys"."rate_limit_burst" > 0))
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_keys_lookup_id_unique` ON `api_keys` (`lookup_id`);--> statement-breakpoint
CREATE INDEX `api_keys_created_at_idx` ON `api_keys` (`created_at`);--> statement-breakpoint
CREATE TABLE `projects` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`description` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`created_by` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `projects_name_unique` ON `projects` (`name`);--> statement-breakpoint
CREATE INDEX `projects_created_idx` ON `projects` (`created_at`,`id`);--> statement-breakpoint
CREATE TABLE `resource_versions` (
	`id` text PRIMARY KEY NOT NULL,
	`resource_id` text NOT NULL,
	`version` integer NOT NULL,
	`value` blob NOT NULL,
	`created_at` integer NOT NULL,
	`created_by` text NOT NULL,
	FOREIGN KEY (`resource_id`) REFERENCES `resources`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `resource_versions_resource_version` ON `resource_versions` (`resource_id`,`version`);--> statement-breakpoint
CREATE TABLE `resources` (
	`id` text PRIMARY KEY NOT NULL,
	`vault_id` text NOT NULL,
	`project_id` text NOT NULL,
	`type` text NOT NULL,
	`name` text NOT NULL,
	`description` text,
	`tags` text NOT NULL,
	`enabled` integer NOT NULL,
	`activates_at` integer,
	`expires_at` integer,
	`content_type` text,
	`current_version` integer NOT NULL,
	`algorithm` text,
	`public_key` text,
	`subject` text,
	`issuer` text,
	`serial_number` text,
	`not_before` integer,
	`not_after` integer,
	`fingerprint_sha256` text,
	`has_private_key` integer,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`created_by` text NOT NULL,
	`deleted_at` integer,
	`deleted_by` text,
	FOREIGN KEY (`vault_id`) REFERENCES `vaults`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "resources_type_check" CHECK("resources"."type" IN ('secret', 'key', 'certificate')),
	CONSTRAINT "resources_version_check" CHECK("resources"."current_version" >= 1)
);
--> statement-breakpoint
CREATE UNIQUE INDEX `resources_live_name_unique` ON `resources` (`vault_id`,`type`,`name`) WHERE "resources"."deleted_at" IS NULL;--> statement-breakpoint
CREATE INDEX `resources_created_idx` ON `resources` (`deleted_at`,`created_at`,`id`,`vault_id`);--> statement-breakpoint
CREATE INDEX `resources_vault_created_idx` ON `resources` (`vault_id`,`deleted_at`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `resources_project_created_idx` ON `resources` (`project_id`,`deleted_at`,`created_at`,`id`,`vault_id`);--> statement-breakpoint
CREATE INDEX `resources_expiry_idx` ON `resources` (`deleted_at`,`expires_at`);--> statement-breakpoint
CREATE TABLE `vaults` (
	`id` text PRIMARY KEY NOT NULL,
	`project_id` text NOT NULL,
	`name` text NOT NULL,
	`description` text,
	`restricted` integer NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`created_by` text NOT NULL,
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `vaults_project_name_unique` ON `vaults` (`project_id`,`name`);--> statement-breakpoint
CREATE INDEX `vaults_project_created_idx` ON `vaults` (`project_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `vaults_created_idx` ON `vaults` (`created_at`,`id`);--> statement-breakpoint
CREATE TABLE `webhook_deliveries` (
	`id` text PRIMARY KEY NOT NULL,
	`webhook_id` text NOT NULL,
	`event_id` text NOT NULL,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`attempt_base` integer DEFAULT 0 NOT NULL,
	`next_attempt_at` integer,
	`lease_owner` text,
	`lease_expires_at` integer,
	`last_attempt_at` integer,
	`last_response_status` integer,
	`last_duration_ms` integer,
	`last_error` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`completed_at` integer,
	FOREIGN KEY (`webhook_id`) REFERENCES `webhooks`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`event_id`) REFERENCES `events`(`id`) ON UPDATE no action ON DELETE cascade,
	CONSTRAINT "webhook_deliveries_status_check" CHECK("webhook_deliveries"."status" IN ('pending', 'in_flight', 'succeeded', 'failed'))
);
--> statement-breakpoint
CREATE INDEX `webhook_deliveries_due_idx` ON `webhook_deliveries` (`webhook_id`,`status`,`next_attempt_at`);--> statement-breakpoint
CREATE INDEX `webhook_deliveries_webhook_idx` ON `webhook_deliveries` (`webhook_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `webhook_deliveries_event_idx` ON `webhook_deliveries` (`event_id`);--> statement-breakpoint
CREATE TABLE `webhook_delivery_attempts` (
	`seq` integer PRIMARY KEY NOT NULL,
	`delivery_id` text NOT NULL,
	`attempt` integer NOT NULL,
	`started_at` integer NOT NULL,
	`ok` integer NOT NULL,
	`response_status` integer,
	`duration_ms` integer NOT NULL,
	`error` text,
	FOREIGN KEY (`delivery_id`) REFERENCES `webhook_deliveries`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `webhook_delivery_attempts_delivery_idx` ON `webhook_delivery_attempts` (`delivery_id`,`attempt`);--> statement-breakpoint
CREATE TABLE `webhook_secrets` (
	`id` text PRIMARY KEY NOT NULL,
	`webhook_id` text NOT NULL,
	`secret` blob NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer,
	FOREIGN KEY (`webhook_id`) REFERENCES `webhooks`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `webhook_secrets_webhook_idx` ON `webhook_secrets` (`webhook_id`);--> statement-breakpoint
CREATE TABLE `webhooks` (
	`id` text PRIMARY KEY NOT NULL,
	`url` blob NOT NULL,
	`events` text NOT NULL,
	`project_id` text,
	`enabled` integer NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`failing_since` integer,
	`disabled_reason` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`created_by` text NOT NULL,
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `webhooks_project_idx` ON `webhooks` (`project_id`);--> statement-breakpoint
CREATE INDEX `webhooks_created_idx` ON `webhooks` (`created_at`);