-- Share lifecycle: the recycle bin (Manila 2.69 soft delete) and the lookup that manage uses,
-- PostgreSQL flavour. Keep it in step with ../sqlite/20250101000006_lifecycle.sql.

-- A soft-deleted share stays whole (instances, export locations, rules, quota) and is only
-- hidden from lists; the periodic purge deletes it through the normal delete pipeline once
-- `scheduled_to_be_deleted_at` has passed.
ALTER TABLE shares ADD COLUMN is_soft_deleted BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE shares ADD COLUMN scheduled_to_be_deleted_at TIMESTAMPTZ;

-- The purge's scan: soft-deleted shares by expiry.
CREATE INDEX shares_soft_deleted_idx ON shares (is_soft_deleted, scheduled_to_be_deleted_at);

-- Manage refuses a path that is already an export location of a share on the same host.
CREATE INDEX share_instance_export_locations_path_idx ON share_instance_export_locations (path);
