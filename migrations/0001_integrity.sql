CREATE TABLE `keyring_integrity` (
	`id` integer PRIMARY KEY NOT NULL,
	`wrapped_key` blob NOT NULL,
	`audit_keyed_from` integer NOT NULL,
	`created_at` integer NOT NULL,
	`mac` text NOT NULL,
	CONSTRAINT "keyring_integrity_singleton" CHECK("keyring_integrity"."id" = 1)
);
--> statement-breakpoint
ALTER TABLE `audit_log` ADD `details` text;--> statement-breakpoint
ALTER TABLE `api_keys` ADD `mac` text;