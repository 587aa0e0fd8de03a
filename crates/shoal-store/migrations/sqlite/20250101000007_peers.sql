-- Replication between nodes (issue 11): where a share service's node serves its replication
-- endpoint, published with every heartbeat, and the bytes a sync received from a peer.
ALTER TABLE services ADD COLUMN replication_address TEXT;
ALTER TABLE replication_history ADD COLUMN wire_bytes INTEGER NOT NULL DEFAULT 0;
