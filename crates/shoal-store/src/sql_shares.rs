//! Share queries (shares and their metadata, share instances, export locations, access
//! rules, pool allocation), expanded for each engine by [`share_sql!`] from inside
//! [`impl_store!`](crate::sql_impl::impl_store). Same rules as `sql_impl.rs`: one query text
//! for both engines, `$N` placeholders, `DbTime`/`DbUuid` binds.
//!
//! Read-modify-write transactions first lock the row they hang off (the share, the instance
//! or the access rule) with `sql_common::lock_row`, a no-op `UPDATE`. On PostgreSQL READ
//! COMMITTED this serialises, say, two deletions of a share's last two instances: without
//! it each would still see the other instance and neither would remove the share. SQLite
//! write transactions already hold the database lock (`BEGIN IMMEDIATE`).

/// Share columns joined with their metadata (`LEFT JOIN`, one row per key).
macro_rules! share_select {
    () => {
        "SELECT s.id, s.project_id, s.user_id, s.name, s.description, s.size_gb, \
                s.share_proto, s.share_type_id, s.is_public, s.replication_type, \
                s.snapshot_id, s.share_group_id, s.task_state, s.created_at, s.updated_at, \
                s.is_soft_deleted, s.scheduled_to_be_deleted_at, \
                m.key AS meta_key, m.value AS meta_value \
         FROM shares s LEFT JOIN share_metadata m ON m.share_id = s.id "
    };
}
pub(crate) use share_select;

/// Columns of `share_instances`, in `RETURNING`/`SELECT` lists.
macro_rules! instance_columns {
    () => {
        "id, share_id, status, replica_state, host, availability_zone, share_type_id, \
         share_network_id, share_server_id, cast_rules_to_readonly, access_rules_status, \
         progress, created_at, updated_at, scheduled_at, launched_at, terminated_at, \
         replica_epoch"
    };
}
pub(crate) use instance_columns;

/// Columns of `share_instance_export_locations` in `SELECT` lists.
macro_rules! export_location_columns {
    () => {
        "id, share_instance_id, path, is_admin_only, preferred, metadata, created_at, updated_at"
    };
}
pub(crate) use export_location_columns;

/// Access rule columns joined with their instance mappings (`LEFT JOIN`, one row per
/// mapping).
macro_rules! access_rule_select {
    () => {
        "SELECT r.id, r.share_id, r.access_type, r.access_to, r.access_level, r.access_key, \
                r.metadata, r.created_at, r.updated_at, \
                m.share_instance_id AS map_instance_id, m.state AS map_state \
         FROM share_access_rules r \
         LEFT JOIN share_instance_access_map m ON m.access_id = r.id "
    };
}
pub(crate) use access_rule_select;

