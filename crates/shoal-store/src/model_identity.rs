//! Rows and inputs of shoal's built-in identity, a Keystone v3 subset: projects, users, role
//! assignments, revoked tokens and the token signing key.
//!
//! Persisted: projects and users (ids are Keystone-style 32 lowercase hex characters chosen by
//! the caller; the store does not check the format), each user's argon2 password hash (a PHC
//! string the store never interprets) and `tokens_valid_after` cut-off, the role names a user
//! holds on a project (they go with the user and with the project), revoked tokens by audit id
//! until they would have expired anyway, and the secret that signs tokens (key 1, created once
//! by whichever node gets there first). Derived, never stored: tokens themselves (signed, so
//! any node can check one without a lookup), the roles a token carries (read at issue time),
//! and domains (`domain_id` is a plain name such as `default`; there is no domain table).
//!
//! Password hashes are secrets: the `Debug` output of [`NewIdentityUser`],
//! [`IdentityUserRow`] and [`IdentityUserUpdate`] shows `"<redacted>"` in their place, so a
//! stray `{:?}` in a log line never leaks one.

use std::fmt;

use chrono::{DateTime, Utc};

/// What `Debug` prints instead of a password hash.
const REDACTED: &str = "<redacted>";

/// Input of `Store::insert_identity_project`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIdentityProject {
    /// Id chosen by the caller: 32 lowercase hex characters, as Keystone's.
    pub id: String,
    /// Name, unique within the domain.
    pub name: String,
    /// Owning domain (`default` for most deployments).
    pub domain_id: String,
    /// Free text; empty when not given.
    pub description: String,
    /// A disabled project cannot be scoped to.
    pub enabled: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A project (a Keystone project, a Manila tenant): what tokens are scoped to and what
/// shares, quotas and messages belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityProjectRow {
    /// Project id (32 lowercase hex characters).
    pub id: String,
    /// Name, unique within the domain.
    pub name: String,
    /// Owning domain.
    pub domain_id: String,
    /// Free text, possibly empty.
    pub description: String,
    /// A disabled project cannot be scoped to.
    pub enabled: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// Input of `Store::insert_identity_user`. The new user's `tokens_valid_after` and
/// `updated_at` are its `created_at`.
#[derive(Clone, PartialEq, Eq)]
pub struct NewIdentityUser {
    /// Id chosen by the caller: 32 lowercase hex characters, as Keystone's.
    pub id: String,
    /// Name, unique within the domain.
    pub name: String,
    /// Owning domain.
    pub domain_id: String,
    /// Argon2 PHC string of the password, stored as given. Redacted in `Debug`.
    pub password_hash: String,
    /// A disabled user cannot authenticate.
    pub enabled: bool,
    /// Project to scope to when a token request names none; must exist (`NotFound`).
    pub default_project_id: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl fmt::Debug for NewIdentityUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewIdentityUser")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("domain_id", &self.domain_id)
            .field("password_hash", &REDACTED)
            .field("enabled", &self.enabled)
            .field("default_project_id", &self.default_project_id)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A user who authenticates with a password.
#[derive(Clone, PartialEq, Eq)]
pub struct IdentityUserRow {
    /// User id (32 lowercase hex characters).
    pub id: String,
    /// Name, unique within the domain.
    pub name: String,
    /// Owning domain.
    pub domain_id: String,
    /// Argon2 PHC string of the password. Redacted in `Debug`.
    pub password_hash: String,
    /// A disabled user cannot authenticate, and its tokens are refused.
    pub enabled: bool,
    /// Project to scope to when a token request names none; cleared when that project is
    /// deleted.
    pub default_project_id: Option<String>,
    /// Tokens issued before this instant are invalid; moved forward on password change or
    /// disable, which revokes every outstanding token of the user at once.
    pub tokens_valid_after: DateTime<Utc>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change through `Store::update_identity_user`; `created_at` until then.
    pub updated_at: DateTime<Utc>,
}

impl fmt::Debug for IdentityUserRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityUserRow")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("domain_id", &self.domain_id)
            .field("password_hash", &REDACTED)
            .field("enabled", &self.enabled)
            .field("default_project_id", &self.default_project_id)
            .field("tokens_valid_after", &self.tokens_valid_after)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// Input of `Store::update_identity_user`: `None` leaves a field unchanged; for
/// `default_project_id`, `Some(None)` clears it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct IdentityUserUpdate {
    /// New name, unique within the user's domain (`Conflict` if taken).
    pub name: Option<String>,
    /// New argon2 PHC string. Redacted in `Debug`.
    pub password_hash: Option<String>,
    /// Enable or disable the user.
    pub enabled: Option<bool>,
    /// New default project (`Some(None)` clears it); must exist (`NotFound`).
    pub default_project_id: Option<Option<String>>,
    /// New token cut-off; the caller moves it to `now` together with a password change or a
    /// disable.
    pub tokens_valid_after: Option<DateTime<Utc>>,
}

impl fmt::Debug for IdentityUserUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityUserUpdate")
            .field("name", &self.name)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| REDACTED),
            )
            .field("enabled", &self.enabled)
            .field("default_project_id", &self.default_project_id)
            .field("tokens_valid_after", &self.tokens_valid_after)
            .finish()
    }
}

/// One role a user holds on a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAssignmentRow {
    /// The user.
    pub user_id: String,
    /// The project the role applies to.
    pub project_id: String,
    /// Role name (`admin`, `member`, `reader`, `service`, ...), as policy rules name it.
    pub role: String,
}
