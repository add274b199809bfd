CREATE TABLE `audit_ship_cursor` (
	`sink` text PRIMARY KEY NOT NULL,
	`through_seq` integer NOT NULL,
	`through_hash` text NOT NULL,
	`updated_at` integer NOT NULL
);
