-- Share snapshots, PostgreSQL flavour. Keep it in step with
-- ../sqlite/20250101000005_snapshots.sql. Text columns that are sorted, compared or looked up
-- are `COLLATE "C"`, as in 20250101000002_shares.sql. Rows are deleted for real.

-- A snapshot: what the user asked for. Status and progress live on its instances (one per
-- share instance: a snapshot of a replicated share has one per replica).
CREATE TABLE share_snapshots (
    id          UUID        PRIMARY KEY,
    -- No cascade: a share with snapshots cannot be deleted.
    share_id    UUID        NOT NULL REFERENCES shares (id),
    project_id  TEXT        COLLATE "C" NOT NULL,
    user_id     TEXT        NOT NULL,
    name        TEXT        COLLATE "C",
    description TEXT,
    -- Snapshot size (quota `snapshot_gigabytes`) and the share's size when it was taken.
    size_gb     BIGINT      NOT NULL CHECK (size_gb > 0),
    share_size  BIGINT      NOT NULL CHECK (share_size > 0),
    share_proto TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ
);

CREATE INDEX share_snapshots_share_idx ON share_snapshots (share_id, created_at);
CREATE INDEX share_snapshots_project_idx ON share_snapshots (project_id, created_at);

CREATE TABLE share_snapshot_metadata (
    share_snapshot_id UUID        NOT NULL REFERENCES share_snapshots (id) ON DELETE CASCADE,
    key               TEXT        COLLATE "C" NOT NULL,
    value             TEXT        NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ,
    PRIMARY KEY (share_snapshot_id, key)
);

-- One snapshot instance per share instance. Goes with its snapshot; the share instance is
-- deleted only after its snapshot instances were removed on the back end, the cascade is a
-- safety net for rows only.
CREATE TABLE share_snapshot_instances (
    id                UUID        PRIMARY KEY,
    snapshot_id       UUID        NOT NULL REFERENCES share_snapshots (id) ON DELETE CASCADE,
    share_instance_id UUID        NOT NULL REFERENCES share_instances (id) ON DELETE CASCADE,
    status            TEXT        NOT NULL,
    progress          TEXT,
    provider_location TEXT,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ,
    UNIQUE (snapshot_id, share_instance_id)
);

CREATE INDEX share_snapshot_instances_share_instance_idx
    ON share_snapshot_instances (share_instance_id);

CREATE TABLE share_snapshot_instance_export_locations (
    id                   UUID        PRIMARY KEY,
    snapshot_instance_id UUID        NOT NULL
        REFERENCES share_snapshot_instances (id) ON DELETE CASCADE,
    path                 TEXT        COLLATE "C" NOT NULL,
    is_admin_only        BOOLEAN     NOT NULL,
    position             INTEGER     NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ,
    UNIQUE (snapshot_instance_id, path)
);

-- Access rules of mountable snapshots (always read-only) ...
CREATE TABLE share_snapshot_access_rules (
    id          UUID        PRIMARY KEY,
    snapshot_id UUID        NOT NULL REFERENCES share_snapshots (id) ON DELETE CASCADE,
    access_type TEXT        COLLATE "C" NOT NULL,
    access_to   TEXT        COLLATE "C" NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ,
    UNIQUE (snapshot_id, access_type, access_to)
);

-- ... tracked per snapshot instance.
CREATE TABLE share_snapshot_instance_access_map (
    access_id            UUID        NOT NULL
        REFERENCES share_snapshot_access_rules (id) ON DELETE CASCADE,
    snapshot_instance_id UUID        NOT NULL
        REFERENCES share_snapshot_instances (id) ON DELETE CASCADE,
    state                TEXT        NOT NULL CHECK (state IN ('queued_to_apply', 'applying',
        'active', 'queued_to_deny', 'denying', 'error')),
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ,
    PRIMARY KEY (access_id, snapshot_instance_id)
);

CREATE INDEX share_snapshot_instance_access_map_instance_idx
    ON share_snapshot_instance_access_map (snapshot_instance_id);
