-- Replication support, SQLite flavour: replica metadata, the per-share replica lock and the
-- sync history. Keep it in step with ../postgres/20250101000003_replicas.sql. Encodings as in
-- 20250101000001_initial.sql (TEXT UUIDs, INTEGER microsecond timestamps), STRICT tables.

-- Replica metadata (API 2.95), one row per key. Goes with its instance (ON DELETE CASCADE;
-- foreign keys are enforced on every connection, see sqlite.rs).
CREATE TABLE share_instance_metadata (
    share_instance_id TEXT    NOT NULL REFERENCES share_instances (id) ON DELETE CASCADE,
    key               TEXT    NOT NULL,
    value             TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER,
    PRIMARY KEY (share_instance_id, key)
) STRICT;

-- Per-share replica lock (Manila's locked-share-replica-operation-for-share), held by one
-- node until `lease_until` so a dead node's lock expires. No foreign key: a lock may briefly
-- outlive the share it protected.
CREATE TABLE share_locks (
    share_id    TEXT    NOT NULL PRIMARY KEY,
    holder      TEXT    NOT NULL,
    lease_until INTEGER NOT NULL
) STRICT;

-- One row per replica sync, as the driver reported it. Goes with its replica.
CREATE TABLE replication_history (
    id                 TEXT    NOT NULL PRIMARY KEY,
    share_instance_id  TEXT    NOT NULL REFERENCES share_instances (id) ON DELETE CASCADE,
    -- The active replica synchronised from; no foreign key, it may be deleted first.
    source_instance_id TEXT,
    "trigger"          TEXT    NOT NULL,
    started_at         INTEGER NOT NULL,
    finished_at        INTEGER NOT NULL,
    source_point       INTEGER,
    version            INTEGER NOT NULL,
    files_total        INTEGER NOT NULL,
    bytes_total        INTEGER NOT NULL,
    files_transferred  INTEGER NOT NULL,
    bytes_transferred  INTEGER NOT NULL,
    files_deleted      INTEGER NOT NULL,
    outcome            TEXT    NOT NULL CHECK (outcome IN ('clean', 'inconsistent', 'failed')),
    detail             TEXT
) STRICT;

CREATE INDEX replication_history_instance_idx
    ON replication_history (share_instance_id, started_at);
