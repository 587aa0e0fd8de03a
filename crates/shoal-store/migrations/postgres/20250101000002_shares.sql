-- Shares, their instances, export locations, access rules, quotas and user messages,
-- PostgreSQL flavour. Keep it in step with ../sqlite/20250101000002_shares.sql. Text columns
-- that are sorted, compared by range or looked up are `COLLATE "C"`, so results and the
-- host range scan match SQLite's byte order.
--
-- Rows are deleted for real (Manila soft-deletes); nothing here keeps a `deleted` column.

-- A share: what the user asked for. Status, host and zone live on its instances.
CREATE TABLE shares (
    id               UUID        PRIMARY KEY,
    project_id       TEXT        COLLATE "C" NOT NULL,
    user_id          TEXT        NOT NULL,
    name             TEXT        COLLATE "C",
    description      TEXT,
    size_gb          BIGINT      NOT NULL CHECK (size_gb > 0),
    share_proto      TEXT        NOT NULL,
    -- No cascade: a share type cannot be deleted while shares use it.
    share_type_id    UUID        REFERENCES share_types (id),
    is_public        BOOLEAN     NOT NULL,
    replication_type TEXT,
    snapshot_id      UUID,
    share_group_id   UUID,
    task_state       TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ
);

CREATE INDEX shares_project_idx ON shares (project_id, created_at);
CREATE INDEX shares_share_type_idx ON shares (share_type_id);

CREATE TABLE share_metadata (
    share_id   UUID        NOT NULL REFERENCES shares (id) ON DELETE CASCADE,
    key        TEXT        COLLATE "C" NOT NULL,
    value      TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ,
    PRIMARY KEY (share_id, key)
);

-- Share instances (replicas). No cascade from shares: a share is removed only once its last
-- instance is gone.
CREATE TABLE share_instances (
    id                     UUID        PRIMARY KEY,
    share_id               UUID        NOT NULL REFERENCES shares (id),
    status                 TEXT        NOT NULL,
    replica_state          TEXT
        CHECK (replica_state IN ('active', 'in_sync', 'out_of_sync', 'error')),
    -- host@backend#pool, '' until the scheduler places the instance.
    host                   TEXT        COLLATE "C" NOT NULL DEFAULT '',
    -- Zone name (zones are never renamed or deleted).
    availability_zone      TEXT        COLLATE "C",
    share_type_id          UUID        REFERENCES share_types (id),
    share_network_id       UUID,
    share_server_id        UUID,
    cast_rules_to_readonly BOOLEAN     NOT NULL DEFAULT FALSE,
    access_rules_status    TEXT        NOT NULL DEFAULT 'active'
        CHECK (access_rules_status IN ('active', 'syncing', 'error')),
    progress               TEXT,
    created_at             TIMESTAMPTZ NOT NULL,
    updated_at             TIMESTAMPTZ,
    scheduled_at           TIMESTAMPTZ,
    launched_at            TIMESTAMPTZ,
    terminated_at          TIMESTAMPTZ
);

CREATE INDEX share_instances_share_idx ON share_instances (share_id, created_at);
-- Range scans by service host ('host@backend#' <= host < 'host@backend$').
CREATE INDEX share_instances_host_idx ON share_instances (host);
CREATE INDEX share_instances_share_type_idx ON share_instances (share_type_id);

CREATE TABLE share_instance_export_locations (
    id                UUID        PRIMARY KEY,
    share_instance_id UUID        NOT NULL REFERENCES share_instances (id) ON DELETE CASCADE,
    path              TEXT        COLLATE "C" NOT NULL,
    is_admin_only     BOOLEAN     NOT NULL,
    preferred         BOOLEAN     NOT NULL,
    metadata          JSONB       NOT NULL,
    -- Index in the list the driver reported last; lists are returned in that order.
    position          INTEGER     NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ,
    UNIQUE (share_instance_id, path)
);

-- Manila's share_access_map: rules are defined on the share ...
CREATE TABLE share_access_rules (
    id           UUID        PRIMARY KEY,
    share_id     UUID        NOT NULL REFERENCES shares (id) ON DELETE CASCADE,
    access_type  TEXT        COLLATE "C" NOT NULL,
    access_to    TEXT        COLLATE "C" NOT NULL,
    access_level TEXT        NOT NULL,
    access_key   TEXT,
    metadata     JSONB       NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ,
    UNIQUE (share_id, access_type, access_to)
);

-- ... and tracked per instance.
CREATE TABLE share_instance_access_map (
    access_id         UUID        NOT NULL REFERENCES share_access_rules (id) ON DELETE CASCADE,
    share_instance_id UUID        NOT NULL REFERENCES share_instances (id) ON DELETE CASCADE,
    state             TEXT        NOT NULL CHECK (state IN ('queued_to_apply', 'applying',
        'active', 'queued_to_update', 'updating', 'queued_to_deny', 'denying', 'error')),
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ,
    PRIMARY KEY (access_id, share_instance_id)
);

CREATE INDEX share_instance_access_map_instance_idx
    ON share_instance_access_map (share_instance_id);

-- Per-project quota overrides; a resource without a row uses the configured default.
-- -1 means unlimited.
CREATE TABLE quotas (
    project_id TEXT        COLLATE "C" NOT NULL,
    resource   TEXT        COLLATE "C" NOT NULL,
    hard_limit BIGINT      NOT NULL CHECK (hard_limit >= -1),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ,
    PRIMARY KEY (project_id, resource)
);

-- Usage counters, created on demand. Every change is one conditional UPDATE of one row.
CREATE TABLE quota_usages (
    project_id TEXT        COLLATE "C" NOT NULL,
    resource   TEXT        COLLATE "C" NOT NULL,
    in_use     BIGINT      NOT NULL DEFAULT 0 CHECK (in_use >= 0),
    reserved   BIGINT      NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    updated_at TIMESTAMPTZ,
    PRIMARY KEY (project_id, resource)
);

-- Pending quota reservations; a committed, rolled back or expired one is deleted.
CREATE TABLE reservations (
    id         UUID        PRIMARY KEY,
    project_id TEXT        COLLATE "C" NOT NULL,
    resource   TEXT        COLLATE "C" NOT NULL,
    delta      BIGINT      NOT NULL,
    expire_at  TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX reservations_expire_idx ON reservations (expire_at);

-- User messages (GET /v2/messages).
CREATE TABLE messages (
    id            UUID        PRIMARY KEY,
    project_id    TEXT        COLLATE "C" NOT NULL,
    request_id    TEXT,
    resource_type TEXT        NOT NULL,
    resource_id   TEXT,
    action_id     TEXT        NOT NULL,
    detail_id     TEXT        NOT NULL,
    message_level TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL
);

CREATE INDEX messages_project_idx ON messages (project_id, created_at);
CREATE INDEX messages_expires_idx ON messages (expires_at);
