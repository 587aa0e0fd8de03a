-- Shares, their instances, export locations, access rules, quotas and user messages, SQLite
-- flavour. Keep it in step with ../postgres/20250101000002_shares.sql. Encodings as in
-- 20250101000001_initial.sql (TEXT UUIDs, INTEGER microsecond timestamps, INTEGER booleans,
-- TEXT JSON objects), STRICT tables.
--
-- Rows are deleted for real (Manila soft-deletes); nothing here keeps a `deleted` column.

-- A share: what the user asked for. Status, host and zone live on its instances.
CREATE TABLE shares (
    id               TEXT    NOT NULL PRIMARY KEY,
    project_id       TEXT    NOT NULL,
    user_id          TEXT    NOT NULL,
    name             TEXT,
    description      TEXT,
    size_gb          INTEGER NOT NULL CHECK (size_gb > 0),
    share_proto      TEXT    NOT NULL,
    -- No cascade: a share type cannot be deleted while shares use it.
    share_type_id    TEXT    REFERENCES share_types (id),
    is_public        INTEGER NOT NULL CHECK (is_public IN (0, 1)),
    replication_type TEXT,
    snapshot_id      TEXT,
    share_group_id   TEXT,
    task_state       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER
) STRICT;

CREATE INDEX shares_project_idx ON shares (project_id, created_at);
CREATE INDEX shares_share_type_idx ON shares (share_type_id);

CREATE TABLE share_metadata (
    share_id   TEXT    NOT NULL REFERENCES shares (id) ON DELETE CASCADE,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER,
    PRIMARY KEY (share_id, key)
) STRICT;

-- Share instances (replicas). No cascade from shares: a share is removed only once its last
-- instance is gone.
CREATE TABLE share_instances (
    id                     TEXT    NOT NULL PRIMARY KEY,
    share_id               TEXT    NOT NULL REFERENCES shares (id),
    status                 TEXT    NOT NULL,
    replica_state          TEXT
        CHECK (replica_state IN ('active', 'in_sync', 'out_of_sync', 'error')),
    -- host@backend#pool, '' until the scheduler places the instance.
    host                   TEXT    NOT NULL DEFAULT '',
    -- Zone name (zones are never renamed or deleted).
    availability_zone      TEXT,
    share_type_id          TEXT    REFERENCES share_types (id),
    share_network_id       TEXT,
    share_server_id        TEXT,
    cast_rules_to_readonly INTEGER NOT NULL DEFAULT 0 CHECK (cast_rules_to_readonly IN (0, 1)),
    access_rules_status    TEXT    NOT NULL DEFAULT 'active'
        CHECK (access_rules_status IN ('active', 'syncing', 'error')),
    progress               TEXT,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER,
    scheduled_at           INTEGER,
    launched_at            INTEGER,
    terminated_at          INTEGER
) STRICT;

CREATE INDEX share_instances_share_idx ON share_instances (share_id, created_at);
-- Range scans by service host ('host@backend#' <= host < 'host@backend$').
CREATE INDEX share_instances_host_idx ON share_instances (host);
CREATE INDEX share_instances_share_type_idx ON share_instances (share_type_id);

CREATE TABLE share_instance_export_locations (
    id                TEXT    NOT NULL PRIMARY KEY,
    share_instance_id TEXT    NOT NULL REFERENCES share_instances (id) ON DELETE CASCADE,
    path              TEXT    NOT NULL,
    is_admin_only     INTEGER NOT NULL CHECK (is_admin_only IN (0, 1)),
    preferred         INTEGER NOT NULL CHECK (preferred IN (0, 1)),
    metadata          TEXT    NOT NULL CHECK (json_valid(metadata)),
    -- Index in the list the driver reported last; lists are returned in that order.
    position          INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER,
    UNIQUE (share_instance_id, path)
) STRICT;

-- Manila's share_access_map: rules are defined on the share ...
CREATE TABLE share_access_rules (
    id           TEXT    NOT NULL PRIMARY KEY,
    share_id     TEXT    NOT NULL REFERENCES shares (id) ON DELETE CASCADE,
    access_type  TEXT    NOT NULL,
    access_to    TEXT    NOT NULL,
    access_level TEXT    NOT NULL,
    access_key   TEXT,
    metadata     TEXT    NOT NULL CHECK (json_valid(metadata)),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER,
    UNIQUE (share_id, access_type, access_to)
) STRICT;

-- ... and tracked per instance.
CREATE TABLE share_instance_access_map (
    access_id         TEXT    NOT NULL REFERENCES share_access_rules (id) ON DELETE CASCADE,
    share_instance_id TEXT    NOT NULL REFERENCES share_instances (id) ON DELETE CASCADE,
    state             TEXT    NOT NULL CHECK (state IN ('queued_to_apply', 'applying', 'active',
        'queued_to_update', 'updating', 'queued_to_deny', 'denying', 'error')),
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER,
    PRIMARY KEY (access_id, share_instance_id)
) STRICT;

CREATE INDEX share_instance_access_map_instance_idx
    ON share_instance_access_map (share_instance_id);

-- Per-project quota overrides; a resource without a row uses the configured default.
-- -1 means unlimited.
CREATE TABLE quotas (
    project_id TEXT    NOT NULL,
    resource   TEXT    NOT NULL,
    hard_limit INTEGER NOT NULL CHECK (hard_limit >= -1),
    created_at INTEGER NOT NULL,
    updated_at INTEGER,
    PRIMARY KEY (project_id, resource)
) STRICT;

-- Usage counters, created on demand. Every change is one conditional UPDATE of one row.
CREATE TABLE quota_usages (
    project_id TEXT    NOT NULL,
    resource   TEXT    NOT NULL,
    in_use     INTEGER NOT NULL DEFAULT 0 CHECK (in_use >= 0),
    reserved   INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    updated_at INTEGER,
    PRIMARY KEY (project_id, resource)
) STRICT;

-- Pending quota reservations; a committed, rolled back or expired one is deleted.
CREATE TABLE reservations (
    id         TEXT    NOT NULL PRIMARY KEY,
    project_id TEXT    NOT NULL,
    resource   TEXT    NOT NULL,
    delta      INTEGER NOT NULL,
    expire_at  INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX reservations_expire_idx ON reservations (expire_at);

-- User messages (GET /v2/messages).
CREATE TABLE messages (
    id            TEXT    NOT NULL PRIMARY KEY,
    project_id    TEXT    NOT NULL,
    request_id    TEXT,
    resource_type TEXT    NOT NULL,
    resource_id   TEXT,
    action_id     TEXT    NOT NULL,
    detail_id     TEXT    NOT NULL,
    message_level TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
) STRICT;

CREATE INDEX messages_project_idx ON messages (project_id, created_at);
CREATE INDEX messages_expires_idx ON messages (expires_at);
