//! Administration by id, as Keystone's v3 admin API does it (`POST /v3/users`,
//! `PATCH /v3/users/{id}`, `POST /v3/projects`, role grants on a project, ...): the calls the
//! HTTP side serves to admins. The `shoal identity` CLI addresses users and projects by name
//! and lives in `lib.rs`; both write through the same store methods, and every change that
//! can narrow what a token grants forgets this node's cached validations.
//!
//! Roles have no table: a role is a name, its id is [`role_id`] of the name. The roles that
//! exist are [`BUILTIN_ROLES`] plus any other name some assignment holds (the CLI grants any
//! name).

use chrono::{DateTime, Utc};
use shoal_store::{IdentityProjectRow, IdentityUserRow, IdentityUserUpdate, NewIdentityProject};

use crate::{
    DEFAULT_DOMAIN_ID, IdentityError, IdentityResult, IdentityService, new_id, password, role_id,
    token,
};

/// The roles that always exist, as `keystone-manage bootstrap` creates them, plus `service`
/// (the role of other services' users, which may validate any token).
pub const BUILTIN_ROLES: [&str; 4] = ["admin", "member", "reader", "service"];

/// A user to create (`POST /v3/users`).
#[derive(Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Name, unique in the domain.
    pub name: String,
    /// Clear-text password; `None` makes a user that cannot authenticate with one (Keystone
    /// allows users without a password).
    pub password: Option<String>,
    /// Project to scope to when a token request names none; must exist.
    pub default_project_id: Option<String>,
    /// A disabled user cannot authenticate.
    pub enabled: bool,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("name", &self.name)
            .field("default_project_id", &self.default_project_id)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// Changes to a user (`PATCH /v3/users/{id}`); `None` keeps a field.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct UserChanges {
    /// New name.
    pub name: Option<String>,
    /// New clear-text password; the user's older tokens stop working.
    pub password: Option<String>,
    /// Enable or disable; disabling ends the user's tokens.
    pub enabled: Option<bool>,
    /// New default project (`Some(None)` clears it).
    pub default_project_id: Option<Option<String>>,
}

impl std::fmt::Debug for UserChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserChanges")
            .field("name", &self.name)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("enabled", &self.enabled)
            .field("default_project_id", &self.default_project_id)
            .finish()
    }
}

impl IdentityService {
    /// Creates a user in the default domain. `Conflict` if the name is taken, `NotFound` if
    /// the default project does not exist.
    pub async fn create_user(
        &self,
        new: NewUser,
        now: DateTime<Utc>,
    ) -> IdentityResult<IdentityUserRow> {
        if new.name.trim().is_empty() {
            return Err(IdentityError::BadRequest("a user needs a name".to_owned()));
        }
        // A user without a password gets the hash of a secret nobody holds.
        let password = new.password.unwrap_or_else(token::new_audit_id);
        let mut user = self
            .insert_user(&new.name, &password, new.default_project_id.as_deref(), now)
            .await?;
        if !new.enabled {
            let update = IdentityUserUpdate {
                enabled: Some(false),
                ..IdentityUserUpdate::default()
            };
            user = self
                .store
                .update_identity_user(&user.id, update, now)
                .await?;
        }
        Ok(user)
    }

    /// Changes a user by id. A new password or a disable moves its token cut-off to `now`
    /// (as Keystone revokes a user's tokens then); a rename does not.
    pub async fn change_user(
        &self,
        id: &str,
        changes: UserChanges,
        now: DateTime<Utc>,
    ) -> IdentityResult<IdentityUserRow> {
        if changes.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(IdentityError::BadRequest("a user needs a name".to_owned()));
        }
        if changes.password.as_deref() == Some("") {
            return Err(IdentityError::BadRequest(
                "the password is empty".to_owned(),
            ));
        }
        let password_hash = match changes.password {
            Some(password) => Some(
                password::hash_blocking(password)
                    .await
                    .map_err(IdentityError::Internal)?,
            ),
            None => None,
        };
        let cut_off = password_hash.is_some() || changes.enabled == Some(false);
        let update = IdentityUserUpdate {
            name: changes.name,
            password_hash,
            enabled: changes.enabled,
            default_project_id: changes.default_project_id,
            tokens_valid_after: cut_off.then_some(now),
        };
        let user = self.store.update_identity_user(id, update, now).await?;
        self.forget_validations();
        Ok(user)
    }

    /// Deletes a user by id, with its role assignments.
    pub async fn delete_user_by_id(&self, id: &str) -> IdentityResult<()> {
        self.store.delete_identity_user(id).await?;
        self.forget_validations();
        Ok(())
    }

    /// Creates a project in the default domain. `Conflict` if the name is taken.
    pub async fn create_project(
        &self,
        name: &str,
        description: &str,
        enabled: bool,
        now: DateTime<Utc>,
    ) -> IdentityResult<IdentityProjectRow> {
        if name.trim().is_empty() {
            return Err(IdentityError::BadRequest(
                "a project needs a name".to_owned(),
            ));
        }
        let new = NewIdentityProject {
            id: new_id(),
            name: name.to_owned(),
            domain_id: DEFAULT_DOMAIN_ID.to_owned(),
            description: description.to_owned(),
            enabled,
            created_at: now,
        };
        Ok(self.store.insert_identity_project(new).await?)
    }

    /// Deletes a project by id, with its role assignments; users that had it as their
    /// default project keep none. What other services hold for the project stays (as with
    /// Keystone).
    pub async fn delete_project(&self, id: &str) -> IdentityResult<()> {
        self.store.delete_identity_project(id).await?;
        self.forget_validations();
        Ok(())
    }

    /// Every role name that exists: the built-in ones and any other that is assigned, sorted.
    pub async fn role_names(&self) -> IdentityResult<Vec<String>> {
        let mut names: Vec<String> = BUILTIN_ROLES.iter().map(|r| (*r).to_owned()).collect();
        names.extend(
            self.store
                .list_identity_role_assignments()
                .await?
                .into_iter()
                .map(|a| a.role),
        );
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The name of the role with id `id`; `NotFound` if no existing role has it.
    pub async fn role_by_id(&self, id: &str) -> IdentityResult<String> {
        self.role_names()
            .await?
            .into_iter()
            .find(|name| role_id(name) == id)
            .ok_or_else(|| IdentityError::NotFound(format!("role {id}")))
    }

    /// Grants `role` (a name) on a project to a user, by ids; granting a held role is a
    /// no-op.
    pub async fn grant_role_by_id(
        &self,
        user_id: &str,
        project_id: &str,
        role: &str,
    ) -> IdentityResult<()> {
        self.store
            .grant_identity_role(user_id, project_id, role)
            .await?;
        // Tokens validated before carry the roles of then.
        self.forget_validations();
        Ok(())
    }

    /// Revokes `role` on a project from a user, by ids; `NotFound` if it was not held.
    pub async fn revoke_role_by_id(
        &self,
        user_id: &str,
        project_id: &str,
        role: &str,
    ) -> IdentityResult<()> {
        self.store
            .revoke_identity_role(user_id, project_id, role)
            .await?;
        self.forget_validations();
        Ok(())
    }

    /// Whether a user holds `role` on a project by a direct assignment.
    pub async fn holds_role(
        &self,
        user_id: &str,
        project_id: &str,
        role: &str,
    ) -> IdentityResult<bool> {
        Ok(self
            .store
            .list_identity_roles(user_id, project_id)
            .await?
            .iter()
            .any(|held| held == role))
    }
}
