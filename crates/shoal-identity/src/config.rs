//! Settings of the built-in identity (`[identity]` in the TOML file): the first admin's
//! password, token lifetime, what the service catalog advertises, the failure limits, and
//! the extra projects and users an operator declares. Every field has a serde default, so an
//! empty section is valid.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Keystone's default `[token] expiration`.
pub const TOKEN_EXPIRATION_DEFAULT: Duration = Duration::from_secs(3600);
/// How long a validated token is trusted without reading the database again.
pub const TOKEN_CACHE_TTL_DEFAULT: Duration = Duration::from_secs(5);
/// Failed password authentications of one user before it is refused for a while.
pub const USER_FAILURE_LIMIT_DEFAULT: u32 = 5;
/// How long a user's failures count, and how long a locked user stays locked.
pub const USER_FAILURE_WINDOW_DEFAULT: Duration = Duration::from_secs(300);
/// Failed authentications from one source address before it is refused for a while.
pub const ADDRESS_FAILURE_LIMIT_DEFAULT: u32 = 30;
/// How long an address's failures count.
pub const ADDRESS_FAILURE_WINDOW_DEFAULT: Duration = Duration::from_secs(60);

/// `[identity]`: the built-in Keystone v3 subset of `auth_strategy = "builtin"`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// Password of the first admin (user `admin`, project `admin`, domain `Default`, role
    /// `admin`). `SHOAL_ADMIN_PASSWORD` overrides it. When both are empty, the first start
    /// generates one and writes it to `<data_dir>/admin-password` (mode 0600); later starts
    /// keep whatever the database holds. A configured password that differs from the stored
    /// one replaces it at start-up (and invalidates the admin's older tokens).
    pub admin_password: String,
    /// Lifetime of issued tokens (Keystone `[token] expiration`).
    #[serde(with = "humantime_serde")]
    pub token_expiration: Duration,
    /// How long a node trusts a token it validated without reading the database again
    /// (keystonemiddleware's `token_cache_time`, 300 s there). Changes made on this node
    /// (revocation, passwords, roles) clear the cache at once; changes made by another node
    /// or by `shoal identity` take effect within this time. `0s` disables the cache.
    #[serde(with = "humantime_serde")]
    pub token_cache_ttl: Duration,
    /// Base URL of this API as clients reach it (`http://203.0.113.7:8786`), used in the
    /// service catalog and `WWW-Authenticate`. Empty: taken from each request's `Host`.
    pub public_endpoint: String,
    /// Region of the catalog's endpoints.
    pub region: String,
    /// Failed password authentications of one user within `user_failure_window` after
    /// which the user is refused (Keystone `lockout_failure_attempts`); 0 disables it.
    pub user_failure_limit: u32,
    /// Window of `user_failure_limit` (Keystone `lockout_duration`).
    #[serde(with = "humantime_serde")]
    pub user_failure_window: Duration,
    /// Failed authentications from one source address within `address_failure_window`
    /// after which that address gets 429; 0 disables it.
    pub address_failure_limit: u32,
    /// Window of `address_failure_limit`.
    #[serde(with = "humantime_serde")]
    pub address_failure_window: Duration,
    /// Projects created at start-up if missing (`[[identity.projects]]`).
    pub projects: Vec<ProjectSeed>,
    /// Users created or updated at start-up (`[[identity.users]]`).
    pub users: Vec<UserSeed>,
    /// Further role assignments granted at start-up (`[[identity.role_assignments]]`), for a
    /// user with roles on more than its own project. The user and the project must exist
    /// (from the file, the CLI or an earlier start); the project is created if missing.
    pub role_assignments: Vec<RoleAssignmentSeed>,
}

/// Roles of a user on a project, from the config file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RoleAssignmentSeed {
    /// User name.
    pub user: String,
    /// Project name.
    pub project: String,
    /// Role names.
    pub roles: Vec<String>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            admin_password: String::new(),
            token_expiration: TOKEN_EXPIRATION_DEFAULT,
            token_cache_ttl: TOKEN_CACHE_TTL_DEFAULT,
            public_endpoint: String::new(),
            region: "RegionOne".to_owned(),
            user_failure_limit: USER_FAILURE_LIMIT_DEFAULT,
            user_failure_window: USER_FAILURE_WINDOW_DEFAULT,
            address_failure_limit: ADDRESS_FAILURE_LIMIT_DEFAULT,
            address_failure_window: ADDRESS_FAILURE_WINDOW_DEFAULT,
            projects: Vec::new(),
            users: Vec::new(),
            role_assignments: Vec::new(),
        }
    }
}

