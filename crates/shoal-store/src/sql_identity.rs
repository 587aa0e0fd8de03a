//! Identity queries (the built-in Keystone subset): projects, users, role assignments, token
//! revocations and the signing key, expanded for each engine by [`identity_sql!`] from inside
//! [`impl_store!`](crate::sql_impl::impl_store). Same rules as `sql_impl.rs`: one query text
//! for both engines, `$N` placeholders, `DbTime` binds.
//!
//! Persisted: `identity_projects`, `identity_users` (the default project is cleared by `ON
//! DELETE SET NULL`), `identity_role_assignments` (go with their user and their project by
//! `ON DELETE CASCADE`), `identity_revoked_tokens` (purged once the token would have expired)
//! and `identity_signing_keys`. Nothing is derived here.
//!
//! Every write is one statement, so none needs a transaction. The signing key is created
//! with `INSERT ... ON CONFLICT DO NOTHING` followed by a read, like
//! `ensure_availability_zone`: concurrent nodes serialise on the primary key and all of them
//! read back the one secret that won.

/// Columns of `identity_projects`, in `RETURNING`/`SELECT` lists.
macro_rules! identity_project_columns {
    () => {
        "id, name, domain_id, description, enabled, created_at"
    };
}
pub(crate) use identity_project_columns;

/// Columns of `identity_users`, in `RETURNING`/`SELECT` lists.
macro_rules! identity_user_columns {
    () => {
        "id, name, domain_id, password_hash, enabled, default_project_id, tokens_valid_after, \
         created_at, updated_at"
    };
}
pub(crate) use identity_user_columns;

