-- Initial schema, SQLite flavour. Keep it in step with ../postgres/20250101000001_initial.sql.
--
-- Encoding conventions (see src/codec.rs):
--   * UUIDs are lowercase hyphenated TEXT;
--   * timestamps are INTEGER microseconds since the Unix epoch (UTC), so that SQL comparisons
--     such as `lease_until < $now` are numeric and exact;
--   * booleans are INTEGER 0/1;
--   * JSON documents are TEXT holding a JSON object.
-- Tables are STRICT so a value of the wrong type is refused instead of silently stored.

CREATE TABLE share_types (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    description TEXT,
    is_public   INTEGER NOT NULL CHECK (is_public IN (0, 1)),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER
) STRICT;

CREATE TABLE share_type_extra_specs (
    share_type_id TEXT NOT NULL REFERENCES share_types (id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (share_type_id, key)
) STRICT;

CREATE TABLE share_type_projects (
    share_type_id TEXT NOT NULL REFERENCES share_types (id) ON DELETE CASCADE,
    project_id    TEXT NOT NULL,
    PRIMARY KEY (share_type_id, project_id)
) STRICT;

CREATE INDEX share_type_projects_project_idx ON share_type_projects (project_id);

CREATE TABLE availability_zones (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    updated_at INTEGER
) STRICT;

-- "binary" is quoted because it is a keyword in PostgreSQL; quote it in every query.
CREATE TABLE services (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    host                 TEXT    NOT NULL,
    "binary"             TEXT    NOT NULL,
    topic                TEXT    NOT NULL,
    availability_zone_id TEXT    NOT NULL REFERENCES availability_zones (id),
    disabled             INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    disabled_reason      TEXT,
    report_count         INTEGER NOT NULL DEFAULT 0,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    UNIQUE (host, "binary")
) STRICT;

CREATE INDEX services_availability_zone_idx ON services (availability_zone_id);

CREATE TABLE pools (
    name              TEXT    NOT NULL PRIMARY KEY,
    host              TEXT    NOT NULL,
    backend           TEXT    NOT NULL,
    pool              TEXT    NOT NULL,
    availability_zone TEXT    NOT NULL,
    capabilities      TEXT    NOT NULL CHECK (json_valid(capabilities)),
    updated_at        INTEGER NOT NULL
) STRICT;

-- AUTOINCREMENT so an id is never reused after old operations are pruned.
CREATE TABLE operations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL,
    target_id   TEXT    NOT NULL,
    host        TEXT,
    payload     TEXT    NOT NULL CHECK (json_valid(payload)),
    state       TEXT    NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    claimed_by  TEXT,
    lease_until INTEGER,
    not_before  INTEGER,
    last_error  TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

-- Claims only ever look at unfinished work; finished rows pile up and must not slow them down.
CREATE INDEX operations_unfinished_idx ON operations (host, id) WHERE state IN ('pending', 'running');
CREATE INDEX operations_target_idx ON operations (target_id);
