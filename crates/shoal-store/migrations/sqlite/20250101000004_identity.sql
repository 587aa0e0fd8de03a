-- Built-in identity (a Keystone v3 subset), SQLite flavour: projects, users with their password
-- hashes, role assignments, revoked tokens and the token signing key. Keep it in step with
-- ../postgres/20250101000004_identity.sql. Encodings as in 20250101000001_initial.sql (INTEGER
-- microsecond timestamps, INTEGER booleans), STRICT tables.
--
-- Project and user ids are 32 lowercase hex characters (Keystone's uuid4 hex), chosen by the
-- caller. Domains have no table: `domain_id` is a plain name such as `default`. Tokens are not
-- stored (they are signed with the key below); only revocations are.

CREATE TABLE identity_projects (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    domain_id   TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    enabled     INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    created_at  INTEGER NOT NULL,
    UNIQUE (domain_id, name)
) STRICT;

-- `password_hash` is an argon2 PHC string, never interpreted by the store. Tokens issued before
-- `tokens_valid_after` are invalid (bumped on password change or disable). A user whose default
-- project is deleted keeps no default (ON DELETE SET NULL).
CREATE TABLE identity_users (
    id                 TEXT    NOT NULL PRIMARY KEY,
    name               TEXT    NOT NULL,
    domain_id          TEXT    NOT NULL,
    password_hash      TEXT    NOT NULL,
    enabled            INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    default_project_id TEXT    REFERENCES identity_projects (id) ON DELETE SET NULL,
    tokens_valid_after INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    UNIQUE (domain_id, name)
) STRICT;

CREATE INDEX identity_users_default_project_idx ON identity_users (default_project_id);

-- Role names (`admin`, `member`, `reader`, `service`, ...) a user holds on a project. Go with
-- the user and with the project.
CREATE TABLE identity_role_assignments (
    user_id    TEXT NOT NULL REFERENCES identity_users (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES identity_projects (id) ON DELETE CASCADE,
    role       TEXT NOT NULL,
    PRIMARY KEY (user_id, project_id, role)
) STRICT;

CREATE INDEX identity_role_assignments_project_idx ON identity_role_assignments (project_id);

-- Revoked tokens by audit id. `expires_at` is when the token would have expired anyway; after
-- it the row is useless and is purged.
CREATE TABLE identity_revoked_tokens (
    audit_id   TEXT    NOT NULL PRIMARY KEY,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL
) STRICT;

CREATE INDEX identity_revoked_tokens_expires_idx ON identity_revoked_tokens (expires_at);

-- Token signing keys; key 1 is created once by the first node that needs it. `secret` is hex.
CREATE TABLE identity_signing_keys (
    id         INTEGER NOT NULL PRIMARY KEY,
    secret     TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