impl std::fmt::Debug for IdentityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityConfig")
            .field(
                "admin_password",
                &if self.admin_password.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("token_expiration", &self.token_expiration)
            .field("token_cache_ttl", &self.token_cache_ttl)
            .field("public_endpoint", &self.public_endpoint)
            .field("region", &self.region)
            .field("user_failure_limit", &self.user_failure_limit)
            .field("address_failure_limit", &self.address_failure_limit)
            .field("projects", &self.projects)
            .field("users", &self.users)
            .field("role_assignments", &self.role_assignments)
            .finish_non_exhaustive()
    }
}

/// A project of the config file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ProjectSeed {
    /// Project name, unique in the `Default` domain.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

/// A user of the config file. The config is authoritative for what it names: at each start
/// the user is created if missing, its password is set if it differs, and its roles on
/// `project` are granted (roles granted by the CLI stay).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserSeed {
    /// User name, unique in the `Default` domain.
    pub name: String,
    /// An argon2 PHC string (`shoal identity hash-password` makes one). Preferred over
    /// `password`, so the file holds no clear text.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Clear-text password, hashed at start-up.
    #[serde(default)]
    pub password: Option<String>,
    /// Project the roles are granted on, and the user's default project; created if missing.
    #[serde(default)]
    pub project: Option<String>,
    /// Role names on `project` (`admin`, `member`, `reader`, ...).
    #[serde(default)]
    pub roles: Vec<String>,
}

impl std::fmt::Debug for UserSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSeed")
            .field("name", &self.name)
            .field("project", &self.project)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl IdentityConfig {
    /// Checks what serde cannot: every user has exactly one way to get a password, roles
    /// need a project, names are not empty.
    pub fn validate(&self) -> Result<(), String> {
        if self.token_expiration < Duration::from_secs(1) {
            return Err("identity.token_expiration must be at least 1s".to_owned());
        }
        for project in &self.projects {
            if project.name.trim().is_empty() {
                return Err("identity.projects: a project has an empty name".to_owned());
            }
        }
        for user in &self.users {
            if user.name.trim().is_empty() {
                return Err("identity.users: a user has an empty name".to_owned());
            }
            match (&user.password, &user.password_hash) {
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "identity.users {}: give password or password_hash, not both",
                        user.name
                    ));
                }
                (None, None) => {
                    return Err(format!(
                        "identity.users {}: needs password or password_hash",
                        user.name
                    ));
                }
                (None, Some(hash)) if !crate::password::is_phc_hash(hash) => {
                    return Err(format!(
                        "identity.users {}: password_hash is not an argon2 PHC string",
                        user.name
                    ));
                }
                _ => {}
            }
            if !user.roles.is_empty() && user.project.is_none() {
                return Err(format!(
                    "identity.users {}: roles need a project",
                    user.name
                ));
            }
        }
        for assignment in &self.role_assignments {
            if assignment.user.trim().is_empty()
                || assignment.project.trim().is_empty()
                || assignment.roles.is_empty()
            {
                return Err(
                    "identity.role_assignments: each needs a user, a project and roles".to_owned(),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_debug_redacts_the_password() {
        let mut config = IdentityConfig::default();
        config.validate().expect("defaults are valid");
        config.admin_password = "s3cret".to_owned();
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn users_need_exactly_one_password_source() {
        let seed = |password: Option<&str>, hash: Option<&str>| IdentityConfig {
            users: vec![UserSeed {
                name: "demo".to_owned(),
                password: password.map(str::to_owned),
                password_hash: hash.map(str::to_owned),
                project: Some("demo".to_owned()),
                roles: vec!["member".to_owned()],
            }],
            ..IdentityConfig::default()
        };
        assert!(seed(Some("pw"), None).validate().is_ok());
        assert!(seed(None, None).validate().is_err());
        assert!(seed(Some("pw"), Some("x")).validate().is_err());
        assert!(seed(None, Some("not-a-hash")).validate().is_err());
    }
}