/// Expands the share query functions as module `share_sql` next to `store_impl`.
macro_rules! share_sql {
    ($store:ident) => {
        /// Shares, share instances, export locations and access rules.
        mod share_sql {
            use std::collections::{BTreeMap, BTreeSet};

            use chrono::{DateTime, Utc};
            use uuid::Uuid;

            use super::$store;
            use super::sql_common::{
                enqueue_operations, get, json_map, lock_row, map_to_json, opt_time, opt_uuid,
                placeholders, time, uuid, DbConn, DbRow,
            };
            use $crate::codec::{DbTime, DbUuid};
            use $crate::error::{
                is_foreign_key_violation, is_unique_violation, Result, StoreError,
            };
            use $crate::model::NewOperation;
            use $crate::model_shares::{
                AccessRuleRow, ExportLocationRow, InstanceRelease, NewAccessRule,
                NewExportLocation, NewShare, NewShareInstance, QuotaRequest, ResizeCommit,
                ShareInstanceRow, ShareInstanceUpdate, ShareListFilter, ShareRow, ShareUpdate,
            };
            use $crate::sql_shares::{
                access_rule_select, export_location_columns, instance_columns, share_select,
            };

            // ---- row decoding ----

            /// Folds `share_select!` rows (ordered so that one share's rows are adjacent)
            /// into shares with their metadata.
            pub(super) fn fold_shares(rows: &[DbRow]) -> Result<Vec<ShareRow>> {
                let mut out: Vec<ShareRow> = Vec::new();
                for row in rows {
                    let id = uuid(row, "id")?;
                    if out.last().map(|s| s.id) != Some(id) {
                        out.push(ShareRow {
                            id,
                            project_id: get(row, "project_id")?,
                            user_id: get(row, "user_id")?,
                            name: get(row, "name")?,
                            description: get(row, "description")?,
                            size_gb: get(row, "size_gb")?,
                            share_proto: get(row, "share_proto")?,
                            share_type_id: opt_uuid(row, "share_type_id")?,
                            is_public: get(row, "is_public")?,
                            replication_type: get(row, "replication_type")?,
                            snapshot_id: opt_uuid(row, "snapshot_id")?,
                            share_group_id: opt_uuid(row, "share_group_id")?,
                            task_state: get(row, "task_state")?,
                            metadata: BTreeMap::new(),
                            created_at: time(row, "created_at")?,
                            updated_at: opt_time(row, "updated_at")?,
                            is_soft_deleted: get(row, "is_soft_deleted")?,
                            scheduled_to_be_deleted_at: opt_time(
                                row,
                                "scheduled_to_be_deleted_at",
                            )?,
                        });
                    }
                    if let Some(key) = get::<Option<String>>(row, "meta_key")? {
                        let value: String = get(row, "meta_value")?;
                        let current = out.last_mut().expect("pushed above");
                        current.metadata.insert(key, value);
                    }
                }
                Ok(out)
            }

            pub(super) fn instance_from_row(row: &DbRow) -> Result<ShareInstanceRow> {
                Ok(ShareInstanceRow {
                    id: uuid(row, "id")?,
                    share_id: uuid(row, "share_id")?,
                    status: get(row, "status")?,
                    replica_state: get(row, "replica_state")?,
                    host: get(row, "host")?,
                    availability_zone: get(row, "availability_zone")?,
                    share_type_id: opt_uuid(row, "share_type_id")?,
                    share_network_id: opt_uuid(row, "share_network_id")?,
                    share_server_id: opt_uuid(row, "share_server_id")?,
                    cast_rules_to_readonly: get(row, "cast_rules_to_readonly")?,
                    access_rules_status: get(row, "access_rules_status")?,
                    progress: get(row, "progress")?,
                    created_at: time(row, "created_at")?,
                    updated_at: opt_time(row, "updated_at")?,
                    scheduled_at: opt_time(row, "scheduled_at")?,
                    launched_at: opt_time(row, "launched_at")?,
                    terminated_at: opt_time(row, "terminated_at")?,
                    replica_epoch: get(row, "replica_epoch")?,
                })
            }

            fn export_location_from_row(row: &DbRow) -> Result<ExportLocationRow> {
                Ok(ExportLocationRow {
                    id: uuid(row, "id")?,
                    share_instance_id: uuid(row, "share_instance_id")?,
                    path: get(row, "path")?,
                    is_admin_only: get(row, "is_admin_only")?,
                    preferred: get(row, "preferred")?,
                    metadata: json_map(row, "metadata")?,
                    created_at: time(row, "created_at")?,
                    updated_at: opt_time(row, "updated_at")?,
                })
            }

            /// Folds `access_rule_select!` rows (one rule's rows adjacent) into rules with
            /// their per-instance states.
            fn fold_access_rules(rows: &[DbRow]) -> Result<Vec<AccessRuleRow>> {
                let mut out: Vec<AccessRuleRow> = Vec::new();
                for row in rows {
                    let id = uuid(row, "id")?;
                    if out.last().map(|r| r.id) != Some(id) {
                        out.push(AccessRuleRow {
                            id,
                            share_id: uuid(row, "share_id")?,
                            access_type: get(row, "access_type")?,
                            access_to: get(row, "access_to")?,
                            access_level: get(row, "access_level")?,
                            access_key: get(row, "access_key")?,
                            metadata: json_map(row, "metadata")?,
                            created_at: time(row, "created_at")?,
                            updated_at: opt_time(row, "updated_at")?,
                            instance_states: BTreeMap::new(),
                        });
                    }
                    if let Some(instance) = opt_uuid(row, "map_instance_id")? {
                        let state: String = get(row, "map_state")?;
                        let current = out.last_mut().expect("pushed above");
                        current.instance_states.insert(instance, state);
                    }
                }
                Ok(out)
            }

            // ---- helpers inside transactions ----

            /// Inserts an instance of `share_id` created at `created_at`.
            async fn insert_instance(
                conn: &mut DbConn,
                share_id: Uuid,
                inst: &NewShareInstance,
                created_at: DateTime<Utc>,
            ) -> Result<ShareInstanceRow> {
                let row = sqlx::query(concat!(
                    "INSERT INTO share_instances (id, share_id, status, replica_state, host, \
                         availability_zone, share_type_id, share_network_id, share_server_id, \
                         cast_rules_to_readonly, access_rules_status, progress, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                     RETURNING ",
                    instance_columns!()
                ))
                .bind(DbUuid(inst.id))
                .bind(DbUuid(share_id))
                .bind(&inst.status)
                .bind(&inst.replica_state)
                .bind(&inst.host)
                .bind(&inst.availability_zone)
                .bind(inst.share_type_id.map(DbUuid))
                .bind(inst.share_network_id.map(DbUuid))
                .bind(inst.share_server_id.map(DbUuid))
                .bind(inst.cast_rules_to_readonly)
                .bind(&inst.access_rules_status)
                .bind(&inst.progress)
                .bind(DbTime::new(created_at))
                .fetch_one(&mut *conn)
                .await;
                let row = match row {
                    Ok(row) => instance_from_row(&row)?,
                    Err(e) if is_unique_violation(&e) => {
                        return Err(StoreError::Conflict(format!(
                            "share instance {} already exists",
                            inst.id
                        )));
                    }
                    Err(e) if is_foreign_key_violation(&e) => {
                        return Err(StoreError::NotFound(format!(
                            "share {share_id} or share type {:?}",
                            inst.share_type_id
                        )));
                    }
                    Err(e) => return Err(e.into()),
                };
                // Replica metadata given at creation (2.95) is part of the same transaction.
                for (key, value) in &inst.metadata {
                    sqlx::query(
                        "INSERT INTO share_instance_metadata \
                             (share_instance_id, key, value, created_at) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(DbUuid(inst.id))
                    .bind(key)
                    .bind(value)
                    .bind(DbTime::new(created_at))
                    .execute(&mut *conn)
                    .await?;
                }
                Ok(row)
            }

            /// Moves the `access_rules_status` of every instance mapped to `access_id`
            /// from `active` to `syncing` (their backend has rule changes to apply).
            async fn mark_mapped_instances_syncing(
                conn: &mut DbConn,
                access_id: Uuid,
                now: DateTime<Utc>,
            ) -> Result<()> {
                sqlx::query(
                    "UPDATE share_instances SET access_rules_status = 'syncing', updated_at = $1 \
                     WHERE access_rules_status = 'active' AND id IN ( \
                         SELECT share_instance_id FROM share_instance_access_map \
                         WHERE access_id = $2)",
                )
                .bind(DbTime::new(now))
                .bind(DbUuid(access_id))
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            async fn read_access_rule(conn: &mut DbConn, id: Uuid) -> Result<AccessRuleRow> {
                let rows = sqlx::query(concat!(
                    access_rule_select!(),
                    "WHERE r.id = $1 ORDER BY m.share_instance_id"
                ))
                .bind(DbUuid(id))
                .fetch_all(&mut *conn)
                .await?;
                fold_access_rules(&rows)?
                    .pop()
                    .ok_or_else(|| StoreError::NotFound(format!("access rule {id}")))
            }

            /// Tells a lost compare-and-set on instance `id` (→ `Conflict`, naming the
            /// current status) from a missing instance (→ `NotFound`).
            async fn instance_cas_lost(store: &$store, id: Uuid, expected: &str) -> StoreError {
                match store.pool.acquire().await {
                    Ok(mut conn) => instance_cas_lost_in(&mut conn, id, expected).await,
                    Err(e) => e.into(),
                }
            }

            /// [`instance_cas_lost`] on the caller's connection (inside a transaction, it
            /// sees the transaction's own changes).
            pub(super) async fn instance_cas_lost_in(
                conn: &mut DbConn,
                id: Uuid,
                expected: &str,
            ) -> StoreError {
                let row = sqlx::query(
                    "SELECT status, replica_state, host FROM share_instances WHERE id = $1",
                )
                .bind(DbUuid(id))
                .fetch_optional(&mut *conn)
                .await;
                match row {
                    Ok(Some(row)) => {
                        let status = get::<String>(&row, "status").unwrap_or_default();
                        let replica_state = get::<Option<String>>(&row, "replica_state")
                            .unwrap_or_default()
                            .unwrap_or_else(|| "null".to_owned());
                        let host = get::<String>(&row, "host").unwrap_or_default();
                        StoreError::Conflict(format!(
                            "share instance {id} has status {status}, replica state \
                             {replica_state} and host {host:?}, expected {expected}"
                        ))
                    }
                    Ok(None) => StoreError::NotFound(format!("share instance {id}")),
                    Err(e) => e.into(),
                }
            }

            // ---- shares ----

            pub(super) async fn create_share(
                store: &$store,
                new: NewShare,
            ) -> Result<(ShareRow, ShareInstanceRow)> {
                let NewShare {
                    share,
                    instance,
                    quota,
                    operations,
                } = new;
                let created_at = DbTime::new(share.created_at);
                let updated_at = share.updated_at.map(DbTime::new);
                let mut tx = store.begin_write().await?;
                let inserted = sqlx::query(
                    "INSERT INTO shares (id, project_id, user_id, name, description, size_gb, \
                         share_proto, share_type_id, is_public, replication_type, snapshot_id, \
                         share_group_id, task_state, created_at, updated_at, is_soft_deleted, \
                         scheduled_to_be_deleted_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                         $16, $17)",
                )
                .bind(DbUuid(share.id))
                .bind(&share.project_id)
                .bind(&share.user_id)
                .bind(&share.name)
                .bind(&share.description)
                .bind(share.size_gb)
                .bind(&share.share_proto)
                .bind(share.share_type_id.map(DbUuid))
                .bind(share.is_public)
                .bind(&share.replication_type)
                .bind(share.snapshot_id.map(DbUuid))
                .bind(share.share_group_id.map(DbUuid))
                .bind(&share.task_state)
                .bind(created_at)
                .bind(updated_at)
                .bind(share.is_soft_deleted)
                .bind(share.scheduled_to_be_deleted_at.map(DbTime::new))
                .execute(&mut *tx)
                .await;
                match inserted {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => {
                        return Err(StoreError::Conflict(format!(
                            "share {} already exists",
                            share.id
                        )));
                    }
                    Err(e) if is_foreign_key_violation(&e) => {
                        return Err(StoreError::NotFound(format!(
                            "share type {:?}",
                            share.share_type_id
                        )));
                    }
                    Err(e) => return Err(e.into()),
                }
                for (key, value) in &share.metadata {
                    sqlx::query(
                        "INSERT INTO share_metadata (share_id, key, value, created_at) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(DbUuid(share.id))
                    .bind(key)
                    .bind(value)
                    .bind(created_at)
                    .execute(&mut *tx)
                    .await?;
                }
                let instance_row =
                    insert_instance(&mut tx, share.id, &instance, share.created_at).await?;
                super::quota_sql::charge_in(&mut tx, &quota, share.created_at).await?;
                enqueue_operations(&mut tx, &operations).await?;
                tx.commit().await?;
                let share_row = ShareRow {
                    created_at: created_at.0,
                    updated_at: updated_at.map(|t| t.0),
                    scheduled_to_be_deleted_at: share
                        .scheduled_to_be_deleted_at
                        .map(|t| DbTime::new(t).0),
                    ..share
                };
                Ok((share_row, instance_row))
            }

            pub(super) async fn get_share(store: &$store, id: Uuid) -> Result<ShareRow> {
                let rows = sqlx::query(concat!(share_select!(), "WHERE s.id = $1 ORDER BY m.key"))
                    .bind(DbUuid(id))
                    .fetch_all(&store.pool)
                    .await?;
                fold_shares(&rows)?
                    .pop()
                    .ok_or_else(|| StoreError::NotFound(format!("share {id}")))
            }

            pub(super) async fn list_shares(
                store: &$store,
                filter: ShareListFilter,
            ) -> Result<Vec<ShareRow>> {
                let rows = sqlx::query(concat!(
                    share_select!(),
                    "WHERE ($1 IS NULL OR s.project_id = $1 OR ($2 AND s.is_public)) \
                     ORDER BY s.created_at, s.id, m.key"
                ))
                .bind(filter.project_id)
                .bind(filter.include_public)
                .fetch_all(&store.pool)
                .await?;
                fold_shares(&rows)
            }

            pub(super) async fn update_share(
                store: &$store,
                id: Uuid,
                update: ShareUpdate,
                now: DateTime<Utc>,
            ) -> Result<ShareRow> {
                // The booleans say whether to touch a nullable column at all, since
                // `Some(None)` (clear it) and `None` (keep it) both bind NULL.
                let updated = sqlx::query(
                    "UPDATE shares SET \
                         name = CASE WHEN $1 THEN $2 ELSE name END, \
                         description = CASE WHEN $3 THEN $4 ELSE description END, \
                         is_public = COALESCE($5, is_public), \
                         size_gb = COALESCE($6, size_gb), \
                         task_state = CASE WHEN $7 THEN $8 ELSE task_state END, \
                         updated_at = $9 \
                     WHERE id = $10",
                )
                .bind(update.name.is_some())
                .bind(update.name.flatten())
                .bind(update.description.is_some())
                .bind(update.description.flatten())
                .bind(update.is_public)
                .bind(update.size_gb)
                .bind(update.task_state.is_some())
                .bind(update.task_state.flatten())
                .bind(DbTime::new(now))
                .bind(DbUuid(id))
                .execute(store.writer())
                .await?
                .rows_affected();
                if updated == 0 {
                    return Err(StoreError::NotFound(format!("share {id}")));
                }
                get_share(store, id).await
            }

            pub(super) async fn set_share_metadata(
                store: &$store,
                id: Uuid,
                metadata: &BTreeMap<String, String>,
                replace_all: bool,
                now: DateTime<Utc>,
            ) -> Result<BTreeMap<String, String>> {
                let now = DbTime::new(now);
                let mut tx = store.begin_write().await?;
                if !lock_row(&mut tx, "shares", id).await? {
                    return Err(StoreError::NotFound(format!("share {id}")));
                }
                if replace_all {
                    let rows = sqlx::query("SELECT key FROM share_metadata WHERE share_id = $1")
                        .bind(DbUuid(id))
                        .fetch_all(&mut *tx)
                        .await?;
                    for row in &rows {
                        let key: String = get(row, "key")?;
                        if !metadata.contains_key(&key) {
                            sqlx::query(
                                "DELETE FROM share_metadata WHERE share_id = $1 AND key = $2",
                            )
                            .bind(DbUuid(id))
                            .bind(&key)
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                }
                for (key, value) in metadata {
                    // An unchanged value keeps its `updated_at`.
                    sqlx::query(
                        "INSERT INTO share_metadata (share_id, key, value, created_at) \
                         VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (share_id, key) DO UPDATE SET \
                             value = excluded.value, updated_at = $4 \
                         WHERE share_metadata.value <> excluded.value",
                    )
                    .bind(DbUuid(id))
                    .bind(key)
                    .bind(value)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                let rows = sqlx::query(
                    "SELECT key, value FROM share_metadata WHERE share_id = $1 ORDER BY key",
                )
                .bind(DbUuid(id))
                .fetch_all(&mut *tx)
                .await?;
                let result = rows
                    .iter()
                    .map(|r| Ok((get(r, "key")?, get(r, "value")?)))
                    .collect::<Result<BTreeMap<String, String>>>()?;
                tx.commit().await?;
                Ok(result)
            }

            pub(super) async fn delete_share_metadata_key(
                store: &$store,
                id: Uuid,
                key: &str,
            ) -> Result<()> {
                let deleted =
                    sqlx::query("DELETE FROM share_metadata WHERE share_id = $1 AND key = $2")
                        .bind(DbUuid(id))
                        .bind(key)
                        .execute(store.writer())
                        .await?
                        .rows_affected();
                if deleted == 0 {
                    let exists = sqlx::query("SELECT id FROM shares WHERE id = $1")
                        .bind(DbUuid(id))
                        .fetch_optional(&store.pool)
                        .await?;
                    return Err(match exists {
                        Some(_) => StoreError::NotFound(format!("metadata key {key} of share {id}")),
                        None => StoreError::NotFound(format!("share {id}")),
                    });
                }
                Ok(())
            }

            pub(super) async fn count_shares_with_share_type(
                store: &$store,
                share_type_id: Uuid,
            ) -> Result<i64> {
                let row = sqlx::query(
                    "SELECT COUNT(*) AS n FROM shares s \
                     WHERE s.share_type_id = $1 OR EXISTS ( \
                         SELECT 1 FROM share_instances i \
                         WHERE i.share_id = s.id AND i.share_type_id = $1)",
                )
                .bind(DbUuid(share_type_id))
                .fetch_one(&store.pool)
                .await?;
                get(&row, "n")
            }

            // ---- share instances ----

            pub(super) async fn create_share_instance(
                store: &$store,
                share_id: Uuid,
                instance: NewShareInstance,
                quota: QuotaRequest,
                operations: Vec<NewOperation>,
                now: DateTime<Utc>,
            ) -> Result<ShareInstanceRow> {
                let mut tx = store.begin_write().await?;
                // Serialises with the removal of the share's last instance: either this
                // instance is added first and the share stays, or the share is gone here.
                if !lock_row(&mut tx, "shares", share_id).await? {
                    return Err(StoreError::NotFound(format!("share {share_id}")));
                }
                let row = insert_instance(&mut tx, share_id, &instance, now).await?;
                super::quota_sql::charge_in(&mut tx, &quota, now).await?;
                enqueue_operations(&mut tx, &operations).await?;
                tx.commit().await?;
                Ok(row)
            }

            pub(super) async fn get_share_instance(
                store: &$store,
                id: Uuid,
            ) -> Result<ShareInstanceRow> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    instance_columns!(),
                    " FROM share_instances WHERE id = $1"
                ))
                .bind(DbUuid(id))
                .fetch_optional(&store.pool)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("share instance {id}")))?;
                instance_from_row(&row)
            }

            pub(super) async fn list_share_instances(
                store: &$store,
                share_id: Uuid,
            ) -> Result<Vec<ShareInstanceRow>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    instance_columns!(),
                    " FROM share_instances WHERE share_id = $1 ORDER BY created_at, id"
                ))
                .bind(DbUuid(share_id))
                .fetch_all(&store.pool)
                .await?;
                rows.iter().map(instance_from_row).collect()
            }

            pub(super) async fn list_share_replicas(
                store: &$store,
                project_id: Option<&str>,
                share_id: Option<Uuid>,
            ) -> Result<Vec<ShareInstanceRow>> {
                // Both filters are optional: a NULL parameter disables its condition.
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    instance_columns!(),
                    " FROM share_instances \
                     WHERE replica_state IS NOT NULL \
                       AND ($1 IS NULL OR share_id = $1) \
                       AND ($2 IS NULL OR share_id IN (SELECT id FROM shares WHERE project_id = $2)) \
                     ORDER BY created_at, id"
                ))
                .bind(share_id.map(DbUuid))
                .bind(project_id)
                .fetch_all(&store.pool)
                .await?;
                rows.iter().map(instance_from_row).collect()
            }

            pub(super) async fn list_all_share_instances(
                store: &$store,
                filter: $crate::model_shares::ShareInstanceFilter,
            ) -> Result<Vec<ShareInstanceRow>> {
                // Every condition is disabled by a NULL parameter. The host matches exactly
                // or as the range ['host#', 'host$'), as in `list_share_instances_on_host`.
                // Both export location conditions hold on one location (Manila's join).
                let host = filter.host.as_deref().filter(|h| !h.is_empty());
                let host_range = host.map(|h| (format!("{h}#"), format!("{h}$")));
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    instance_columns!(),
                    " FROM share_instances \
                     WHERE ($1 IS NULL OR host = $1 OR (host >= $2 AND host < $3)) \
                       AND ($4 IS NULL OR status = $4) \
                       AND ($5 IS NULL OR share_server_id = $5) \
                       AND (($6 IS NULL AND $7 IS NULL) OR id IN (SELECT share_instance_id \
                            FROM share_instance_export_locations \
                            WHERE ($6 IS NULL OR id = $6) AND ($7 IS NULL OR path = $7))) \
                     ORDER BY created_at, id"
                ))
                .bind(host)
                .bind(host_range.as_ref().map(|r| r.0.as_str()))
                .bind(host_range.as_ref().map(|r| r.1.as_str()))
                .bind(filter.status.as_deref())
                .bind(filter.share_server_id.map(DbUuid))
                .bind(filter.export_location_id.map(DbUuid))
                .bind(filter.export_location_path.as_deref())
                .fetch_all(&store.pool)
                .await?;
                rows.iter().map(instance_from_row).collect()
            }

            pub(super) async fn list_share_instances_on_host(
                store: &$store,
                service_host: &str,
            ) -> Result<Vec<ShareInstanceRow>> {
                if service_host.is_empty() {
                    return Ok(Vec::new());
                }
                // `host@backend#...` is exactly the range ['host@backend#', 'host@backend$')
                // in byte order ('$' follows '#'), which also keeps LIKE wildcards in the
                // host name from mattering and lets the host index serve the scan.
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    instance_columns!(),
                    " FROM share_instances \
                     WHERE host = $1 OR (host >= $2 AND host < $3) \
                     ORDER BY created_at, id"
                ))
                .bind(service_host)
                .bind(format!("{service_host}#"))
                .bind(format!("{service_host}$"))
                .fetch_all(&store.pool)
                .await?;
                rows.iter().map(instance_from_row).collect()
            }

            /// The conditions of one instance compare-and-set: its status must be one of
            /// `statuses` (any when empty) and, when `replica_state` is `Some`, its replica
            /// state must equal it (`Some(None)`: must be null).
            pub(super) struct InstanceCondition<'a> {
                pub(super) statuses: &'a [&'a str],
                pub(super) replica_state: Option<Option<&'a str>>,
            }

            impl InstanceCondition<'_> {
                /// Human-readable form, for `Conflict` messages.
                pub(super) fn describe(&self) -> String {
                    let mut text = if self.statuses.is_empty() {
                        "any status".to_owned()
                    } else {
                        format!("status in {:?}", self.statuses)
                    };
                    match self.replica_state {
                        None => {}
                        Some(None) => text.push_str(" and no replica state"),
                        Some(Some(state)) => {
                            text.push_str(&format!(" and replica state {state}"));
                        }
                    }
                    text
                }
            }

            /// Applies `update` to instance `id` (and sets `updated_at = now`) if it meets
            /// `cond`, inside the caller's transaction. `None` when the instance is missing
            /// or does not meet the condition: the caller tells which apart.
            pub(super) async fn apply_instance_update(
                conn: &mut DbConn,
                id: Uuid,
                cond: &InstanceCondition<'_>,
                update: &ShareInstanceUpdate,
                now: DateTime<Utc>,
            ) -> Result<Option<ShareInstanceRow>> {
                let mut sql = String::from(
                    "UPDATE share_instances SET \
                         status = COALESCE($1, status), \
                         replica_state = CASE WHEN $2 THEN $3 ELSE replica_state END, \
                         host = COALESCE($4, host), \
                         availability_zone = CASE WHEN $5 THEN $6 ELSE availability_zone END, \
                         share_server_id = CASE WHEN $7 THEN $8 ELSE share_server_id END, \
                         cast_rules_to_readonly = COALESCE($9, cast_rules_to_readonly), \
                         access_rules_status = COALESCE($10, access_rules_status), \
                         progress = CASE WHEN $11 THEN $12 ELSE progress END, \
                         launched_at = COALESCE($13, launched_at), \
                         terminated_at = COALESCE($14, terminated_at), \
                         scheduled_at = COALESCE($15, scheduled_at), \
                         replica_epoch = COALESCE($16, replica_epoch), \
                         updated_at = $17 \
                     WHERE id = $18",
                );
                let mut next = 19;
                if !cond.statuses.is_empty() {
                    sql.push_str(&format!(
                        " AND status IN ({})",
                        placeholders(next, cond.statuses.len())
                    ));
                    next += cond.statuses.len();
                }
                match cond.replica_state {
                    None => {}
                    Some(None) => sql.push_str(" AND replica_state IS NULL"),
                    Some(Some(_)) => sql.push_str(&format!(" AND replica_state = ${next}")),
                }
                sql.push_str(concat!(" RETURNING ", instance_columns!()));
                let mut query = sqlx::query(&sql)
                    .bind(&update.status)
                    .bind(update.replica_state.is_some())
                    .bind(update.replica_state.clone().flatten())
                    .bind(&update.host)
                    .bind(update.availability_zone.is_some())
                    .bind(update.availability_zone.clone().flatten())
                    .bind(update.share_server_id.is_some())
                    .bind(update.share_server_id.flatten().map(DbUuid))
                    .bind(update.cast_rules_to_readonly)
                    .bind(&update.access_rules_status)
                    .bind(update.progress.is_some())
                    .bind(update.progress.clone().flatten())
                    .bind(update.launched_at.map(DbTime::new))
                    .bind(update.terminated_at.map(DbTime::new))
                    .bind(update.scheduled_at.map(DbTime::new))
                    .bind(update.replica_epoch)
                    .bind(DbTime::new(now))
                    .bind(DbUuid(id));
                for status in cond.statuses {
                    query = query.bind(*status);
                }
                if let Some(Some(state)) = cond.replica_state {
                    query = query.bind(state);
                }
                let row = query.fetch_optional(&mut *conn).await?;
                row.as_ref().map(instance_from_row).transpose()
            }

            pub(super) async fn update_share_instance_if(
                store: &$store,
                id: Uuid,
                expected_statuses: &[&str],
                update: ShareInstanceUpdate,
                operations: Vec<NewOperation>,
                now: DateTime<Utc>,
            ) -> Result<ShareInstanceRow> {
                let cond = InstanceCondition {
                    statuses: expected_statuses,
                    replica_state: None,
                };
                let mut tx = store.begin_write().await?;
                let Some(instance) = apply_instance_update(&mut tx, id, &cond, &update, now).await?
                else {
                    drop(tx);
                    return Err(instance_cas_lost(store, id, &cond.describe()).await);
                };
                enqueue_operations(&mut tx, &operations).await?;
                tx.commit().await?;
                Ok(instance)
            }

            pub(super) async fn set_share_instance_host_if_unplaced(
                store: &$store,
                id: Uuid,
                host: &str,
                availability_zone: &str,
                operations: Vec<NewOperation>,
                now: DateTime<Utc>,
            ) -> Result<ShareInstanceRow> {
                let mut tx = store.begin_write().await?;
                let row = sqlx::query(concat!(
                    "UPDATE share_instances SET host = $1, availability_zone = $2, \
                         scheduled_at = $3, updated_at = $3 \
                     WHERE id = $4 AND host = '' AND status = 'creating' \
                     RETURNING ",
                    instance_columns!()
                ))
                .bind(host)
                .bind(availability_zone)
                .bind(DbTime::new(now))
                .bind(DbUuid(id))
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    drop(tx);
                    return Err(
                        instance_cas_lost(store, id, "status creating and no host").await
                    );
                };
                let instance = instance_from_row(&row)?;
                enqueue_operations(&mut tx, &operations).await?;
                tx.commit().await?;
                Ok(instance)
            }

            pub(super) async fn delete_share_instance_and_maybe_share(
                store: &$store,
                instance_id: Uuid,
                release: InstanceRelease,
                now: DateTime<Utc>,
            ) -> Result<bool> {
                let mut tx = store.begin_write().await?;
                let row = sqlx::query("SELECT share_id FROM share_instances WHERE id = $1")
                    .bind(DbUuid(instance_id))
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(row) = row else {
                    return Ok(false);
                };
                let share_id = uuid(&row, "share_id")?;
                // Serialises deleters of the same share's instances (see the module doc).
                lock_row(&mut tx, "shares", share_id).await?;
                // Export locations and access mappings go with it (ON DELETE CASCADE).
                let deleted = sqlx::query("DELETE FROM share_instances WHERE id = $1")
                    .bind(DbUuid(instance_id))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if deleted == 0 {
                    // A concurrent call removed it (and released its quota) first.
                    return Ok(false);
                }
                let remaining = sqlx::query(
                    "SELECT COUNT(*) AS n FROM share_instances WHERE share_id = $1",
                )
                .bind(DbUuid(share_id))
                .fetch_one(&mut *tx)
                .await?;
                let share_removed = get::<i64>(&remaining, "n")? == 0;
                // Read under the lock that a resize's commit also takes (see
                // `commit_share_resize`): the size this instance was last charged for.
                let size_gb = share_size(&mut tx, share_id).await?;
                if share_removed {
                    // Metadata and access rules go with it (ON DELETE CASCADE).
                    sqlx::query("DELETE FROM shares WHERE id = $1")
                        .bind(DbUuid(share_id))
                        .execute(&mut *tx)
                        .await?;
                }
                super::quota_sql::charge_in(&mut tx, &release.sized(size_gb), now).await?;
                tx.commit().await?;
                Ok(share_removed)
            }

            /// `size_gb` of a share, 0 if it is missing.
            async fn share_size(conn: &mut DbConn, share_id: Uuid) -> Result<i64> {
                let row = sqlx::query("SELECT size_gb FROM shares WHERE id = $1")
                    .bind(DbUuid(share_id))
                    .fetch_optional(&mut *conn)
                    .await?;
                row.map_or(Ok(0), |row| get::<i64>(&row, "size_gb"))
            }

            pub(super) async fn commit_share_resize(
                store: &$store,
                commit: ResizeCommit,
                now: DateTime<Utc>,
            ) -> Result<()> {
                let mut tx = store.begin_write().await?;
                if !lock_row(&mut tx, "shares", commit.share_id).await? {
                    return Err(StoreError::NotFound(format!("share {}", commit.share_id)));
                }
                let old_size = share_size(&mut tx, commit.share_id).await?;
                sqlx::query("UPDATE shares SET size_gb = $1, updated_at = $2 WHERE id = $3")
                    .bind(commit.new_size)
                    .bind(DbTime::new(now))
                    .bind(DbUuid(commit.share_id))
                    .execute(&mut *tx)
                    .await?;
                let committed =
                    super::quota_sql::commit_in(&mut tx, &commit.reservations, now).await?;
                if let (true, Some(reserved)) = (committed, commit.reserved_replicas) {
                    let row = sqlx::query(
                        "SELECT COUNT(*) AS n FROM share_instances \
                         WHERE share_id = $1 AND replica_state IS NOT NULL",
                    )
                    .bind(DbUuid(commit.share_id))
                    .fetch_one(&mut *tx)
                    .await?;
                    let replicas = get::<i64>(&row, "n")?;
                    let factor = (replicas - reserved).saturating_mul(commit.new_size - old_size);
                    if factor != 0 {
                        let mut correction = commit.per_replica_gib.clone();
                        correction.limits.clear();
                        for delta in correction.deltas.values_mut() {
                            *delta = delta.saturating_mul(factor);
                        }
                        super::quota_sql::charge_in(&mut tx, &correction, now).await?;
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            // ---- export locations ----

            pub(super) async fn replace_export_locations(
                store: &$store,
                instance_id: Uuid,
                locations: Vec<NewExportLocation>,
                now: DateTime<Utc>,
            ) -> Result<Vec<ExportLocationRow>> {
                let now = DbTime::new(now);
                let mut seen = BTreeSet::new();
                let locations: Vec<NewExportLocation> = locations
                    .into_iter()
                    .filter(|l| seen.insert(l.path.clone()))
                    .collect();
                let mut tx = store.begin_write().await?;
                if !lock_row(&mut tx, "share_instances", instance_id).await? {
                    return Err(StoreError::NotFound(format!("share instance {instance_id}")));
                }
                let rows = sqlx::query(
                    "SELECT id, path FROM share_instance_export_locations \
                     WHERE share_instance_id = $1",
                )
                .bind(DbUuid(instance_id))
                .fetch_all(&mut *tx)
                .await?;
                let mut existing = BTreeMap::new();
                for row in &rows {
                    existing.insert(get::<String>(row, "path")?, uuid(row, "id")?);
                }
                for (path, id) in &existing {
                    if !seen.contains(path) {
                        sqlx::query("DELETE FROM share_instance_export_locations WHERE id = $1")
                            .bind(DbUuid(*id))
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                for (position, loc) in locations.iter().enumerate() {
                    let position = i32::try_from(position)
                        .map_err(|_| StoreError::other("too many export locations"))?;
                    match existing.get(&loc.path) {
                        Some(id) => {
                            sqlx::query(
                                "UPDATE share_instance_export_locations SET \
                                     is_admin_only = $1, preferred = $2, metadata = $3, \
                                     position = $4, updated_at = $5 \
                                 WHERE id = $6",
                            )
                            .bind(loc.is_admin_only)
                            .bind(loc.preferred)
                            .bind(map_to_json(&loc.metadata))
                            .bind(position)
                            .bind(now)
                            .bind(DbUuid(*id))
                            .execute(&mut *tx)
                            .await?;
                        }
                        None => {
                            sqlx::query(
                                "INSERT INTO share_instance_export_locations (id, \
                                     share_instance_id, path, is_admin_only, preferred, \
                                     metadata, position, created_at, updated_at) \
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                            )
                            .bind(DbUuid(Uuid::new_v4()))
                            .bind(DbUuid(instance_id))
                            .bind(&loc.path)
                            .bind(loc.is_admin_only)
                            .bind(loc.preferred)
                            .bind(map_to_json(&loc.metadata))
                            .bind(position)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                }
                let result = select_export_locations(&mut tx, instance_id).await?;
                tx.commit().await?;
                Ok(result)
            }

            async fn select_export_locations(
                conn: &mut DbConn,
                instance_id: Uuid,
            ) -> Result<Vec<ExportLocationRow>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    export_location_columns!(),
                    " FROM share_instance_export_locations WHERE share_instance_id = $1 \
                     ORDER BY position, id"
                ))
                .bind(DbUuid(instance_id))
                .fetch_all(&mut *conn)
                .await?;
                rows.iter().map(export_location_from_row).collect()
            }

            pub(super) async fn list_export_locations(
                store: &$store,
                instance_id: Uuid,
            ) -> Result<Vec<ExportLocationRow>> {
                let mut conn = store.pool.acquire().await?;
                select_export_locations(&mut conn, instance_id).await
            }

            pub(super) async fn get_export_location(
                store: &$store,
                id: Uuid,
            ) -> Result<ExportLocationRow> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    export_location_columns!(),
                    " FROM share_instance_export_locations WHERE id = $1"
                ))
                .bind(DbUuid(id))
                .fetch_optional(&store.pool)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("export location {id}")))?;
                export_location_from_row(&row)
            }

            // ---- access rules ----

            pub(super) async fn insert_access_rule(
                store: &$store,
                new: NewAccessRule,
            ) -> Result<AccessRuleRow> {
                let now = DbTime::new(new.now);
                let instance_ids: BTreeSet<Uuid> = new.instance_ids.iter().copied().collect();
                let mut tx = store.begin_write().await?;
                let inserted = sqlx::query(
                    "INSERT INTO share_access_rules (id, share_id, access_type, access_to, \
                         access_level, access_key, metadata, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(DbUuid(new.id))
                .bind(DbUuid(new.share_id))
                .bind(&new.access_type)
                .bind(&new.access_to)
                .bind(&new.access_level)
                .bind(&new.access_key)
                .bind(map_to_json(&new.metadata))
                .bind(now)
                .execute(&mut *tx)
                .await;
                match inserted {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => {
                        return Err(StoreError::Conflict(format!(
                            "access rule {}:{} already exists on share {} (or id {} is taken)",
                            new.access_type, new.access_to, new.share_id, new.id
                        )));
                    }
                    Err(e) if is_foreign_key_violation(&e) => {
                        return Err(StoreError::NotFound(format!("share {}", new.share_id)));
                    }
                    Err(e) => return Err(e.into()),
                }
                for instance_id in &instance_ids {
                    // Only instances of the rule's own share can be mapped.
                    let mapped = sqlx::query(
                        "INSERT INTO share_instance_access_map \
                             (access_id, share_instance_id, state, created_at) \
                         SELECT $1, i.id, 'queued_to_apply', $2 FROM share_instances i \
                         WHERE i.id = $3 AND i.share_id = $4",
                    )
                    .bind(DbUuid(new.id))
                    .bind(now)
                    .bind(DbUuid(*instance_id))
                    .bind(DbUuid(new.share_id))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if mapped == 0 {
                        return Err(StoreError::NotFound(format!(
                            "share instance {instance_id} of share {}",
                            new.share_id
                        )));
                    }
                }
                mark_mapped_instances_syncing(&mut tx, new.id, now.0).await?;
                enqueue_operations(&mut tx, &new.operations).await?;
                tx.commit().await?;
                Ok(AccessRuleRow {
                    id: new.id,
                    share_id: new.share_id,
                    access_type: new.access_type,
                    access_to: new.access_to,
                    access_level: new.access_level,
                    access_key: new.access_key,
                    metadata: new.metadata,
                    created_at: now.0,
                    updated_at: None,
                    instance_states: instance_ids
                        .into_iter()
                        .map(|i| (i, "queued_to_apply".to_owned()))
                        .collect(),
                })
            }

            pub(super) async fn get_access_rule(store: &$store, id: Uuid) -> Result<AccessRuleRow> {
                let mut conn = store.pool.acquire().await?;
                read_access_rule(&mut conn, id).await
            }

            pub(super) async fn list_access_rules(
                store: &$store,
                share_id: Uuid,
            ) -> Result<Vec<AccessRuleRow>> {
                let rows = sqlx::query(concat!(
                    access_rule_select!(),
                    "WHERE r.share_id = $1 ORDER BY r.created_at, r.id, m.share_instance_id"
                ))
                .bind(DbUuid(share_id))
                .fetch_all(&store.pool)
                .await?;
                fold_access_rules(&rows)
            }

            pub(super) async fn set_instance_access_state(
                store: &$store,
                access_id: Uuid,
                instance_id: Uuid,
                expected: &[&str],
                state: &str,
                now: DateTime<Utc>,
            ) -> Result<()> {
                let mut sql = String::from(
                    "UPDATE share_instance_access_map SET state = $1, updated_at = $2 \
                     WHERE access_id = $3 AND share_instance_id = $4",
                );
                if !expected.is_empty() {
                    sql.push_str(&format!(" AND state IN ({})", placeholders(5, expected.len())));
                }
                let mut query = sqlx::query(&sql)
                    .bind(state)
                    .bind(DbTime::new(now))
                    .bind(DbUuid(access_id))
                    .bind(DbUuid(instance_id));
                for s in expected {
                    query = query.bind(*s);
                }
                let updated = query.execute(store.writer()).await?.rows_affected();
                if updated > 0 {
                    return Ok(());
                }
                let current = sqlx::query(
                    "SELECT state FROM share_instance_access_map \
                     WHERE access_id = $1 AND share_instance_id = $2",
                )
                .bind(DbUuid(access_id))
                .bind(DbUuid(instance_id))
                .fetch_optional(&store.pool)
                .await?;
                Err(match current {
                    Some(row) => StoreError::Conflict(format!(
                        "access rule {access_id} is {} on share instance {instance_id}, \
                         expected one of {expected:?}",
                        get::<String>(&row, "state")?
                    )),
                    None => StoreError::NotFound(format!(
                        "access rule {access_id} on share instance {instance_id}"
                    )),
                })
            }

            pub(super) async fn mark_access_rule_for_deny(
                store: &$store,
                access_id: Uuid,
                operations: Vec<NewOperation>,
                now: DateTime<Utc>,
            ) -> Result<AccessRuleRow> {
                let mut tx = store.begin_write().await?;
                if !lock_row(&mut tx, "share_access_rules", access_id).await? {
                    return Err(StoreError::NotFound(format!("access rule {access_id}")));
                }
                sqlx::query(
                    "UPDATE share_instance_access_map SET state = 'queued_to_deny', \
                         updated_at = $1 \
                     WHERE access_id = $2",
                )
                .bind(DbTime::new(now))
                .bind(DbUuid(access_id))
                .execute(&mut *tx)
                .await?;
                mark_mapped_instances_syncing(&mut tx, access_id, now).await?;
                enqueue_operations(&mut tx, &operations).await?;
                let rule = read_access_rule(&mut tx, access_id).await?;
                tx.commit().await?;
                Ok(rule)
            }

            pub(super) async fn update_access_rule_level(
                store: &$store,
                access_id: Uuid,
                access_level: &str,
                operations: Vec<NewOperation>,
                now: DateTime<Utc>,
            ) -> Result<AccessRuleRow> {
                let mut tx = store.begin_write().await?;
                if !lock_row(&mut tx, "share_access_rules", access_id).await? {
                    return Err(StoreError::NotFound(format!("access rule {access_id}")));
                }
                sqlx::query(
                    "UPDATE share_access_rules SET access_level = $1, updated_at = $2 \
                     WHERE id = $3",
                )
                .bind(access_level)
                .bind(DbTime::new(now))
                .bind(DbUuid(access_id))
                .execute(&mut *tx)
                .await?;
                // A mapping on its way out stays so: the deny wins over the update.
                sqlx::query(
                    "UPDATE share_instance_access_map SET state = 'queued_to_update', \
                         updated_at = $1 \
                     WHERE access_id = $2 AND state NOT IN ('queued_to_deny', 'denying')",
                )
                .bind(DbTime::new(now))
                .bind(DbUuid(access_id))
                .execute(&mut *tx)
                .await?;
                mark_mapped_instances_syncing(&mut tx, access_id, now).await?;
                enqueue_operations(&mut tx, &operations).await?;
                let rule = read_access_rule(&mut tx, access_id).await?;
                tx.commit().await?;
                Ok(rule)
            }

            pub(super) async fn remove_instance_access(
                store: &$store,
                access_id: Uuid,
                instance_id: Uuid,
            ) -> Result<bool> {
                let mut tx = store.begin_write().await?;
                // Serialises removals of the rule's mappings, so the last one sees that
                // no mapping is left.
                if !lock_row(&mut tx, "share_access_rules", access_id).await? {
                    return Err(StoreError::NotFound(format!("access rule {access_id}")));
                }
                sqlx::query(
                    "DELETE FROM share_instance_access_map \
                     WHERE access_id = $1 AND share_instance_id = $2",
                )
                .bind(DbUuid(access_id))
                .bind(DbUuid(instance_id))
                .execute(&mut *tx)
                .await?;
                let left = sqlx::query(
                    "SELECT COUNT(*) AS n FROM share_instance_access_map WHERE access_id = $1",
                )
                .bind(DbUuid(access_id))
                .fetch_one(&mut *tx)
                .await?;
                let removed = get::<i64>(&left, "n")? == 0;
                if removed {
                    sqlx::query("DELETE FROM share_access_rules WHERE id = $1")
                        .bind(DbUuid(access_id))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(removed)
            }

            pub(super) async fn add_instance_access_rows(
                store: &$store,
                instance_id: Uuid,
                access_ids: &[Uuid],
                state: &str,
                now: DateTime<Utc>,
            ) -> Result<()> {
                let access_ids: BTreeSet<Uuid> = access_ids.iter().copied().collect();
                let mut tx = store.begin_write().await?;
                if !lock_row(&mut tx, "share_instances", instance_id).await? {
                    return Err(StoreError::NotFound(format!("share instance {instance_id}")));
                }
                for access_id in access_ids {
                    // Only rules of the instance's own share can be mapped. The WHERE
                    // clause also keeps SQLite from parsing ON CONFLICT as a join condition.
                    let inserted = sqlx::query(
                        "INSERT INTO share_instance_access_map \
                             (access_id, share_instance_id, state, created_at) \
                         SELECT r.id, i.id, $1, $2 \
                         FROM share_access_rules r \
                         JOIN share_instances i ON i.share_id = r.share_id \
                         WHERE r.id = $3 AND i.id = $4 \
                         ON CONFLICT (access_id, share_instance_id) DO NOTHING",
                    )
                    .bind(state)
                    .bind(DbTime::new(now))
                    .bind(DbUuid(access_id))
                    .bind(DbUuid(instance_id))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if inserted == 0 {
                        let exists = sqlx::query(
                            "SELECT state FROM share_instance_access_map \
                             WHERE access_id = $1 AND share_instance_id = $2",
                        )
                        .bind(DbUuid(access_id))
                        .bind(DbUuid(instance_id))
                        .fetch_optional(&mut *tx)
                        .await?;
                        if exists.is_none() {
                            return Err(StoreError::NotFound(format!(
                                "access rule {access_id} on the share of instance {instance_id}"
                            )));
                        }
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            /// Reads the rule's metadata inside `tx` after locking the rule, so two writers
            /// of the same rule's metadata take turns (each sees the other's keys).
            async fn lock_access_rule_metadata(
                conn: &mut DbConn,
                access_id: Uuid,
            ) -> Result<BTreeMap<String, String>> {
                if !lock_row(conn, "share_access_rules", access_id).await? {
                    return Err(StoreError::NotFound(format!("access rule {access_id}")));
                }
                let row = sqlx::query("SELECT metadata FROM share_access_rules WHERE id = $1")
                    .bind(DbUuid(access_id))
                    .fetch_one(&mut *conn)
                    .await?;
                json_map(&row, "metadata")
            }

            async fn write_access_rule_metadata(
                conn: &mut DbConn,
                access_id: Uuid,
                metadata: &BTreeMap<String, String>,
            ) -> Result<()> {
                sqlx::query("UPDATE share_access_rules SET metadata = $1 WHERE id = $2")
                    .bind(map_to_json(metadata))
                    .bind(DbUuid(access_id))
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            }

            pub(super) async fn set_access_rule_metadata(
                store: &$store,
                access_id: Uuid,
                metadata: &BTreeMap<String, String>,
            ) -> Result<BTreeMap<String, String>> {
                let mut tx = store.begin_write().await?;
                let mut current = lock_access_rule_metadata(&mut tx, access_id).await?;
                let before = current.clone();
                current.extend(metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
                if current != before {
                    write_access_rule_metadata(&mut tx, access_id, &current).await?;
                }
                tx.commit().await?;
                Ok(current)
            }

            pub(super) async fn delete_access_rule_metadata_key(
                store: &$store,
                access_id: Uuid,
                key: &str,
            ) -> Result<()> {
                let mut tx = store.begin_write().await?;
                let mut current = lock_access_rule_metadata(&mut tx, access_id).await?;
                if current.remove(key).is_none() {
                    return Err(StoreError::NotFound(format!(
                        "metadata key {key} of access rule {access_id}"
                    )));
                }
                write_access_rule_metadata(&mut tx, access_id, &current).await?;
                tx.commit().await?;
                Ok(())
            }

            // ---- pool usage ----

            pub(super) async fn allocated_gb_by_pool(
                store: &$store,
            ) -> Result<BTreeMap<String, u64>> {
                // CAST: PostgreSQL's SUM(BIGINT) is NUMERIC.
                let rows = sqlx::query(
                    "SELECT i.host AS pool, CAST(SUM(s.size_gb) AS BIGINT) AS gb \
                     FROM share_instances i JOIN shares s ON s.id = i.share_id \
                     WHERE i.host <> '' AND i.status <> 'deleted' \
                     GROUP BY i.host",
                )
                .fetch_all(&store.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        let gb: i64 = get(r, "gb")?;
                        let gb = u64::try_from(gb)
                            .map_err(|_| StoreError::other(format!("negative allocation {gb}")))?;
                        Ok((get(r, "pool")?, gb))
                    })
                    .collect()
            }
        }
    };
}
pub(crate) use share_sql;