/// Expands the identity query functions as module `identity_sql` next to `store_impl`.
macro_rules! identity_sql {
    ($store:ident) => {
        /// Projects, users, role assignments, token revocations, the signing key.
        mod identity_sql {
            use chrono::{DateTime, Utc};

            use super::sql_common::{DbRow, get, time};
            use super::$store;
            use $crate::codec::DbTime;
            use $crate::error::{
                Result, StoreError, is_foreign_key_violation, is_unique_violation,
            };
            use $crate::model_identity::{
                IdentityProjectRow, IdentityUserRow, IdentityUserUpdate, NewIdentityProject,
                NewIdentityUser, RoleAssignmentRow,
            };
            use $crate::sql_identity::{identity_project_columns, identity_user_columns};

            // ---- projects ----

            fn project_from_row(row: &DbRow) -> Result<IdentityProjectRow> {
                Ok(IdentityProjectRow {
                    id: get(row, "id")?,
                    name: get(row, "name")?,
                    domain_id: get(row, "domain_id")?,
                    description: get(row, "description")?,
                    enabled: get(row, "enabled")?,
                    created_at: time(row, "created_at")?,
                })
            }

            pub(super) async fn insert_identity_project(
                store: &$store,
                new: NewIdentityProject,
            ) -> Result<IdentityProjectRow> {
                let inserted = sqlx::query(concat!(
                    "INSERT INTO identity_projects (",
                    identity_project_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
                    identity_project_columns!()
                ))
                .bind(&new.id)
                .bind(&new.name)
                .bind(&new.domain_id)
                .bind(&new.description)
                .bind(new.enabled)
                .bind(DbTime::new(new.created_at))
                .fetch_one(store.writer())
                .await;
                match inserted {
                    Ok(row) => project_from_row(&row),
                    Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                        "identity project {} in domain {} or id {} already exists",
                        new.name, new.domain_id, new.id
                    ))),
                    Err(e) => Err(e.into()),
                }
            }

            pub(super) async fn get_identity_project(
                store: &$store,
                id: &str,
            ) -> Result<IdentityProjectRow> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    identity_project_columns!(),
                    " FROM identity_projects WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&store.pool)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("identity project {id}")))?;
                project_from_row(&row)
            }

            pub(super) async fn get_identity_project_by_name(
                store: &$store,
                domain_id: &str,
                name: &str,
            ) -> Result<IdentityProjectRow> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    identity_project_columns!(),
                    " FROM identity_projects WHERE domain_id = $1 AND name = $2"
                ))
                .bind(domain_id)
                .bind(name)
                .fetch_optional(&store.pool)
                .await?
                .ok_or_else(|| {
                    StoreError::NotFound(format!("identity project {name} in domain {domain_id}"))
                })?;
                project_from_row(&row)
            }

            pub(super) async fn list_identity_projects(
                store: &$store,
            ) -> Result<Vec<IdentityProjectRow>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    identity_project_columns!(),
                    " FROM identity_projects ORDER BY domain_id, name"
                ))
                .fetch_all(&store.pool)
                .await?;
                rows.iter().map(project_from_row).collect()
            }

            pub(super) async fn delete_identity_project(store: &$store, id: &str) -> Result<()> {
                // Role assignments go with it (ON DELETE CASCADE); users that had it as their
                // default project keep none (ON DELETE SET NULL).
                let deleted = sqlx::query("DELETE FROM identity_projects WHERE id = $1")
                    .bind(id)
                    .execute(store.writer())
                    .await?
                    .rows_affected();
                if deleted == 0 {
                    return Err(StoreError::NotFound(format!("identity project {id}")));
                }
                Ok(())
            }

            // ---- users ----

            fn user_from_row(row: &DbRow) -> Result<IdentityUserRow> {
                Ok(IdentityUserRow {
                    id: get(row, "id")?,
                    name: get(row, "name")?,
                    domain_id: get(row, "domain_id")?,
                    password_hash: get(row, "password_hash")?,
                    enabled: get(row, "enabled")?,
                    default_project_id: get(row, "default_project_id")?,
                    tokens_valid_after: time(row, "tokens_valid_after")?,
                    created_at: time(row, "created_at")?,
                    updated_at: time(row, "updated_at")?,
                })
            }

            pub(super) async fn insert_identity_user(
                store: &$store,
                new: NewIdentityUser,
            ) -> Result<IdentityUserRow> {
                let inserted = sqlx::query(concat!(
                    "INSERT INTO identity_users (",
                    identity_user_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7) RETURNING ",
                    identity_user_columns!()
                ))
                .bind(&new.id)
                .bind(&new.name)
                .bind(&new.domain_id)
                .bind(&new.password_hash)
                .bind(new.enabled)
                .bind(&new.default_project_id)
                .bind(DbTime::new(new.created_at))
                .fetch_one(store.writer())
                .await;
                match inserted {
                    Ok(row) => user_from_row(&row),
                    Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                        "identity user {} in domain {} or id {} already exists",
                        new.name, new.domain_id, new.id
                    ))),
                    Err(e) if is_foreign_key_violation(&e) => Err(StoreError::NotFound(format!(
                        "identity project {}",
                        new.default_project_id.as_deref().unwrap_or_default()
                    ))),
                    Err(e) => Err(e.into()),
                }
            }

            pub(super) async fn get_identity_user(
                store: &$store,
                id: &str,
            ) -> Result<IdentityUserRow> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    identity_user_columns!(),
                    " FROM identity_users WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&store.pool)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("identity user {id}")))?;
                user_from_row(&row)
            }

            pub(super) async fn get_identity_user_by_name(
                store: &$store,
                domain_id: &str,
                name: &str,
            ) -> Result<IdentityUserRow> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    identity_user_columns!(),
                    " FROM identity_users WHERE domain_id = $1 AND name = $2"
                ))
                .bind(domain_id)
                .bind(name)
                .fetch_optional(&store.pool)
                .await?
                .ok_or_else(|| {
                    StoreError::NotFound(format!("identity user {name} in domain {domain_id}"))
                })?;
                user_from_row(&row)
            }

            pub(super) async fn list_identity_users(
                store: &$store,
            ) -> Result<Vec<IdentityUserRow>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    identity_user_columns!(),
                    " FROM identity_users ORDER BY domain_id, name"
                ))
                .fetch_all(&store.pool)
                .await?;
                rows.iter().map(user_from_row).collect()
            }

            pub(super) async fn update_identity_user(
                store: &$store,
                id: &str,
                update: IdentityUserUpdate,
                now: DateTime<Utc>,
            ) -> Result<IdentityUserRow> {
                // $3 says whether to touch the default project at all, since `Some(None)`
                // (clear it) and `None` (keep it) both bind $4 as NULL.
                let updated = sqlx::query(concat!(
                    "UPDATE identity_users SET \
                         password_hash = COALESCE($1, password_hash), \
                         enabled = COALESCE($2, enabled), \
                         default_project_id = CASE WHEN $3 THEN $4 ELSE default_project_id END, \
                         tokens_valid_after = COALESCE($5, tokens_valid_after), \
                         updated_at = $6, \
                         name = COALESCE($8, name) \
                     WHERE id = $7 RETURNING ",
                    identity_user_columns!()
                ))
                .bind(&update.password_hash)
                .bind(update.enabled)
                .bind(update.default_project_id.is_some())
                .bind(update.default_project_id.clone().flatten())
                .bind(update.tokens_valid_after.map(DbTime::new))
                .bind(DbTime::new(now))
                .bind(id)
                .bind(&update.name)
                .fetch_optional(store.writer())
                .await;
                match updated {
                    Ok(Some(row)) => user_from_row(&row),
                    Ok(None) => Err(StoreError::NotFound(format!("identity user {id}"))),
                    Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                        "identity user {} already exists in the domain of {id}",
                        update.name.as_deref().unwrap_or_default()
                    ))),
                    Err(e) if is_foreign_key_violation(&e) => Err(StoreError::NotFound(format!(
                        "identity project {}",
                        update.default_project_id.flatten().unwrap_or_default()
                    ))),
                    Err(e) => Err(e.into()),
                }
            }

            pub(super) async fn delete_identity_user(store: &$store, id: &str) -> Result<()> {
                // Role assignments go with it (ON DELETE CASCADE).
                let deleted = sqlx::query("DELETE FROM identity_users WHERE id = $1")
                    .bind(id)
                    .execute(store.writer())
                    .await?
                    .rows_affected();
                if deleted == 0 {
                    return Err(StoreError::NotFound(format!("identity user {id}")));
                }
                Ok(())
            }

            // ---- role assignments ----

            /// Names whichever of the user and the project is missing, after a grant failed
            /// its foreign key check.
            async fn missing_user_or_project(
                store: &$store,
                user_id: &str,
                project_id: &str,
            ) -> StoreError {
                let user = sqlx::query("SELECT id FROM identity_users WHERE id = $1")
                    .bind(user_id)
                    .fetch_optional(&store.pool)
                    .await;
                match user {
                    Ok(Some(_)) => StoreError::NotFound(format!("identity project {project_id}")),
                    Ok(None) => StoreError::NotFound(format!("identity user {user_id}")),
                    Err(e) => e.into(),
                }
            }

            pub(super) async fn grant_identity_role(
                store: &$store,
                user_id: &str,
                project_id: &str,
                role: &str,
            ) -> Result<()> {
                let granted = sqlx::query(
                    "INSERT INTO identity_role_assignments (user_id, project_id, role) \
                     VALUES ($1, $2, $3) \
                     ON CONFLICT (user_id, project_id, role) DO NOTHING",
                )
                .bind(user_id)
                .bind(project_id)
                .bind(role)
                .execute(store.writer())
                .await;
                match granted {
                    Ok(_) => Ok(()),
                    Err(e) if is_foreign_key_violation(&e) => {
                        Err(missing_user_or_project(store, user_id, project_id).await)
                    }
                    Err(e) => Err(e.into()),
                }
            }

            pub(super) async fn revoke_identity_role(
                store: &$store,
                user_id: &str,
                project_id: &str,
                role: &str,
            ) -> Result<()> {
                let deleted = sqlx::query(
                    "DELETE FROM identity_role_assignments \
                     WHERE user_id = $1 AND project_id = $2 AND role = $3",
                )
                .bind(user_id)
                .bind(project_id)
                .bind(role)
                .execute(store.writer())
                .await?
                .rows_affected();
                if deleted == 0 {
                    return Err(StoreError::NotFound(format!(
                        "role {role} of identity user {user_id} on project {project_id}"
                    )));
                }
                Ok(())
            }

            pub(super) async fn list_identity_roles(
                store: &$store,
                user_id: &str,
                project_id: &str,
            ) -> Result<Vec<String>> {
                let rows = sqlx::query(
                    "SELECT role FROM identity_role_assignments \
                     WHERE user_id = $1 AND project_id = $2 ORDER BY role",
                )
                .bind(user_id)
                .bind(project_id)
                .fetch_all(&store.pool)
                .await?;
                rows.iter().map(|r| get(r, "role")).collect()
            }

            pub(super) async fn list_identity_role_assignments(
                store: &$store,
            ) -> Result<Vec<RoleAssignmentRow>> {
                let rows = sqlx::query(
                    "SELECT user_id, project_id, role FROM identity_role_assignments \
                     ORDER BY user_id, project_id, role",
                )
                .fetch_all(&store.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(RoleAssignmentRow {
                            user_id: get(r, "user_id")?,
                            project_id: get(r, "project_id")?,
                            role: get(r, "role")?,
                        })
                    })
                    .collect()
            }

            // ---- token revocations ----

            pub(super) async fn revoke_identity_token(
                store: &$store,
                audit_id: &str,
                expires_at: DateTime<Utc>,
                now: DateTime<Utc>,
            ) -> Result<()> {
                // Revoking again keeps the first row: the token is just as revoked.
                sqlx::query(
                    "INSERT INTO identity_revoked_tokens (audit_id, expires_at, revoked_at) \
                     VALUES ($1, $2, $3) ON CONFLICT (audit_id) DO NOTHING",
                )
                .bind(audit_id)
                .bind(DbTime::new(expires_at))
                .bind(DbTime::new(now))
                .execute(store.writer())
                .await?;
                Ok(())
            }

            pub(super) async fn is_identity_token_revoked(
                store: &$store,
                audit_id: &str,
            ) -> Result<bool> {
                let row =
                    sqlx::query("SELECT audit_id FROM identity_revoked_tokens WHERE audit_id = $1")
                        .bind(audit_id)
                        .fetch_optional(&store.pool)
                        .await?;
                Ok(row.is_some())
            }

            pub(super) async fn delete_expired_identity_revocations(
                store: &$store,
                now: DateTime<Utc>,
            ) -> Result<u64> {
                let deleted =
                    sqlx::query("DELETE FROM identity_revoked_tokens WHERE expires_at < $1")
                        .bind(DbTime::new(now))
                        .execute(store.writer())
                        .await?
                        .rows_affected();
                Ok(deleted)
            }

            // ---- signing key ----

            pub(super) async fn ensure_identity_signing_key(
                store: &$store,
                candidate_hex: &str,
                now: DateTime<Utc>,
            ) -> Result<String> {
                // Two autocommit statements: concurrent inserts of key 1 serialise on the
                // primary key and all but one do nothing; the SELECT then sees the winner.
                sqlx::query(
                    "INSERT INTO identity_signing_keys (id, secret, created_at) \
                     VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING",
                )
                .bind(candidate_hex)
                .bind(DbTime::new(now))
                .execute(store.writer())
                .await?;
                let row = sqlx::query("SELECT secret FROM identity_signing_keys WHERE id = 1")
                    .fetch_optional(&store.pool)
                    .await?
                    .ok_or_else(|| {
                        StoreError::other("identity signing key 1 vanished after insert")
                    })?;
                get(&row, "secret")
            }
        }
    };
}
pub(crate) use identity_sql;
