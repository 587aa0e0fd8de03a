-- Replication between nodes (issue 11): where a share service's node serves its replication
-- endpoint, published with every heartbeat; the bytes a sync received from a peer; and the
-- epoch of each active replica (bumped by every promotion), which fences a former active.
ALTER TABLE services ADD COLUMN replication_address TEXT;
ALTER TABLE replication_history ADD COLUMN wire_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE share_instances ADD COLUMN replica_epoch INTEGER NOT NULL DEFAULT 0;
