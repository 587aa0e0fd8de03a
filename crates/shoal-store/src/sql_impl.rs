//! The single implementation of [`Store`](crate::Store), written once and expanded for each
//! engine by [`impl_store!`].
//!
//! Every query here is portable between SQLite and PostgreSQL: `$N` placeholders (sqlx-sqlite
//! binds `$N` as parameter N, and a repeated `$N` is the same value), `ON CONFLICT … DO
//! UPDATE/NOTHING`, `RETURNING`, and the [`DbTime`](crate::codec::DbTime) /
//! [`DbUuid`](crate::codec::DbUuid) newtypes for the columns whose storage differs. What
//! differs per engine is supplied by the engine module: the pool type, the embedded migrator,
//! the backend name and `begin_write` (SQLite opens write transactions with `BEGIN
//! IMMEDIATE` so that a read-then-write transaction never fails with `SQLITE_BUSY_SNAPSHOT`).
//!
//! Nothing here holds state; see `model.rs` for what the tables mean.

/// Upper bound on claim attempts that lose a race before `claim_next_operation` gives up and
/// returns `None` (the caller polls again). Each loss means another worker claimed a row, so
/// this only matters under heavy contention.
pub(crate) const CLAIM_RACE_RETRIES: usize = 8;

/// Columns of `operations`, in `RETURNING`/`SELECT` lists.
macro_rules! operation_columns {
    () => {
        "id, kind, target_id, host, payload, state, attempts, claimed_by, lease_until, \
         not_before, last_error, created_at, updated_at"
    };
}
pub(crate) use operation_columns;

/// Share type columns joined with their extra specs (`LEFT JOIN`, one row per spec).
macro_rules! share_type_select {
    () => {
        "SELECT t.id, t.name, t.description, t.is_public, t.created_at, t.updated_at, \
                s.key AS spec_key, s.value AS spec_value \
         FROM share_types t LEFT JOIN share_type_extra_specs s ON s.share_type_id = t.id "
    };
}
pub(crate) use share_type_select;

/// Service columns joined with the zone name.
macro_rules! service_select {
    () => {
        "SELECT s.id, s.host, s.\"binary\", s.topic, s.availability_zone_id, \
                z.name AS availability_zone_name, s.disabled, s.disabled_reason, \
                s.report_count, s.created_at, s.updated_at, s.replication_address \
         FROM services s JOIN availability_zones z ON z.id = s.availability_zone_id "
    };
}
pub(crate) use service_select;

