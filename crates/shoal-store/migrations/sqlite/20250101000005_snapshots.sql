-- Share snapshots, SQLite flavour. Keep it in step with ../postgres/20250101000005_snapshots.sql.
-- Encodings as in 20250101000001_initial.sql (TEXT UUIDs, INTEGER microsecond timestamps,
-- INTEGER booleans), STRICT tables. Rows are deleted for real, as elsewhere.

-- A snapshot: what the user asked for. Status and progress live on its instances (one per
-- share instance: a snapshot of a replicated share has one per replica).
CREATE TABLE share_snapshots (
    id          TEXT    NOT NULL PRIMARY KEY,
    -- No cascade: a share with snapshots cannot be deleted.
    share_id    TEXT    NOT NULL REFERENCES shares (id),
    project_id  TEXT    NOT NULL,
    user_id     TEXT    NOT NULL,
    name        TEXT,
    description TEXT,
    -- Snapshot size (quota `snapshot_gigabytes`) and the share's size when it was taken.
    size_gb     INTEGER NOT NULL CHECK (size_gb > 0),
    share_size  INTEGER NOT NULL CHECK (share_size > 0),
    share_proto TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER
) STRICT;

CREATE INDEX share_snapshots_share_idx ON share_snapshots (share_id, created_at);
CREATE INDEX share_snapshots_project_idx ON share_snapshots (project_id, created_at);

CREATE TABLE share_snapshot_metadata (
    share_snapshot_id TEXT    NOT NULL REFERENCES share_snapshots (id) ON DELETE CASCADE,
    key               TEXT    NOT NULL,
    value             TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER,
    PRIMARY KEY (share_snapshot_id, key)
) STRICT;

-- One snapshot instance per share instance. Goes with its snapshot; the share instance is
-- deleted only after its snapshot instances were removed on the back end, the cascade is a
-- safety net for rows only.
CREATE TABLE share_snapshot_instances (
    id                TEXT    NOT NULL PRIMARY KEY,
    snapshot_id       TEXT    NOT NULL REFERENCES share_snapshots (id) ON DELETE CASCADE,
    share_instance_id TEXT    NOT NULL REFERENCES share_instances (id) ON DELETE CASCADE,
    status            TEXT    NOT NULL,
    progress          TEXT,
    provider_location TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER,
    UNIQUE (snapshot_id, share_instance_id)
) STRICT;

CREATE INDEX share_snapshot_instances_share_instance_idx
    ON share_snapshot_instances (share_instance_id);

CREATE TABLE share_snapshot_instance_export_locations (
    id                   TEXT    NOT NULL PRIMARY KEY,
    snapshot_instance_id TEXT    NOT NULL
        REFERENCES share_snapshot_instances (id) ON DELETE CASCADE,
    path                 TEXT    NOT NULL,
    is_admin_only        INTEGER NOT NULL CHECK (is_admin_only IN (0, 1)),
    position             INTEGER NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER,
    UNIQUE (snapshot_instance_id, path)
) STRICT;

-- Access rules of mountable snapshots (always read-only) ...
CREATE TABLE share_snapshot_access_rules (
    id          TEXT    NOT NULL PRIMARY KEY,
    snapshot_id TEXT    NOT NULL REFERENCES share_snapshots (id) ON DELETE CASCADE,
    access_type TEXT    NOT NULL,
    access_to   TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER,
    UNIQUE (snapshot_id, access_type, access_to)
) STRICT;

-- ... tracked per snapshot instance.
CREATE TABLE share_snapshot_instance_access_map (
    access_id            TEXT    NOT NULL
        REFERENCES share_snapshot_access_rules (id) ON DELETE CASCADE,
    snapshot_instance_id TEXT    NOT NULL
        REFERENCES share_snapshot_instances (id) ON DELETE CASCADE,
    state                TEXT    NOT NULL CHECK (state IN ('queued_to_apply', 'applying',
        'active', 'queued_to_deny', 'denying', 'error')),
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER,
    PRIMARY KEY (access_id, snapshot_instance_id)
) STRICT;

CREATE INDEX share_snapshot_instance_access_map_instance_idx
    ON share_snapshot_instance_access_map (snapshot_instance_id);
