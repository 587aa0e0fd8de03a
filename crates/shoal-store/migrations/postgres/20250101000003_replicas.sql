-- Replication support, PostgreSQL flavour: replica metadata, the per-share replica lock and
-- the sync history. Keep it in step with ../sqlite/20250101000003_replicas.sql. Sorted text
-- columns are `COLLATE "C"` so the order matches SQLite's byte order.

-- Replica metadata (API 2.95), one row per key. Goes with its instance.
CREATE TABLE share_instance_metadata (
    share_instance_id UUID        NOT NULL REFERENCES share_instances (id) ON DELETE CASCADE,
    key               TEXT        COLLATE "C" NOT NULL,
    value             TEXT        NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ,
    PRIMARY KEY (share_instance_id, key)
);

-- Per-share replica lock (Manila's locked-share-replica-operation-for-share), held by one
-- node until `lease_until` so a dead node's lock expires. No foreign key: a lock may briefly
-- outlive the share it protected.
CREATE TABLE share_locks (
    share_id    UUID        PRIMARY KEY,
    holder      TEXT        NOT NULL,
    lease_until TIMESTAMPTZ NOT NULL
);

-- One row per replica sync, as the driver reported it. Goes with its replica.
CREATE TABLE replication_history (
    id                 UUID        PRIMARY KEY,
    share_instance_id  UUID        NOT NULL REFERENCES share_instances (id) ON DELETE CASCADE,
    -- The active replica synchronised from; no foreign key, it may be deleted first.
    source_instance_id UUID,
    "trigger"          TEXT        NOT NULL,
    started_at         TIMESTAMPTZ NOT NULL,
    finished_at        TIMESTAMPTZ NOT NULL,
    source_point       TIMESTAMPTZ,
    version            BIGINT      NOT NULL,
    files_total        BIGINT      NOT NULL,
    bytes_total        BIGINT      NOT NULL,
    files_transferred  BIGINT      NOT NULL,
    bytes_transferred  BIGINT      NOT NULL,
    files_deleted      BIGINT      NOT NULL,
    outcome            TEXT        NOT NULL CHECK (outcome IN ('clean', 'inconsistent', 'failed')),
    detail             TEXT
);

CREATE INDEX replication_history_instance_idx
    ON replication_history (share_instance_id, started_at);