/// Expands the `Store` implementation for `$store`, whose field `pool` is a `sqlx::Pool<$db>`.
///
/// `$store` must provide, as inherent items: `const BACKEND: &'static str`,
/// `fn migrator() -> &'static sqlx::migrate::Migrator`,
/// `async fn begin_write(&self) -> Result<sqlx::Transaction<'static, $db>>`,
/// `fn writer(&self) -> &sqlx::Pool<$db>` (the pool every statement that writes outside a
/// transaction uses; `pool` is for reads),
/// `async fn notify_enqueued(conn: &mut <$db as sqlx::Database>::Connection, ops:
/// &[NewOperation]) -> Result<()>` (called in the transaction that enqueues `ops`) and
/// `async fn listen_for_operations_impl(&self) -> Option<OperationNotices>`.
macro_rules! impl_store {
    ($store:ident, $db:ty) => {
        /// Row decoding and transaction helpers shared by the query modules below.
        mod sql_common {
            use std::collections::BTreeMap;

            use chrono::{DateTime, Utc};
            use sqlx::Row as _;
            use uuid::Uuid;

            use $crate::codec::{DbTime, DbUuid};
            use $crate::error::{Result, StoreError};
            use $crate::model::NewOperation;

            pub(super) type Db = $db;
            pub(super) type DbRow = <Db as sqlx::Database>::Row;
            pub(super) type DbConn = <Db as sqlx::Database>::Connection;

            /// Reads column `col`, mapping decode errors to `StoreError::Other`.
            pub(super) fn get<'r, T>(row: &'r DbRow, col: &str) -> Result<T>
            where
                T: sqlx::Decode<'r, Db> + sqlx::Type<Db>,
            {
                Ok(row.try_get(col)?)
            }

            pub(super) fn time(row: &DbRow, col: &str) -> Result<DateTime<Utc>> {
                Ok(get::<DbTime>(row, col)?.0)
            }

            pub(super) fn opt_time(row: &DbRow, col: &str) -> Result<Option<DateTime<Utc>>> {
                Ok(get::<Option<DbTime>>(row, col)?.map(|t| t.0))
            }

            pub(super) fn uuid(row: &DbRow, col: &str) -> Result<Uuid> {
                Ok(get::<DbUuid>(row, col)?.0)
            }

            pub(super) fn opt_uuid(row: &DbRow, col: &str) -> Result<Option<Uuid>> {
                Ok(get::<Option<DbUuid>>(row, col)?.map(|u| u.0))
            }

            /// A string map as the JSON object stored in a metadata column.
            pub(super) fn map_to_json(map: &BTreeMap<String, String>) -> serde_json::Value {
                serde_json::Value::Object(
                    map.iter()
                        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                        .collect(),
                )
            }

            /// Reads a JSON object column of string values.
            pub(super) fn json_map(row: &DbRow, col: &str) -> Result<BTreeMap<String, String>> {
                let value: serde_json::Value = get(row, col)?;
                serde_json::from_value(value).map_err(|e| {
                    StoreError::other(format!("column {col} is not a string map: {e}"))
                })
            }

            /// `$first, $first+1, ...` for `n` values (an `IN (...)` list).
            pub(super) fn placeholders(first: usize, n: usize) -> String {
                (first..first + n)
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }

            /// Enqueues `ops` as `pending` operations inside the caller's transaction.
            pub(super) async fn enqueue_operations(
                conn: &mut DbConn,
                ops: &[NewOperation],
            ) -> Result<()> {
                for op in ops {
                    sqlx::query(
                        "INSERT INTO operations (kind, target_id, host, payload, state, \
                             attempts, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5)",
                    )
                    .bind(&op.kind)
                    .bind(&op.target_id)
                    .bind(&op.host)
                    .bind(&op.payload)
                    .bind(DbTime::new(op.now))
                    .execute(&mut *conn)
                    .await?;
                }
                // Wakes the workers of other nodes once the transaction commits (PostgreSQL).
                super::$store::notify_enqueued(conn, ops).await
            }

            /// Locks row `id` of `table` for the rest of the transaction (a no-op update, the
            /// portable `SELECT ... FOR UPDATE`: PostgreSQL makes concurrent writers of the
            /// row wait, SQLite already holds the database write lock). Returns whether the
            /// row exists. `table` must be a literal table name with a UUID `id` and an
            /// `updated_at` column; the key is left alone so no foreign key check runs.
            pub(super) async fn lock_row(
                conn: &mut DbConn,
                table: &'static str,
                id: Uuid,
            ) -> Result<bool> {
                let sql = format!("UPDATE {table} SET updated_at = updated_at WHERE id = $1");
                let done = sqlx::query(&sql).bind(DbUuid(id)).execute(&mut *conn).await?;
                Ok(done.rows_affected() > 0)
            }
        }

        mod store_impl {
            use std::collections::BTreeMap;
            use std::time::Duration;

            use async_trait::async_trait;
            use chrono::{DateTime, Utc};
            use uuid::Uuid;

            use super::$store;
            use super::sql_common::{get, opt_time, time, Db, DbRow};
            use $crate::codec::{DbTime, DbUuid};
            use $crate::error::{
                is_foreign_key_violation, is_unique_violation, Result, StoreError,
            };
            use $crate::model::{
                AvailabilityZoneRow, ClaimRequest, NewOperation, NewShareType, OperationCount, OperationNotices, OperationRow,
                OperationState, PoolRow, ServiceFilter, ServiceHeartbeat, ServiceRow,
                ShareTypeFilter, ShareTypeRow, ShareTypeUpdate,
            };
            use $crate::model_identity::{
                IdentityProjectRow, IdentityUserRow, IdentityUserUpdate, NewIdentityProject,
                NewIdentityUser, RoleAssignmentRow,
            };
            use $crate::model_shares::{
                AccessRuleRow, ExportLocationRow, MessageRow, NewAccessRule, NewExportLocation,
                InstanceRelease, NewShare, NewShareInstance, QuotaRequest, ResizeCommit, QuotaUsage, ReplicaSyncStatus, ReplicationRecord,
                ShareInstanceCas, ShareInstanceRow, ShareInstanceUpdate,
                ShareListFilter, ShareRow, ShareUpdate,
            };
            use $crate::model_snapshots::{
                NewSnapshot, NewSnapshotAccessRule, NewSnapshotExportLocation,
                NewSnapshotInstance, SnapshotAccessRuleRow, SnapshotExportLocationRow,
                SnapshotInstanceCas, SnapshotInstanceFilter, SnapshotInstanceRow,
                SnapshotListFilter, SnapshotRow, SnapshotUpdate,
            };
            use $crate::sql_impl::{
                operation_columns, service_select, share_type_select, CLAIM_RACE_RETRIES,
            };
            use $crate::store::Store;

            type Query<'q> = sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>>;

            /// Folds `share_type_select!` rows (ordered so that one type's rows are
            /// adjacent) into types with their specs.
            fn fold_share_types(rows: &[DbRow]) -> Result<Vec<ShareTypeRow>> {
                let mut out: Vec<ShareTypeRow> = Vec::new();
                for row in rows {
                    let id = get::<DbUuid>(row, "id")?.0;
                    if out.last().map(|t| t.id) != Some(id) {
                        out.push(ShareTypeRow {
                            id,
                            name: get(row, "name")?,
                            description: get(row, "description")?,
                            is_public: get(row, "is_public")?,
                            extra_specs: BTreeMap::new(),
                            created_at: time(row, "created_at")?,
                            updated_at: opt_time(row, "updated_at")?,
                        });
                    }
                    if let Some(key) = get::<Option<String>>(row, "spec_key")? {
                        let value: String = get(row, "spec_value")?;
                        let current = out.last_mut().expect("pushed above");
                        current.extra_specs.insert(key, value);
                    }
                }
                Ok(out)
            }

            fn zone_from_row(row: &DbRow) -> Result<AvailabilityZoneRow> {
                Ok(AvailabilityZoneRow {
                    id: get::<DbUuid>(row, "id")?.0,
                    name: get(row, "name")?,
                    created_at: time(row, "created_at")?,
                    updated_at: opt_time(row, "updated_at")?,
                })
            }

            /// `zone_name`: the zone name when the row does not carry it (RETURNING).
            fn service_from_row(row: &DbRow, zone_name: Option<&str>) -> Result<ServiceRow> {
                let availability_zone = match zone_name {
                    Some(name) => name.to_owned(),
                    None => get(row, "availability_zone_name")?,
                };
                Ok(ServiceRow {
                    id: get(row, "id")?,
                    host: get(row, "host")?,
                    binary: get(row, "binary")?,
                    topic: get(row, "topic")?,
                    availability_zone_id: get::<DbUuid>(row, "availability_zone_id")?.0,
                    availability_zone,
                    disabled: get(row, "disabled")?,
                    disabled_reason: get(row, "disabled_reason")?,
                    report_count: get(row, "report_count")?,
                    created_at: time(row, "created_at")?,
                    updated_at: time(row, "updated_at")?,
                    replication_address: get(row, "replication_address")?,
                })
            }

            fn pool_from_row(row: &DbRow) -> Result<PoolRow> {
                Ok(PoolRow {
                    name: get(row, "name")?,
                    host: get(row, "host")?,
                    backend: get(row, "backend")?,
                    pool: get(row, "pool")?,
                    availability_zone: get(row, "availability_zone")?,
                    capabilities: get(row, "capabilities")?,
                    updated_at: time(row, "updated_at")?,
                })
            }

            fn operation_from_row(row: &DbRow) -> Result<OperationRow> {
                let state: String = get(row, "state")?;
                Ok(OperationRow {
                    id: get(row, "id")?,
                    kind: get(row, "kind")?,
                    target_id: get(row, "target_id")?,
                    host: get(row, "host")?,
                    payload: get(row, "payload")?,
                    state: state.parse().map_err(StoreError::other)?,
                    attempts: get(row, "attempts")?,
                    claimed_by: get(row, "claimed_by")?,
                    lease_until: opt_time(row, "lease_until")?,
                    not_before: opt_time(row, "not_before")?,
                    last_error: get(row, "last_error")?,
                    created_at: time(row, "created_at")?,
                    updated_at: time(row, "updated_at")?,
                })
            }

            fn lease_end(now: DateTime<Utc>, lease: Duration) -> Result<DbTime> {
                let lease = chrono::TimeDelta::from_std(lease)
                    .map_err(|e| StoreError::other(format!("lease {lease:?} too long: {e}")))?;
                Ok(DbTime::new(now + lease))
            }

            /// WHERE condition selecting claimable operations for `req`, with its
            /// placeholders numbered from `$first`. Bind with [`bind_claim_filter`].
            fn claim_filter(req: &ClaimRequest<'_>, first: usize) -> String {
                let now = first;
                let mut next = first + 1;
                let mut cond = format!(
                    "((state = 'pending' AND (not_before IS NULL OR not_before <= ${now})) \
                      OR (state = 'running' AND lease_until < ${now}))"
                );
                match req.host {
                    Some(_) => {
                        cond.push_str(&format!(" AND host = ${next}"));
                        next += 1;
                    }
                    None => cond.push_str(" AND host IS NULL"),
                }
                if let Some(kinds) = req.kinds {
                    let list: Vec<String> =
                        (0..kinds.len()).map(|i| format!("${}", next + i)).collect();
                    cond.push_str(&format!(" AND kind IN ({})", list.join(", ")));
                }
                cond
            }

            /// Binds the parameters of [`claim_filter`] in order.
            fn bind_claim_filter<'q>(mut query: Query<'q>, req: &ClaimRequest<'q>) -> Query<'q> {
                query = query.bind(DbTime::new(req.now));
                if let Some(host) = req.host {
                    query = query.bind(host);
                }
                for kind in req.kinds.unwrap_or_default() {
                    query = query.bind(*kind);
                }
                query
            }

            impl $store {
                /// Tells a lost compare-and-set on operation `id` (→ `Conflict`) from a
                /// missing operation (→ `NotFound`).
                async fn operation_cas_lost(&self, id: i64, worker: &str) -> StoreError {
                    let exists = sqlx::query("SELECT id FROM operations WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await;
                    match exists {
                        Ok(Some(_)) => StoreError::Conflict(format!(
                            "operation {id} is not running under worker {worker}"
                        )),
                        Ok(None) => StoreError::NotFound(format!("operation {id}")),
                        Err(e) => e.into(),
                    }
                }

                async fn share_type_exists(&self, id: Uuid) -> Result<bool> {
                    let row = sqlx::query("SELECT id FROM share_types WHERE id = $1")
                        .bind(DbUuid(id))
                        .fetch_optional(&self.pool)
                        .await?;
                    Ok(row.is_some())
                }

                async fn require_share_type(&self, id: Uuid) -> Result<()> {
                    if self.share_type_exists(id).await? {
                        Ok(())
                    } else {
                        Err(StoreError::NotFound(format!("share type {id}")))
                    }
                }

                async fn get_service(&self, host: &str, binary: &str) -> Result<ServiceRow> {
                    let row = sqlx::query(concat!(
                        service_select!(),
                        "WHERE s.host = $1 AND s.\"binary\" = $2"
                    ))
                    .bind(host)
                    .bind(binary)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("service {binary} on {host}")))?;
                    service_from_row(&row, None)
                }
            }

            #[async_trait]
            impl Store for $store {
                fn backend_name(&self) -> &'static str {
                    $store::BACKEND
                }

                async fn migrate(&self) -> Result<()> {
                    $store::migrator().run(self.writer()).await?;
                    Ok(())
                }

                async fn ping(&self) -> Result<()> {
                    sqlx::query("SELECT 1").execute(&self.pool).await?;
                    Ok(())
                }

                async fn close(&self) {
                    self.pool.close().await;
                    self.writer().close().await;
                }

                // ---- share types ----

                async fn insert_share_type(&self, new: NewShareType) -> Result<ShareTypeRow> {
                    let created_at = DbTime::new(new.created_at);
                    let mut tx = self.begin_write().await?;
                    let inserted = sqlx::query(
                        "INSERT INTO share_types \
                             (id, name, description, is_public, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, NULL)",
                    )
                    .bind(DbUuid(new.id))
                    .bind(&new.name)
                    .bind(&new.description)
                    .bind(new.is_public)
                    .bind(created_at)
                    .execute(&mut *tx)
                    .await;
                    match inserted {
                        Ok(_) => {}
                        Err(e) if is_unique_violation(&e) => {
                            return Err(StoreError::Conflict(format!(
                                "share type name {} or id {} already exists",
                                new.name, new.id
                            )));
                        }
                        Err(e) => return Err(e.into()),
                    }
                    for (key, value) in &new.extra_specs {
                        sqlx::query(
                            "INSERT INTO share_type_extra_specs (share_type_id, key, value) \
                             VALUES ($1, $2, $3)",
                        )
                        .bind(DbUuid(new.id))
                        .bind(key)
                        .bind(value)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(ShareTypeRow {
                        id: new.id,
                        name: new.name,
                        description: new.description,
                        is_public: new.is_public,
                        extra_specs: new.extra_specs,
                        created_at: created_at.0,
                        updated_at: None,
                    })
                }

                async fn get_share_type(&self, id: Uuid) -> Result<ShareTypeRow> {
                    let rows =
                        sqlx::query(concat!(share_type_select!(), "WHERE t.id = $1 ORDER BY s.key"))
                            .bind(DbUuid(id))
                            .fetch_all(&self.pool)
                            .await?;
                    fold_share_types(&rows)?
                        .pop()
                        .ok_or_else(|| StoreError::NotFound(format!("share type {id}")))
                }

                async fn get_share_type_by_name(&self, name: &str) -> Result<ShareTypeRow> {
                    let rows = sqlx::query(concat!(
                        share_type_select!(),
                        "WHERE t.name = $1 ORDER BY s.key"
                    ))
                    .bind(name)
                    .fetch_all(&self.pool)
                    .await?;
                    fold_share_types(&rows)?
                        .pop()
                        .ok_or_else(|| StoreError::NotFound(format!("share type {name}")))
                }

                async fn list_share_types(
                    &self,
                    filter: ShareTypeFilter,
                ) -> Result<Vec<ShareTypeRow>> {
                    // Visibility: public, or the project is on the access list.
                    let rows = sqlx::query(concat!(
                        share_type_select!(),
                        "WHERE ($1 IS NULL OR t.is_public = $1) \
                           AND ($2 IS NULL OR t.is_public OR EXISTS ( \
                                SELECT 1 FROM share_type_projects p \
                                WHERE p.share_type_id = t.id AND p.project_id = $2)) \
                         ORDER BY t.name, s.key"
                    ))
                    .bind(filter.is_public)
                    .bind(filter.visible_to_project)
                    .fetch_all(&self.pool)
                    .await?;
                    fold_share_types(&rows)
                }

                async fn update_share_type(
                    &self,
                    id: Uuid,
                    update: ShareTypeUpdate,
                    now: DateTime<Utc>,
                ) -> Result<ShareTypeRow> {
                    // $2 says whether to touch the description at all, since `Some(None)`
                    // (clear it) and `None` (keep it) both bind $3 as NULL.
                    let updated = sqlx::query(
                        "UPDATE share_types SET \
                             name = COALESCE($1, name), \
                             description = CASE WHEN $2 THEN $3 ELSE description END, \
                             is_public = COALESCE($4, is_public), \
                             updated_at = $5 \
                         WHERE id = $6",
                    )
                    .bind(&update.name)
                    .bind(update.description.is_some())
                    .bind(update.description.clone().flatten())
                    .bind(update.is_public)
                    .bind(DbTime::new(now))
                    .bind(DbUuid(id))
                    .execute(self.writer())
                    .await;
                    match updated {
                        Ok(done) if done.rows_affected() == 0 => {
                            Err(StoreError::NotFound(format!("share type {id}")))
                        }
                        Ok(_) => self.get_share_type(id).await,
                        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                            "share type name {} already exists",
                            update.name.unwrap_or_default()
                        ))),
                        Err(e) => Err(e.into()),
                    }
                }

                async fn delete_share_type(&self, id: Uuid) -> Result<()> {
                    // Specs and access rows go with it (ON DELETE CASCADE). Shares and
                    // share instances reference it without cascade.
                    let deleted = match sqlx::query("DELETE FROM share_types WHERE id = $1")
                        .bind(DbUuid(id))
                        .execute(self.writer())
                        .await
                    {
                        Ok(done) => done.rows_affected(),
                        Err(e) if is_foreign_key_violation(&e) => {
                            return Err(StoreError::Conflict(format!(
                                "share type {id} is in use by shares"
                            )));
                        }
                        Err(e) => return Err(e.into()),
                    };
                    if deleted == 0 {
                        return Err(StoreError::NotFound(format!("share type {id}")));
                    }
                    Ok(())
                }

                async fn set_share_type_extra_specs(
                    &self,
                    id: Uuid,
                    specs: &BTreeMap<String, String>,
                ) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    let exists = sqlx::query("SELECT id FROM share_types WHERE id = $1")
                        .bind(DbUuid(id))
                        .fetch_optional(&mut *tx)
                        .await?;
                    if exists.is_none() {
                        return Err(StoreError::NotFound(format!("share type {id}")));
                    }
                    for (key, value) in specs {
                        let upserted = sqlx::query(
                            "INSERT INTO share_type_extra_specs (share_type_id, key, value) \
                             VALUES ($1, $2, $3) \
                             ON CONFLICT (share_type_id, key) DO UPDATE SET value = excluded.value",
                        )
                        .bind(DbUuid(id))
                        .bind(key)
                        .bind(value)
                        .execute(&mut *tx)
                        .await;
                        match upserted {
                            Ok(_) => {}
                            // The type was deleted concurrently (PostgreSQL READ COMMITTED).
                            Err(e) if is_foreign_key_violation(&e) => {
                                return Err(StoreError::NotFound(format!("share type {id}")));
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn delete_share_type_extra_spec(&self, id: Uuid, key: &str) -> Result<()> {
                    let deleted = sqlx::query(
                        "DELETE FROM share_type_extra_specs WHERE share_type_id = $1 AND key = $2",
                    )
                    .bind(DbUuid(id))
                    .bind(key)
                    .execute(self.writer())
                    .await?
                    .rows_affected();
                    if deleted == 0 {
                        self.require_share_type(id).await?;
                        return Err(StoreError::NotFound(format!(
                            "extra spec {key} of share type {id}"
                        )));
                    }
                    Ok(())
                }

                async fn add_share_type_access(&self, id: Uuid, project_id: &str) -> Result<()> {
                    let inserted = sqlx::query(
                        "INSERT INTO share_type_projects (share_type_id, project_id) VALUES ($1, $2)",
                    )
                    .bind(DbUuid(id))
                    .bind(project_id)
                    .execute(self.writer())
                    .await;
                    match inserted {
                        Ok(_) => Ok(()),
                        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                            "project {project_id} already has access to share type {id}"
                        ))),
                        Err(e) if is_foreign_key_violation(&e) => {
                            Err(StoreError::NotFound(format!("share type {id}")))
                        }
                        Err(e) => Err(e.into()),
                    }
                }

                async fn remove_share_type_access(
                    &self,
                    id: Uuid,
                    project_id: &str,
                ) -> Result<()> {
                    let deleted = sqlx::query(
                        "DELETE FROM share_type_projects \
                         WHERE share_type_id = $1 AND project_id = $2",
                    )
                    .bind(DbUuid(id))
                    .bind(project_id)
                    .execute(self.writer())
                    .await?
                    .rows_affected();
                    if deleted == 0 {
                        self.require_share_type(id).await?;
                        return Err(StoreError::NotFound(format!(
                            "access of project {project_id} to share type {id}"
                        )));
                    }
                    Ok(())
                }

                async fn list_share_type_access(&self, id: Uuid) -> Result<Vec<String>> {
                    self.require_share_type(id).await?;
                    let rows = sqlx::query(
                        "SELECT project_id FROM share_type_projects \
                         WHERE share_type_id = $1 ORDER BY project_id",
                    )
                    .bind(DbUuid(id))
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter().map(|r| get(r, "project_id")).collect()
                }

                // ---- availability zones ----

                async fn ensure_availability_zone(
                    &self,
                    name: &str,
                    now: DateTime<Utc>,
                ) -> Result<AvailabilityZoneRow> {
                    // Two autocommit statements: DO NOTHING takes no row lock on the existing
                    // zone, and the SELECT then sees whichever insert won.
                    sqlx::query(
                        "INSERT INTO availability_zones (id, name, created_at, updated_at) \
                         VALUES ($1, $2, $3, NULL) ON CONFLICT (name) DO NOTHING",
                    )
                    .bind(DbUuid(Uuid::new_v4()))
                    .bind(name)
                    .bind(DbTime::new(now))
                    .execute(self.writer())
                    .await?;
                    let row = sqlx::query(
                        "SELECT id, name, created_at, updated_at FROM availability_zones \
                         WHERE name = $1",
                    )
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| {
                        StoreError::other(format!("availability zone {name} vanished after upsert"))
                    })?;
                    zone_from_row(&row)
                }

                async fn get_availability_zone(
                    &self,
                    name_or_id: &str,
                ) -> Result<AvailabilityZoneRow> {
                    let as_id = Uuid::parse_str(name_or_id).ok().map(DbUuid);
                    let row = sqlx::query(
                        "SELECT id, name, created_at, updated_at FROM availability_zones \
                         WHERE id = $1 OR name = $2",
                    )
                    .bind(as_id)
                    .bind(name_or_id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| {
                        StoreError::NotFound(format!("availability zone {name_or_id}"))
                    })?;
                    zone_from_row(&row)
                }

                async fn list_availability_zones(&self) -> Result<Vec<AvailabilityZoneRow>> {
                    let rows = sqlx::query(
                        "SELECT id, name, created_at, updated_at FROM availability_zones \
                         ORDER BY name",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter().map(zone_from_row).collect()
                }

                async fn list_availability_zones_in_service(
                    &self,
                ) -> Result<Vec<AvailabilityZoneRow>> {
                    let rows = sqlx::query(
                        "SELECT z.id, z.name, z.created_at, z.updated_at \
                         FROM availability_zones z \
                         WHERE EXISTS (SELECT 1 FROM services s \
                                       WHERE s.availability_zone_id = z.id AND s.disabled = $1) \
                         ORDER BY z.name",
                    )
                    .bind(false)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter().map(zone_from_row).collect()
                }

                // ---- services ----

                async fn record_service_heartbeat(
                    &self,
                    beat: ServiceHeartbeat,
                ) -> Result<ServiceRow> {
                    let zone = self
                        .ensure_availability_zone(&beat.availability_zone, beat.now)
                        .await?;
                    let row = sqlx::query(
                        "INSERT INTO services (host, \"binary\", topic, availability_zone_id, \
                             disabled, disabled_reason, report_count, created_at, updated_at, \
                             replication_address) \
                         VALUES ($1, $2, $3, $4, $5, NULL, 1, $6, $6, $7) \
                         ON CONFLICT (host, \"binary\") DO UPDATE SET \
                             topic = excluded.topic, \
                             availability_zone_id = excluded.availability_zone_id, \
                             report_count = services.report_count + 1, \
                             updated_at = excluded.updated_at, \
                             replication_address = excluded.replication_address \
                         RETURNING id, host, \"binary\", topic, availability_zone_id, disabled, \
                             disabled_reason, report_count, created_at, updated_at, \
                             replication_address",
                    )
                    .bind(&beat.host)
                    .bind(&beat.binary)
                    .bind(&beat.topic)
                    .bind(DbUuid(zone.id))
                    .bind(false)
                    .bind(DbTime::new(beat.now))
                    .bind(&beat.replication_address)
                    .fetch_one(self.writer())
                    .await?;
                    service_from_row(&row, Some(&zone.name))
                }

                async fn list_services(&self, filter: ServiceFilter) -> Result<Vec<ServiceRow>> {
                    let rows = sqlx::query(concat!(
                        service_select!(),
                        "WHERE ($1 IS NULL OR s.host = $1) AND ($2 IS NULL OR s.\"binary\" = $2) \
                         ORDER BY s.id"
                    ))
                    .bind(filter.host)
                    .bind(filter.binary)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter().map(|r| service_from_row(r, None)).collect()
                }

                async fn set_service_disabled(
                    &self,
                    host: &str,
                    binary: &str,
                    disabled: bool,
                    reason: Option<&str>,
                ) -> Result<ServiceRow> {
                    let updated = sqlx::query(
                        "UPDATE services SET disabled = $1, disabled_reason = $2 \
                         WHERE host = $3 AND \"binary\" = $4",
                    )
                    .bind(disabled)
                    .bind(reason)
                    .bind(host)
                    .bind(binary)
                    .execute(self.writer())
                    .await?
                    .rows_affected();
                    if updated == 0 {
                        return Err(StoreError::NotFound(format!("service {binary} on {host}")));
                    }
                    self.get_service(host, binary).await
                }

                // ---- pools ----

                async fn upsert_pool(&self, pool: &PoolRow) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO pools (name, host, backend, pool, availability_zone, \
                             capabilities, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         ON CONFLICT (name) DO UPDATE SET \
                             host = excluded.host, backend = excluded.backend, \
                             pool = excluded.pool, \
                             availability_zone = excluded.availability_zone, \
                             capabilities = excluded.capabilities, \
                             updated_at = excluded.updated_at",
                    )
                    .bind(&pool.name)
                    .bind(&pool.host)
                    .bind(&pool.backend)
                    .bind(&pool.pool)
                    .bind(&pool.availability_zone)
                    .bind(&pool.capabilities)
                    .bind(DbTime::new(pool.updated_at))
                    .execute(self.writer())
                    .await?;
                    Ok(())
                }

                async fn list_pools(&self) -> Result<Vec<PoolRow>> {
                    let rows = sqlx::query(
                        "SELECT name, host, backend, pool, availability_zone, capabilities, \
                             updated_at \
                         FROM pools ORDER BY name",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter().map(pool_from_row).collect()
                }

                async fn delete_pool(&self, name: &str) -> Result<()> {
                    let deleted = sqlx::query("DELETE FROM pools WHERE name = $1")
                        .bind(name)
                        .execute(self.writer())
                        .await?
                        .rows_affected();
                    if deleted == 0 {
                        return Err(StoreError::NotFound(format!("pool {name}")));
                    }
                    Ok(())
                }

                // ---- operations ----

                async fn insert_operation(&self, new: NewOperation) -> Result<OperationRow> {
                    let mut tx = self.begin_write().await?;
                    let row = sqlx::query(concat!(
                        "INSERT INTO operations (kind, target_id, host, payload, state, \
                             attempts, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5) \
                         RETURNING ",
                        operation_columns!()
                    ))
                    .bind(&new.kind)
                    .bind(&new.target_id)
                    .bind(&new.host)
                    .bind(&new.payload)
                    .bind(DbTime::new(new.now))
                    .fetch_one(&mut *tx)
                    .await?;
                    let inserted = operation_from_row(&row)?;
                    $store::notify_enqueued(&mut tx, std::slice::from_ref(&new)).await?;
                    tx.commit().await?;
                    Ok(inserted)
                }

                async fn listen_for_operations(&self) -> Option<OperationNotices> {
                    self.listen_for_operations_impl().await
                }

                async fn claim_next_operation(
                    &self,
                    req: ClaimRequest<'_>,
                ) -> Result<Option<OperationRow>> {
                    if req.kinds.is_some_and(|k| k.is_empty()) {
                        return Ok(None);
                    }
                    let lease_until = lease_end(req.now, req.lease)?;
                    // The claim condition is repeated in the outer WHERE on purpose: under
                    // PostgreSQL READ COMMITTED the sub-select runs once, and only the outer
                    // predicate is re-checked against a row another worker just updated.
                    // Without it two workers could both claim the row. SQLite serialises
                    // writers, so there it never loses.
                    let cond = claim_filter(&req, 3);
                    let claim_sql = format!(
                        "UPDATE operations SET state = 'running', claimed_by = $1, \
                             lease_until = $2, attempts = attempts + 1, updated_at = $3 \
                         WHERE id = (SELECT id FROM operations WHERE {cond} ORDER BY id LIMIT 1) \
                           AND {cond} \
                         RETURNING {}",
                        operation_columns!()
                    );
                    let probe_sql = format!(
                        "SELECT id FROM operations WHERE {} LIMIT 1",
                        claim_filter(&req, 1)
                    );
                    for _ in 0..CLAIM_RACE_RETRIES {
                        let query = sqlx::query(&claim_sql).bind(req.worker).bind(lease_until);
                        let claimed = bind_claim_filter(query, &req)
                            .fetch_optional(self.writer())
                            .await?;
                        if let Some(row) = claimed {
                            return operation_from_row(&row).map(Some);
                        }
                        // Zero rows: nothing claimable, or another worker won the race for
                        // the row we picked. Only retry in the second case.
                        let left = bind_claim_filter(sqlx::query(&probe_sql), &req)
                            .fetch_optional(&self.pool)
                            .await?;
                        if left.is_none() {
                            return Ok(None);
                        }
                    }
                    tracing::debug!(
                        worker = req.worker,
                        "claim lost {CLAIM_RACE_RETRIES} races in a row, giving up until next poll"
                    );
                    Ok(None)
                }

                async fn renew_operation_lease(
                    &self,
                    id: i64,
                    worker: &str,
                    now: DateTime<Utc>,
                    lease: Duration,
                ) -> Result<OperationRow> {
                    let row = sqlx::query(concat!(
                        "UPDATE operations SET lease_until = $1, updated_at = $2 \
                         WHERE id = $3 AND claimed_by = $4 AND state = 'running' \
                         RETURNING ",
                        operation_columns!()
                    ))
                    .bind(lease_end(now, lease)?)
                    .bind(DbTime::new(now))
                    .bind(id)
                    .bind(worker)
                    .fetch_optional(self.writer())
                    .await?;
                    match row {
                        Some(row) => operation_from_row(&row),
                        None => Err(self.operation_cas_lost(id, worker).await),
                    }
                }

                async fn complete_operation(
                    &self,
                    id: i64,
                    worker: &str,
                    now: DateTime<Utc>,
                ) -> Result<OperationRow> {
                    let row = sqlx::query(concat!(
                        "UPDATE operations SET state = 'done', lease_until = NULL, updated_at = $1 \
                         WHERE id = $2 AND claimed_by = $3 AND state = 'running' \
                         RETURNING ",
                        operation_columns!()
                    ))
                    .bind(DbTime::new(now))
                    .bind(id)
                    .bind(worker)
                    .fetch_optional(self.writer())
                    .await?;
                    match row {
                        Some(row) => operation_from_row(&row),
                        None => Err(self.operation_cas_lost(id, worker).await),
                    }
                }

                async fn fail_operation(
                    &self,
                    id: i64,
                    worker: &str,
                    error: &str,
                    retry_at: Option<DateTime<Utc>>,
                    now: DateTime<Utc>,
                ) -> Result<OperationRow> {
                    // A retry releases the claim so any worker may pick it up later; a final
                    // failure keeps `claimed_by` to show who gave up.
                    let sql = match retry_at {
                        Some(_) => concat!(
                            "UPDATE operations SET state = 'pending', claimed_by = NULL, \
                                 lease_until = NULL, not_before = $1, last_error = $2, \
                                 updated_at = $3 \
                             WHERE id = $4 AND claimed_by = $5 AND state = 'running' \
                             RETURNING ",
                            operation_columns!()
                        ),
                        None => concat!(
                            "UPDATE operations SET state = 'failed', lease_until = NULL, \
                                 not_before = $1, last_error = $2, updated_at = $3 \
                             WHERE id = $4 AND claimed_by = $5 AND state = 'running' \
                             RETURNING ",
                            operation_columns!()
                        ),
                    };
                    let row = sqlx::query(sql)
                        .bind(retry_at.map(DbTime::new))
                        .bind(error)
                        .bind(DbTime::new(now))
                        .bind(id)
                        .bind(worker)
                        .fetch_optional(self.writer())
                        .await?;
                    match row {
                        Some(row) => operation_from_row(&row),
                        None => Err(self.operation_cas_lost(id, worker).await),
                    }
                }

                async fn get_operation(&self, id: i64) -> Result<OperationRow> {
                    let row = sqlx::query(concat!(
                        "SELECT ",
                        operation_columns!(),
                        " FROM operations WHERE id = $1"
                    ))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("operation {id}")))?;
                    operation_from_row(&row)
                }

                async fn list_operations(
                    &self,
                    state: Option<OperationState>,
                ) -> Result<Vec<OperationRow>> {
                    let rows = sqlx::query(concat!(
                        "SELECT ",
                        operation_columns!(),
                        " FROM operations WHERE ($1 IS NULL OR state = $1) ORDER BY id"
                    ))
                    .bind(state.map(OperationState::as_str))
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter().map(operation_from_row).collect()
                }

                async fn count_unfinished_operations(&self) -> Result<i64> {
                    let row = sqlx::query(
                        "SELECT COUNT(*) AS n FROM operations WHERE state IN ('pending', 'running')",
                    )
                    .fetch_one(&self.pool)
                    .await?;
                    get(&row, "n")
                }

                async fn delete_finished_operations(
                    &self,
                    finished_before: DateTime<Utc>,
                ) -> Result<u64> {
                    const BATCH: i64 = 1000;
                    let mut deleted = 0;
                    loop {
                        let done = sqlx::query(
                            "DELETE FROM operations WHERE id IN (\
                                 SELECT id FROM operations \
                                 WHERE state IN ('done', 'failed') AND updated_at < $1 \
                                 ORDER BY id LIMIT $2)",
                        )
                        .bind(DbTime::new(finished_before))
                        .bind(BATCH)
                        .execute(self.writer())
                        .await?
                        .rows_affected();
                        deleted += done;
                        if done < BATCH as u64 {
                            return Ok(deleted);
                        }
                    }
                }

                async fn count_operations_by_kind(&self) -> Result<Vec<OperationCount>> {
                    let rows = sqlx::query(
                        "SELECT kind, state, COUNT(*) AS n FROM operations \
                         GROUP BY kind, state ORDER BY kind, state",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter()
                        .map(|row| {
                            let state: String = get(row, "state")?;
                            Ok(OperationCount {
                                kind: get(row, "kind")?,
                                state: state.parse().map_err(StoreError::other)?,
                                count: get(row, "n")?,
                            })
                        })
                        .collect()
                }

                // ---- shares (queries in sql_shares.rs) ----

                async fn create_share(
                    &self,
                    new: NewShare,
                ) -> Result<(ShareRow, ShareInstanceRow)> {
                    super::share_sql::create_share(self, new).await
                }

                async fn get_share(&self, id: Uuid) -> Result<ShareRow> {
                    super::share_sql::get_share(self, id).await
                }

                async fn list_shares(&self, filter: ShareListFilter) -> Result<Vec<ShareRow>> {
                    super::share_sql::list_shares(self, filter).await
                }

                async fn update_share(
                    &self,
                    id: Uuid,
                    update: ShareUpdate,
                    now: DateTime<Utc>,
                ) -> Result<ShareRow> {
                    super::share_sql::update_share(self, id, update, now).await
                }

                async fn set_share_metadata(
                    &self,
                    id: Uuid,
                    metadata: &BTreeMap<String, String>,
                    replace_all: bool,
                    now: DateTime<Utc>,
                ) -> Result<BTreeMap<String, String>> {
                    super::share_sql::set_share_metadata(self, id, metadata, replace_all, now)
                        .await
                }

                async fn delete_share_metadata_key(&self, id: Uuid, key: &str) -> Result<()> {
                    super::share_sql::delete_share_metadata_key(self, id, key).await
                }

                async fn count_shares_with_share_type(&self, share_type_id: Uuid) -> Result<i64> {
                    super::share_sql::count_shares_with_share_type(self, share_type_id).await
                }

                async fn create_share_instance(
                    &self,
                    share_id: Uuid,
                    instance: NewShareInstance,
                    quota: QuotaRequest,
                    operations: Vec<NewOperation>,
                    now: DateTime<Utc>,
                ) -> Result<ShareInstanceRow> {
                    super::share_sql::create_share_instance(
                        self, share_id, instance, quota, operations, now,
                    )
                    .await
                }

                async fn get_share_instance(&self, id: Uuid) -> Result<ShareInstanceRow> {
                    super::share_sql::get_share_instance(self, id).await
                }

                async fn list_share_instances(
                    &self,
                    share_id: Uuid,
                ) -> Result<Vec<ShareInstanceRow>> {
                    super::share_sql::list_share_instances(self, share_id).await
                }

                async fn list_share_replicas(
                    &self,
                    project_id: Option<&str>,
                    share_id: Option<Uuid>,
                ) -> Result<Vec<ShareInstanceRow>> {
                    super::share_sql::list_share_replicas(self, project_id, share_id).await
                }

                async fn list_all_share_instances(
                    &self,
                    filter: $crate::model_shares::ShareInstanceFilter,
                ) -> Result<Vec<ShareInstanceRow>> {
                    super::share_sql::list_all_share_instances(self, filter).await
                }

                async fn list_share_instances_on_host(
                    &self,
                    service_host: &str,
                ) -> Result<Vec<ShareInstanceRow>> {
                    super::share_sql::list_share_instances_on_host(self, service_host).await
                }

                async fn update_share_instance_if(
                    &self,
                    id: Uuid,
                    expected_statuses: &[&str],
                    update: ShareInstanceUpdate,
                    operations: Vec<NewOperation>,
                    now: DateTime<Utc>,
                ) -> Result<ShareInstanceRow> {
                    super::share_sql::update_share_instance_if(
                        self,
                        id,
                        expected_statuses,
                        update,
                        operations,
                        now,
                    )
                    .await
                }

                async fn set_share_instance_host_if_unplaced(
                    &self,
                    id: Uuid,
                    host: &str,
                    availability_zone: &str,
                    operations: Vec<NewOperation>,
                    now: DateTime<Utc>,
                ) -> Result<ShareInstanceRow> {
                    super::share_sql::set_share_instance_host_if_unplaced(
                        self,
                        id,
                        host,
                        availability_zone,
                        operations,
                        now,
                    )
                    .await
                }

                async fn delete_share_instance_and_maybe_share(
                    &self,
                    instance_id: Uuid,
                    release: InstanceRelease,
                    now: DateTime<Utc>,
                ) -> Result<bool> {
                    super::share_sql::delete_share_instance_and_maybe_share(
                        self,
                        instance_id,
                        release,
                        now,
                    )
                    .await
                }

                async fn replace_export_locations(
                    &self,
                    instance_id: Uuid,
                    locations: Vec<NewExportLocation>,
                    now: DateTime<Utc>,
                ) -> Result<Vec<ExportLocationRow>> {
                    super::share_sql::replace_export_locations(self, instance_id, locations, now)
                        .await
                }

                async fn list_export_locations(
                    &self,
                    instance_id: Uuid,
                ) -> Result<Vec<ExportLocationRow>> {
                    super::share_sql::list_export_locations(self, instance_id).await
                }

                async fn get_export_location(&self, id: Uuid) -> Result<ExportLocationRow> {
                    super::share_sql::get_export_location(self, id).await
                }

                async fn insert_access_rule(&self, new: NewAccessRule) -> Result<AccessRuleRow> {
                    super::share_sql::insert_access_rule(self, new).await
                }

                async fn get_access_rule(&self, id: Uuid) -> Result<AccessRuleRow> {
                    super::share_sql::get_access_rule(self, id).await
                }

                async fn list_access_rules(&self, share_id: Uuid) -> Result<Vec<AccessRuleRow>> {
                    super::share_sql::list_access_rules(self, share_id).await
                }

                async fn set_instance_access_state(
                    &self,
                    access_id: Uuid,
                    instance_id: Uuid,
                    expected: &[&str],
                    state: &str,
                    now: DateTime<Utc>,
                ) -> Result<()> {
                    super::share_sql::set_instance_access_state(
                        self,
                        access_id,
                        instance_id,
                        expected,
                        state,
                        now,
                    )
                    .await
                }

                async fn set_access_rule_metadata(
                    &self,
                    access_id: Uuid,
                    metadata: &BTreeMap<String, String>,
                ) -> Result<BTreeMap<String, String>> {
                    super::share_sql::set_access_rule_metadata(self, access_id, metadata).await
                }

                async fn delete_access_rule_metadata_key(
                    &self,
                    access_id: Uuid,
                    key: &str,
                ) -> Result<()> {
                    super::share_sql::delete_access_rule_metadata_key(self, access_id, key).await
                }

                async fn mark_access_rule_for_deny(
                    &self,
                    access_id: Uuid,
                    operations: Vec<NewOperation>,
                    now: DateTime<Utc>,
                ) -> Result<AccessRuleRow> {
                    super::share_sql::mark_access_rule_for_deny(self, access_id, operations, now)
                        .await
                }

                async fn update_access_rule_level(
                    &self,
                    access_id: Uuid,
                    access_level: &str,
                    operations: Vec<NewOperation>,
                    now: DateTime<Utc>,
                ) -> Result<AccessRuleRow> {
                    super::share_sql::update_access_rule_level(
                        self,
                        access_id,
                        access_level,
                        operations,
                        now,
                    )
                    .await
                }

                async fn remove_instance_access(
                    &self,
                    access_id: Uuid,
                    instance_id: Uuid,
                ) -> Result<bool> {
                    super::share_sql::remove_instance_access(self, access_id, instance_id).await
                }

                async fn add_instance_access_rows(
                    &self,
                    instance_id: Uuid,
                    access_ids: &[Uuid],
                    state: &str,
                    now: DateTime<Utc>,
                ) -> Result<()> {
                    super::share_sql::add_instance_access_rows(
                        self,
                        instance_id,
                        access_ids,
                        state,
                        now,
                    )
                    .await
                }

                async fn allocated_gb_by_pool(&self) -> Result<BTreeMap<String, u64>> {
                    super::share_sql::allocated_gb_by_pool(self).await
                }

                // ---- snapshots (queries in sql_snapshots.rs) ----

                async fn create_snapshot(&self, new: NewSnapshot) -> Result<SnapshotRow> {
                    super::snapshot_sql::create_snapshot(self, new).await
                }

                async fn get_snapshot(&self, id: Uuid) -> Result<SnapshotRow> {
                    super::snapshot_sql::get_snapshot(self, id).await
                }

                async fn list_snapshots(
                    &self,
                    filter: SnapshotListFilter,
                ) -> Result<Vec<SnapshotRow>> {
                    super::snapshot_sql::list_snapshots(self, filter).await
                }

                async fn update_snapshot(
                    &self,
                    id: Uuid,
                    update: SnapshotUpdate,
                    now: DateTime<Utc>,
                ) -> Result<SnapshotRow> {
                    super::snapshot_sql::update_snapshot(self, id, update, now).await
                }

                async fn set_snapshot_metadata(
                    &self,
                    id: Uuid,
                    metadata: &BTreeMap<String, String>,
                    replace_all: bool,
                    now: DateTime<Utc>,
                ) -> Result<BTreeMap<String, String>> {
                    super::snapshot_sql::set_snapshot_metadata(self, id, metadata, replace_all, now)
                        .await
                }

                async fn delete_snapshot_metadata_key(&self, id: Uuid, key: &str) -> Result<()> {
                    super::snapshot_sql::delete_snapshot_metadata_key(self, id, key).await
                }

                async fn get_snapshot_instance(&self, id: Uuid) -> Result<SnapshotInstanceRow> {
                    super::snapshot_sql::get_snapshot_instance(self, id).await
                }

                async fn list_snapshot_instances(
                    &self,
                    filter: SnapshotInstanceFilter,
                ) -> Result<Vec<SnapshotInstanceRow>> {
                    super::snapshot_sql::list_snapshot_instances(self, filter).await
                }

                async fn add_snapshot_instances(
                    &self,
                    instances: Vec<NewSnapshotInstance>,
                    operations: Vec<NewOperation>,
                    now: DateTime<Utc>,
                ) -> Result<usize> {
                    super::snapshot_sql::add_snapshot_instances(self, instances, operations, now)
                        .await
                }

                async fn update_snapshot_instances_if(
                    &self,
                    updates: Vec<SnapshotInstanceCas>,
                    operations: Vec<NewOperation>,
                    now: DateTime<Utc>,
                ) -> Result<Vec<SnapshotInstanceRow>> {
                    super::snapshot_sql::update_snapshot_instances_if(
                        self, updates, operations, now,
                    )
                    .await
                }

                async fn update_share_and_snapshot_instances_if(
                    &self,
                    share_updates: Vec<ShareInstanceCas>,
                    snapshot_updates: Vec<SnapshotInstanceCas>,
                    operations: Vec<NewOperation>,
                    now: DateTime<Utc>,
                ) -> Result<()> {
                    super::snapshot_sql::update_share_and_snapshot_instances_if(
                        self,
                        share_updates,
                        snapshot_updates,
                        operations,
                        now,
                    )
                    .await
                }

                async fn delete_snapshot_instance(
                    &self,
                    instance_id: Uuid,
                    release: QuotaRequest,
                    now: DateTime<Utc>,
                ) -> Result<bool> {
                    super::snapshot_sql::delete_snapshot_instance(self, instance_id, release, now)
                        .await
                }

                async fn replace_snapshot_export_locations(
                    &self,
                    instance_id: Uuid,
                    locations: Vec<NewSnapshotExportLocation>,
                    now: DateTime<Utc>,
                ) -> Result<Vec<SnapshotExportLocationRow>> {
                    super::snapshot_sql::replace_snapshot_export_locations(
                        self,
                        instance_id,
                        locations,
                        now,
                    )
                    .await
                }

                async fn list_snapshot_export_locations(
                    &self,
                    instance_id: Uuid,
                ) -> Result<Vec<SnapshotExportLocationRow>> {
                    super::snapshot_sql::list_snapshot_export_locations(self, instance_id).await
                }

                async fn insert_snapshot_access_rule(
                    &self,
                    new: NewSnapshotAccessRule,
                ) -> Result<SnapshotAccessRuleRow> {
                    super::snapshot_sql::insert_snapshot_access_rule(self, new).await
                }

                async fn get_snapshot_access_rule(
                    &self,
                    id: Uuid,
                ) -> Result<SnapshotAccessRuleRow> {
                    super::snapshot_sql::get_snapshot_access_rule(self, id).await
                }

                async fn list_snapshot_access_rules(
                    &self,
                    snapshot_id: Uuid,
                ) -> Result<Vec<SnapshotAccessRuleRow>> {
                    super::snapshot_sql::list_snapshot_access_rules(self, snapshot_id).await
                }

                async fn set_snapshot_instance_access_state(
                    &self,
                    access_id: Uuid,
                    instance_id: Uuid,
                    expected: &[&str],
                    state: &str,
                    now: DateTime<Utc>,
                ) -> Result<()> {
                    super::snapshot_sql::set_snapshot_instance_access_state(
                        self,
                        access_id,
                        instance_id,
                        expected,
                        state,
                        now,
                    )
                    .await
                }

                async fn mark_snapshot_access_rule_for_deny(
                    &self,
                    access_id: Uuid,
                    operations: Vec<NewOperation>,
                    now: DateTime<Utc>,
                ) -> Result<SnapshotAccessRuleRow> {
                    super::snapshot_sql::mark_snapshot_access_rule_for_deny(
                        self, access_id, operations, now,
                    )
                    .await
                }

                async fn remove_snapshot_instance_access(
                    &self,
                    access_id: Uuid,
                    instance_id: Uuid,
                ) -> Result<bool> {
                    super::snapshot_sql::remove_snapshot_instance_access(
                        self,
                        access_id,
                        instance_id,
                    )
                    .await
                }

                // ---- replicas (queries in sql_replicas.rs) ----

                async fn update_share_instances_if(
                    &self,
                    updates: Vec<ShareInstanceCas>,
                    operations: Vec<NewOperation>,
                    now: DateTime<Utc>,
                ) -> Result<Vec<ShareInstanceRow>> {
                    super::replica_sql::update_share_instances_if(self, updates, operations, now)
                        .await
                }

                async fn get_share_instance_metadata(
                    &self,
                    instance_id: Uuid,
                ) -> Result<BTreeMap<String, String>> {
                    super::replica_sql::get_share_instance_metadata(self, instance_id).await
                }

                async fn list_share_instance_metadata(
                    &self,
                    instance_ids: &[Uuid],
                ) -> Result<BTreeMap<Uuid, BTreeMap<String, String>>> {
                    super::replica_sql::list_share_instance_metadata(self, instance_ids).await
                }

                async fn set_share_instance_metadata(
                    &self,
                    instance_id: Uuid,
                    metadata: &BTreeMap<String, String>,
                    replace_all: bool,
                    now: DateTime<Utc>,
                ) -> Result<BTreeMap<String, String>> {
                    super::replica_sql::set_share_instance_metadata(
                        self,
                        instance_id,
                        metadata,
                        replace_all,
                        now,
                    )
                    .await
                }

                async fn delete_share_instance_metadata_key(
                    &self,
                    instance_id: Uuid,
                    key: &str,
                ) -> Result<()> {
                    super::replica_sql::delete_share_instance_metadata_key(self, instance_id, key)
                        .await
                }

                async fn try_lock_share(
                    &self,
                    share_id: Uuid,
                    holder: &str,
                    now: DateTime<Utc>,
                    lease: Duration,
                ) -> Result<bool> {
                    super::replica_sql::try_lock_share(self, share_id, holder, now, lease).await
                }

                async fn unlock_share(&self, share_id: Uuid, holder: &str) -> Result<()> {
                    super::replica_sql::unlock_share(self, share_id, holder).await
                }

                async fn insert_replication_record(&self, record: ReplicationRecord) -> Result<()> {
                    super::replica_sql::insert_replication_record(self, record).await
                }

                async fn list_replica_sync_status(&self) -> Result<Vec<ReplicaSyncStatus>> {
                    super::replica_sql::list_replica_sync_status(self).await
                }

                async fn list_replication_history(
                    &self,
                    instance_id: Uuid,
                    limit: i64,
                ) -> Result<Vec<ReplicationRecord>> {
                    super::replica_sql::list_replication_history(self, instance_id, limit).await
                }

                // ---- quotas (queries in sql_quotas.rs) ----

                async fn get_quota_overrides(
                    &self,
                    project_id: &str,
                ) -> Result<BTreeMap<String, i64>> {
                    super::quota_sql::get_quota_overrides(self, project_id).await
                }

                async fn set_quota_overrides(
                    &self,
                    project_id: &str,
                    limits: &BTreeMap<String, i64>,
                    now: DateTime<Utc>,
                ) -> Result<()> {
                    super::quota_sql::set_quota_overrides(self, project_id, limits, now).await
                }

                async fn delete_quota_overrides(&self, project_id: &str) -> Result<()> {
                    super::quota_sql::delete_quota_overrides(self, project_id).await
                }

                async fn delete_quota_override_keys(
                    &self,
                    project_id: &str,
                    resources: &[String],
                ) -> Result<()> {
                    super::quota_sql::delete_quota_override_keys(self, project_id, resources)
                        .await
                }

                async fn get_quota_usages(
                    &self,
                    project_id: &str,
                ) -> Result<BTreeMap<String, QuotaUsage>> {
                    super::quota_sql::get_quota_usages(self, project_id).await
                }

                async fn reserve_quota(
                    &self,
                    req: QuotaRequest,
                    expire_at: DateTime<Utc>,
                    now: DateTime<Utc>,
                ) -> Result<Vec<Uuid>> {
                    super::quota_sql::reserve_quota(self, req, expire_at, now).await
                }

                async fn commit_reservations(
                    &self,
                    ids: &[Uuid],
                    now: DateTime<Utc>,
                ) -> Result<()> {
                    super::quota_sql::finish_reservations(self, ids, true, now).await
                }

                async fn commit_share_resize(
                    &self,
                    commit: ResizeCommit,
                    now: DateTime<Utc>,
                ) -> Result<()> {
                    super::share_sql::commit_share_resize(self, commit, now).await
                }

                async fn rollback_reservations(
                    &self,
                    ids: &[Uuid],
                    now: DateTime<Utc>,
                ) -> Result<()> {
                    super::quota_sql::finish_reservations(self, ids, false, now).await
                }

                async fn expire_reservations(&self, now: DateTime<Utc>) -> Result<u64> {
                    super::quota_sql::expire_reservations(self, now).await
                }

                async fn charge_quota(&self, req: QuotaRequest, now: DateTime<Utc>) -> Result<()> {
                    super::quota_sql::charge_quota(self, req, now).await
                }

                // ---- user messages (queries in sql_messages.rs) ----

                async fn insert_message(&self, message: MessageRow) -> Result<()> {
                    super::message_sql::insert_message(self, message).await
                }

                async fn list_messages(&self, project_id: Option<&str>) -> Result<Vec<MessageRow>> {
                    super::message_sql::list_messages(self, project_id).await
                }

                async fn get_message(&self, id: Uuid) -> Result<MessageRow> {
                    super::message_sql::get_message(self, id).await
                }

                async fn delete_message(&self, id: Uuid) -> Result<()> {
                    super::message_sql::delete_message(self, id).await
                }

                async fn delete_expired_messages(&self, now: DateTime<Utc>) -> Result<u64> {
                    super::message_sql::delete_expired_messages(self, now).await
                }

                // ---- identity (queries in sql_identity.rs) ----

                async fn insert_identity_project(
                    &self,
                    new: NewIdentityProject,
                ) -> Result<IdentityProjectRow> {
                    super::identity_sql::insert_identity_project(self, new).await
                }

                async fn get_identity_project(&self, id: &str) -> Result<IdentityProjectRow> {
                    super::identity_sql::get_identity_project(self, id).await
                }

                async fn get_identity_project_by_name(
                    &self,
                    domain_id: &str,
                    name: &str,
                ) -> Result<IdentityProjectRow> {
                    super::identity_sql::get_identity_project_by_name(self, domain_id, name).await
                }

                async fn list_identity_projects(&self) -> Result<Vec<IdentityProjectRow>> {
                    super::identity_sql::list_identity_projects(self).await
                }

                async fn delete_identity_project(&self, id: &str) -> Result<()> {
                    super::identity_sql::delete_identity_project(self, id).await
                }

                async fn insert_identity_user(
                    &self,
                    new: NewIdentityUser,
                ) -> Result<IdentityUserRow> {
                    super::identity_sql::insert_identity_user(self, new).await
                }

                async fn get_identity_user(&self, id: &str) -> Result<IdentityUserRow> {
                    super::identity_sql::get_identity_user(self, id).await
                }

                async fn get_identity_user_by_name(
                    &self,
                    domain_id: &str,
                    name: &str,
                ) -> Result<IdentityUserRow> {
                    super::identity_sql::get_identity_user_by_name(self, domain_id, name).await
                }

                async fn list_identity_users(&self) -> Result<Vec<IdentityUserRow>> {
                    super::identity_sql::list_identity_users(self).await
                }

                async fn update_identity_user(
                    &self,
                    id: &str,
                    update: IdentityUserUpdate,
                    now: DateTime<Utc>,
                ) -> Result<IdentityUserRow> {
                    super::identity_sql::update_identity_user(self, id, update, now).await
                }

                async fn delete_identity_user(&self, id: &str) -> Result<()> {
                    super::identity_sql::delete_identity_user(self, id).await
                }

                async fn grant_identity_role(
                    &self,
                    user_id: &str,
                    project_id: &str,
                    role: &str,
                ) -> Result<()> {
                    super::identity_sql::grant_identity_role(self, user_id, project_id, role).await
                }

                async fn revoke_identity_role(
                    &self,
                    user_id: &str,
                    project_id: &str,
                    role: &str,
                ) -> Result<()> {
                    super::identity_sql::revoke_identity_role(self, user_id, project_id, role)
                        .await
                }

                async fn list_identity_roles(
                    &self,
                    user_id: &str,
                    project_id: &str,
                ) -> Result<Vec<String>> {
                    super::identity_sql::list_identity_roles(self, user_id, project_id).await
                }

                async fn list_identity_role_assignments(&self) -> Result<Vec<RoleAssignmentRow>> {
                    super::identity_sql::list_identity_role_assignments(self).await
                }

                async fn revoke_identity_token(
                    &self,
                    audit_id: &str,
                    expires_at: DateTime<Utc>,
                    now: DateTime<Utc>,
                ) -> Result<()> {
                    super::identity_sql::revoke_identity_token(self, audit_id, expires_at, now)
                        .await
                }

                async fn is_identity_token_revoked(&self, audit_id: &str) -> Result<bool> {
                    super::identity_sql::is_identity_token_revoked(self, audit_id).await
                }

                async fn delete_expired_identity_revocations(
                    &self,
                    now: DateTime<Utc>,
                ) -> Result<u64> {
                    super::identity_sql::delete_expired_identity_revocations(self, now).await
                }

                async fn ensure_identity_signing_key(
                    &self,
                    candidate_hex: &str,
                    now: DateTime<Utc>,
                ) -> Result<String> {
                    super::identity_sql::ensure_identity_signing_key(self, candidate_hex, now)
                        .await
                }

                async fn list_share_instances_by_export_path(
                    &self,
                    host: &str,
                    path: &str,
                ) -> Result<Vec<ShareInstanceRow>> {
                    super::lifecycle_sql::list_share_instances_by_export_path(self, host, path)
                        .await
                }

                async fn finish_share_manage(
                    &self,
                    instance_id: Uuid,
                    size_gb: i64,
                    quota: QuotaRequest,
                    update: ShareInstanceUpdate,
                    now: DateTime<Utc>,
                ) -> Result<ShareInstanceRow> {
                    super::lifecycle_sql::finish_share_manage(
                        self,
                        instance_id,
                        size_gb,
                        quota,
                        update,
                        now,
                    )
                    .await
                }

                async fn soft_delete_share(
                    &self,
                    id: Uuid,
                    statuses: &[&str],
                    scheduled_to_be_deleted_at: DateTime<Utc>,
                    now: DateTime<Utc>,
                ) -> Result<ShareRow> {
                    super::lifecycle_sql::soft_delete_share(
                        self,
                        id,
                        statuses,
                        scheduled_to_be_deleted_at,
                        now,
                    )
                    .await
                }

                async fn restore_share(
                    &self,
                    id: Uuid,
                    blocking_statuses: &[&str],
                    now: DateTime<Utc>,
                ) -> Result<ShareRow> {
                    super::lifecycle_sql::restore_share(self, id, blocking_statuses, now).await
                }

                async fn list_expired_soft_deleted_shares(
                    &self,
                    now: DateTime<Utc>,
                ) -> Result<Vec<ShareRow>> {
                    super::lifecycle_sql::list_expired_soft_deleted_shares(self, now).await
                }
            }
        }

        $crate::sql_shares::share_sql!($store);
        $crate::sql_replicas::replica_sql!($store);
        $crate::sql_snapshots::snapshot_sql!($store);
        $crate::sql_quotas::quota_sql!($store);
        $crate::sql_messages::message_sql!($store);
        $crate::sql_identity::identity_sql!($store);
        $crate::sql_lifecycle::lifecycle_sql!($store);
    };
}
pub(crate) use impl_store;
