CREATE TABLE `instance` (
	`id` integer PRIMARY KEY NOT NULL,
	`created_at` integer NOT NULL,
	`created_by` text NOT NULL,
	`health_probe_at` integer
);
