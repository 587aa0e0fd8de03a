//! Snapshot queries (snapshots with metadata and instances, snapshot export locations,
//! snapshot access rules), expanded for each engine by [`snapshot_sql!`] from inside
//! [`impl_store!`](crate::sql_impl::impl_store). Same rules as `sql_impl.rs`: one query text
//! for both engines, `$N` placeholders, `DbTime`/`DbUuid` binds.
//!
//! Read-modify-write transactions lock the row they hang off first (the share for a new
//! snapshot, the snapshot for instance removal and metadata, the rule for mapping removal),
//! so on PostgreSQL the last of two concurrent removals sees that nothing is left.

/// Snapshot columns joined with their metadata (`LEFT JOIN`, one row per key).
macro_rules! snapshot_select {
    () => {
        "SELECT s.id, s.share_id, s.project_id, s.user_id, s.name, s.description, s.size_gb, \
                s.share_size, s.share_proto, s.created_at, s.updated_at, \
                m.key AS meta_key, m.value AS meta_value \
         FROM share_snapshots s \
         LEFT JOIN share_snapshot_metadata m ON m.share_snapshot_id = s.id "
    };
}
pub(crate) use snapshot_select;

/// Columns of `share_snapshot_instances`.
macro_rules! snapshot_instance_columns {
    () => {
        "id, snapshot_id, share_instance_id, status, progress, provider_location, created_at, \
         updated_at"
    };
}
pub(crate) use snapshot_instance_columns;

/// Snapshot access rules joined with their instance mappings.
macro_rules! snapshot_access_select {
    () => {
        "SELECT r.id, r.snapshot_id, r.access_type, r.access_to, r.created_at, r.updated_at, \
                m.snapshot_instance_id AS map_instance_id, m.state AS map_state \
         FROM share_snapshot_access_rules r \
         LEFT JOIN share_snapshot_instance_access_map m ON m.access_id = r.id "
    };
}
pub(crate) use snapshot_access_select;

/// Expands the snapshot query functions as module `snapshot_sql` next to `store_impl`.
macro_rules! snapshot_sql {
    ($store:ident) => {
        /// Snapshots, snapshot instances, export locations and access rules.
        mod snapshot_sql {
            use std::collections::{BTreeMap, BTreeSet};

            use chrono::{DateTime, Utc};
            use uuid::Uuid;

            use super::$store;
            use super::sql_common::{
                enqueue_operations, get, lock_row, opt_time, placeholders, time, uuid, DbConn, DbRow,
            };
            use $crate::codec::{DbTime, DbUuid};
            use $crate::error::{
                is_foreign_key_violation, is_unique_violation, Result, StoreError,
            };
            use super::share_sql::{
                apply_instance_update, instance_cas_lost_in, InstanceCondition,
            };
            use $crate::model::NewOperation;
            use $crate::model_shares::{QuotaRequest, ShareInstanceCas};
            use $crate::model_snapshots::{
                NewSnapshot, NewSnapshotAccessRule, NewSnapshotExportLocation,
                NewSnapshotInstance, SnapshotAccessRuleRow, SnapshotExportLocationRow,
                SnapshotInstanceCas, SnapshotInstanceFilter, SnapshotInstanceRow,
                SnapshotListFilter, SnapshotRow, SnapshotUpdate,
            };
            use $crate::sql_replicas::IN_LIST_CHUNK;
            use $crate::sql_snapshots::{
                snapshot_access_select, snapshot_instance_columns, snapshot_select,
            };

            // ---- row decoding ----

            fn fold_snapshots(rows: &[DbRow]) -> Result<Vec<SnapshotRow>> {
                let mut out: Vec<SnapshotRow> = Vec::new();
                for row in rows {
                    let id = uuid(row, "id")?;
                    if out.last().map(|s| s.id) != Some(id) {
                        out.push(SnapshotRow {
                            id,
                            share_id: uuid(row, "share_id")?,
                            project_id: get(row, "project_id")?,
                            user_id: get(row, "user_id")?,
                            name: get(row, "name")?,
                            description: get(row, "description")?,
                            size_gb: get(row, "size_gb")?,
                            share_size: get(row, "share_size")?,
                            share_proto: get(row, "share_proto")?,
                            metadata: BTreeMap::new(),
                            created_at: time(row, "created_at")?,
                            updated_at: opt_time(row, "updated_at")?,
                            instances: Vec::new(),
                        });
                    }
                    if let Some(key) = get::<Option<String>>(row, "meta_key")? {
                        let value: String = get(row, "meta_value")?;
                        out.last_mut().expect("pushed above").metadata.insert(key, value);
                    }
                }
                Ok(out)
            }

            fn instance_from_row(row: &DbRow) -> Result<SnapshotInstanceRow> {
                Ok(SnapshotInstanceRow {
                    id: uuid(row, "id")?,
                    snapshot_id: uuid(row, "snapshot_id")?,
                    share_instance_id: uuid(row, "share_instance_id")?,
                    status: get(row, "status")?,
                    progress: get(row, "progress")?,
                    provider_location: get(row, "provider_location")?,
                    created_at: time(row, "created_at")?,
                    updated_at: opt_time(row, "updated_at")?,
                })
            }

            fn export_location_from_row(row: &DbRow) -> Result<SnapshotExportLocationRow> {
                Ok(SnapshotExportLocationRow {
                    id: uuid(row, "id")?,
                    snapshot_instance_id: uuid(row, "snapshot_instance_id")?,
                    path: get(row, "path")?,
                    is_admin_only: get(row, "is_admin_only")?,
                    created_at: time(row, "created_at")?,
                    updated_at: opt_time(row, "updated_at")?,
                })
            }

            fn fold_access_rules(rows: &[DbRow]) -> Result<Vec<SnapshotAccessRuleRow>> {
                let mut out: Vec<SnapshotAccessRuleRow> = Vec::new();
                for row in rows {
                    let id = uuid(row, "id")?;
                    if out.last().map(|r| r.id) != Some(id) {
                        out.push(SnapshotAccessRuleRow {
                            id,
                            snapshot_id: uuid(row, "snapshot_id")?,
                            access_type: get(row, "access_type")?,
                            access_to: get(row, "access_to")?,
                            created_at: time(row, "created_at")?,
                            updated_at: opt_time(row, "updated_at")?,
                            instance_states: BTreeMap::new(),
                        });
                    }
                    if let Some(instance) = get::<Option<DbUuid>>(row, "map_instance_id")? {
                        let state: String = get(row, "map_state")?;
                        out.last_mut()
                            .expect("pushed above")
                            .instance_states
                            .insert(instance.0, state);
                    }
                }
                Ok(out)
            }

            /// Instances matching the filter, in creation order.
            async fn select_instances(
                conn: &mut DbConn,
                filter: &SnapshotInstanceFilter,
            ) -> Result<Vec<SnapshotInstanceRow>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    snapshot_instance_columns!(),
                    " FROM share_snapshot_instances \
                     WHERE ($1 IS NULL OR snapshot_id = $1) \
                       AND ($2 IS NULL OR share_instance_id = $2) \
                     ORDER BY created_at, id"
                ))
                .bind(filter.snapshot_id.map(DbUuid))
                .bind(filter.share_instance_id.map(DbUuid))
                .fetch_all(&mut *conn)
                .await?;
                rows.iter().map(instance_from_row).collect()
            }

            /// Attaches every snapshot's instances: one query per chunk of snapshot ids, so a
            /// list reads only the instances it shows.
            async fn attach_instances(
                conn: &mut DbConn,
                snapshots: &mut [SnapshotRow],
            ) -> Result<()> {
                let ids: Vec<Uuid> = snapshots.iter().map(|s| s.id).collect();
                let mut by_snapshot: BTreeMap<Uuid, Vec<SnapshotInstanceRow>> = BTreeMap::new();
                for chunk in ids.chunks(IN_LIST_CHUNK) {
                    let sql = format!(
                        "SELECT {} FROM share_snapshot_instances WHERE snapshot_id IN ({}) \
                         ORDER BY created_at, id",
                        snapshot_instance_columns!(),
                        placeholders(1, chunk.len())
                    );
                    let mut query = sqlx::query(&sql);
                    for id in chunk {
                        query = query.bind(DbUuid(*id));
                    }
                    for row in query.fetch_all(&mut *conn).await? {
                        let instance = instance_from_row(&row)?;
                        by_snapshot.entry(instance.snapshot_id).or_default().push(instance);
                    }
                }
                for snapshot in snapshots.iter_mut() {
                    snapshot.instances = by_snapshot.remove(&snapshot.id).unwrap_or_default();
                }
                Ok(())
            }

            async fn read_snapshot(conn: &mut DbConn, id: Uuid) -> Result<SnapshotRow> {
                let rows = sqlx::query(concat!(snapshot_select!(), "WHERE s.id = $1 ORDER BY m.key"))
                    .bind(DbUuid(id))
                    .fetch_all(&mut *conn)
                    .await?;
                let mut found = fold_snapshots(&rows)?;
                if found.is_empty() {
                    return Err(StoreError::NotFound(format!("snapshot {id}")));
                }
                attach_instances(conn, &mut found).await?;
                Ok(found.pop().expect("checked"))
            }

            async fn insert_instance(
                conn: &mut DbConn,
                inst: &NewSnapshotInstance,
                now: DateTime<Utc>,
            ) -> Result<()> {
                let inserted = sqlx::query(
                    "INSERT INTO share_snapshot_instances (id, snapshot_id, share_instance_id, \
                         status, progress, provider_location, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(DbUuid(inst.id))
                .bind(DbUuid(inst.snapshot_id))
                .bind(DbUuid(inst.share_instance_id))
                .bind(&inst.status)
                .bind(&inst.progress)
                .bind(&inst.provider_location)
                .bind(DbTime::new(now))
                .execute(&mut *conn)
                .await;
                match inserted {
                    Ok(_) => Ok(()),
                    Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                        "snapshot instance {} (or one of snapshot {} on share instance {}) \
                         already exists",
                        inst.id, inst.snapshot_id, inst.share_instance_id
                    ))),
                    Err(e) if is_foreign_key_violation(&e) => Err(StoreError::NotFound(format!(
                        "snapshot {} or share instance {}",
                        inst.snapshot_id, inst.share_instance_id
                    ))),
                    Err(e) => Err(e.into()),
                }
            }

            // ---- snapshots ----

            pub(super) async fn create_snapshot(
                store: &$store,
                new: NewSnapshot,
            ) -> Result<SnapshotRow> {
                let NewSnapshot {
                    snapshot,
                    instances,
                    quota,
                    operations,
                } = new;
                let created = DbTime::new(snapshot.created_at);
                let mut tx = store.begin_write().await?;
                // Serialises with the deletion of the share's last instance.
                if !lock_row(&mut tx, "shares", snapshot.share_id).await? {
                    return Err(StoreError::NotFound(format!("share {}", snapshot.share_id)));
                }
                let inserted = sqlx::query(
                    "INSERT INTO share_snapshots (id, share_id, project_id, user_id, name, \
                         description, size_gb, share_size, share_proto, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(DbUuid(snapshot.id))
                .bind(DbUuid(snapshot.share_id))
                .bind(&snapshot.project_id)
                .bind(&snapshot.user_id)
                .bind(&snapshot.name)
                .bind(&snapshot.description)
                .bind(snapshot.size_gb)
                .bind(snapshot.share_size)
                .bind(&snapshot.share_proto)
                .bind(created)
                .bind(snapshot.updated_at.map(DbTime::new))
                .execute(&mut *tx)
                .await;
                match inserted {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => {
                        return Err(StoreError::Conflict(format!(
                            "snapshot {} already exists",
                            snapshot.id
                        )));
                    }
                    Err(e) => return Err(e.into()),
                }
                for (key, value) in &snapshot.metadata {
                    sqlx::query(
                        "INSERT INTO share_snapshot_metadata \
                             (share_snapshot_id, key, value, created_at) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(DbUuid(snapshot.id))
                    .bind(key)
                    .bind(value)
                    .bind(created)
                    .execute(&mut *tx)
                    .await?;
                }
                for inst in &instances {
                    insert_instance(&mut tx, inst, snapshot.created_at).await?;
                }
                super::quota_sql::charge_in(&mut tx, &quota, snapshot.created_at).await?;
                enqueue_operations(&mut tx, &operations).await?;
                let row = read_snapshot(&mut tx, snapshot.id).await?;
                tx.commit().await?;
                Ok(row)
            }

            pub(super) async fn get_snapshot(store: &$store, id: Uuid) -> Result<SnapshotRow> {
                let mut conn = store.pool.acquire().await?;
                read_snapshot(&mut conn, id).await
            }

            pub(super) async fn list_snapshots(
                store: &$store,
                filter: SnapshotListFilter,
            ) -> Result<Vec<SnapshotRow>> {
                let mut conn = store.pool.acquire().await?;
                let rows = sqlx::query(concat!(
                    snapshot_select!(),
                    "WHERE ($1 IS NULL OR s.project_id = $1) \
                       AND ($2 IS NULL OR s.share_id = $2) \
                     ORDER BY s.created_at, s.id, m.key"
                ))
                .bind(filter.project_id)
                .bind(filter.share_id.map(DbUuid))
                .fetch_all(&mut *conn)
                .await?;
                let mut snapshots = fold_snapshots(&rows)?;
                attach_instances(&mut conn, &mut snapshots).await?;
                Ok(snapshots)
            }

            pub(super) async fn update_snapshot(
                store: &$store,
                id: Uuid,
                update: SnapshotUpdate,
                now: DateTime<Utc>,
            ) -> Result<SnapshotRow> {
                let updated = sqlx::query(
                    "UPDATE share_snapshots SET \
                         name = CASE WHEN $1 THEN $2 ELSE name END, \
                         description = CASE WHEN $3 THEN $4 ELSE description END, \
                         size_gb = COALESCE($5, size_gb), \
                         updated_at = $6 \
                     WHERE id = $7",
                )
                .bind(update.name.is_some())
                .bind(update.name.flatten())
                .bind(update.description.is_some())
                .bind(update.description.flatten())
                .bind(update.size_gb)
                .bind(DbTime::new(now))
                .bind(DbUuid(id))
                .execute(store.writer())
                .await?
                .rows_affected();
                if updated == 0 {
                    return Err(StoreError::NotFound(format!("snapshot {id}")));
                }
                get_snapshot(store, id).await
            }

            async fn select_metadata(
                conn: &mut DbConn,
                id: Uuid,
            ) -> Result<BTreeMap<String, String>> {
                let rows = sqlx::query(
                    "SELECT key, value FROM share_snapshot_metadata \
                     WHERE share_snapshot_id = $1 ORDER BY key",
                )
                .bind(DbUuid(id))
                .fetch_all(&mut *conn)
                .await?;
                rows.iter()
                    .map(|r| Ok((get(r, "key")?, get(r, "value")?)))
                    .collect()
            }

            pub(super) async fn set_snapshot_metadata(
                store: &$store,
                id: Uuid,
                metadata: &BTreeMap<String, String>,
                replace_all: bool,
                now: DateTime<Utc>,
            ) -> Result<BTreeMap<String, String>> {
                let now = DbTime::new(now);
                let mut tx = store.begin_write().await?;
                if !lock_row(&mut tx, "share_snapshots", id).await? {
                    return Err(StoreError::NotFound(format!("snapshot {id}")));
                }
                if replace_all {
                    let current = select_metadata(&mut tx, id).await?;
                    for key in current.keys().filter(|k| !metadata.contains_key(*k)) {
                        sqlx::query(
                            "DELETE FROM share_snapshot_metadata \
                             WHERE share_snapshot_id = $1 AND key = $2",
                        )
                        .bind(DbUuid(id))
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                for (key, value) in metadata {
                    sqlx::query(
                        "INSERT INTO share_snapshot_metadata \
                             (share_snapshot_id, key, value, created_at) \
                         VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (share_snapshot_id, key) DO UPDATE SET \
                             value = excluded.value, updated_at = $4 \
                         WHERE share_snapshot_metadata.value <> excluded.value",
                    )
                    .bind(DbUuid(id))
                    .bind(key)
                    .bind(value)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                let result = select_metadata(&mut tx, id).await?;
                tx.commit().await?;
                Ok(result)
            }

            pub(super) async fn delete_snapshot_metadata_key(
                store: &$store,
                id: Uuid,
                key: &str,
            ) -> Result<()> {
                let deleted = sqlx::query(
                    "DELETE FROM share_snapshot_metadata \
                     WHERE share_snapshot_id = $1 AND key = $2",
                )
                .bind(DbUuid(id))
                .bind(key)
                .execute(store.writer())
                .await?
                .rows_affected();
                if deleted > 0 {
                    return Ok(());
                }
                let exists = sqlx::query("SELECT id FROM share_snapshots WHERE id = $1")
                    .bind(DbUuid(id))
                    .fetch_optional(&store.pool)
                    .await?;
                Err(StoreError::NotFound(match exists {
                    Some(_) => format!("metadata key {key} of snapshot {id}"),
                    None => format!("snapshot {id}"),
                }))
            }

            // ---- snapshot instances ----

            pub(super) async fn get_snapshot_instance(
                store: &$store,
                id: Uuid,
            ) -> Result<SnapshotInstanceRow> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    snapshot_instance_columns!(),
                    " FROM share_snapshot_instances WHERE id = $1"
                ))
                .bind(DbUuid(id))
                .fetch_optional(&store.pool)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("snapshot instance {id}")))?;
                instance_from_row(&row)
            }

            pub(super) async fn list_snapshot_instances(
                store: &$store,
                filter: SnapshotInstanceFilter,
            ) -> Result<Vec<SnapshotInstanceRow>> {
                let mut conn = store.pool.acquire().await?;
                select_instances(&mut conn, &filter).await
            }

            pub(super) async fn add_snapshot_instances(
                store: &$store,
                instances: Vec<NewSnapshotInstance>,
                operations: Vec<NewOperation>,
                now: DateTime<Utc>,
            ) -> Result<usize> {
                let mut tx = store.begin_write().await?;
                let mut added = 0;
                for inst in &instances {
                    // An instance of that snapshot on that share instance may exist from an
                    // earlier run: keep it.
                    let done = sqlx::query(
                        "INSERT INTO share_snapshot_instances (id, snapshot_id, \
                             share_instance_id, status, progress, provider_location, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         ON CONFLICT (snapshot_id, share_instance_id) DO NOTHING",
                    )
                    .bind(DbUuid(inst.id))
                    .bind(DbUuid(inst.snapshot_id))
                    .bind(DbUuid(inst.share_instance_id))
                    .bind(&inst.status)
                    .bind(&inst.progress)
                    .bind(&inst.provider_location)
                    .bind(DbTime::new(now))
                    .execute(&mut *tx)
                    .await;
                    match done {
                        Ok(done) => added += done.rows_affected() as usize,
                        Err(e) if is_foreign_key_violation(&e) => {
                            return Err(StoreError::NotFound(format!(
                                "snapshot {} or share instance {}",
                                inst.snapshot_id, inst.share_instance_id
                            )));
                        }
                        Err(e) if is_unique_violation(&e) => {
                            return Err(StoreError::Conflict(format!(
                                "snapshot instance {} already exists",
                                inst.id
                            )));
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                enqueue_operations(&mut tx, &operations).await?;
                tx.commit().await?;
                Ok(added)
            }

            /// Applies one snapshot instance compare-and-set inside the caller's
            /// transaction: the updated row, or the `Conflict`/`NotFound` that explains why
            /// it did not apply (the caller then drops the transaction).
            async fn apply_snapshot_cas(
                conn: &mut DbConn,
                cas: &SnapshotInstanceCas,
                now: DateTime<Utc>,
            ) -> Result<SnapshotInstanceRow> {
                let u = &cas.update;
                let statuses = cas.expected_statuses.join(", ");
                let condition = if cas.expected_statuses.is_empty() {
                    String::new()
                } else {
                    format!(
                        " AND status IN ({})",
                        placeholders(8, cas.expected_statuses.len())
                    )
                };
                let columns = snapshot_instance_columns!();
                let sql = format!(
                    "UPDATE share_snapshot_instances SET \
                         status = COALESCE($1, status), \
                         progress = CASE WHEN $2 THEN $3 ELSE progress END, \
                         provider_location = CASE WHEN $4 THEN $5 \
                             ELSE provider_location END, \
                         updated_at = $6 \
                     WHERE id = $7{condition} RETURNING {columns}"
                );
                let mut query = sqlx::query(&sql)
                    .bind(u.status.clone())
                    .bind(u.progress.is_some())
                    .bind(u.progress.clone().flatten())
                    .bind(u.provider_location.is_some())
                    .bind(u.provider_location.clone().flatten())
                    .bind(DbTime::new(now))
                    .bind(DbUuid(cas.id));
                for status in &cas.expected_statuses {
                    query = query.bind(status.clone());
                }
                if let Some(row) = query.fetch_optional(&mut *conn).await? {
                    return instance_from_row(&row);
                }
                let current =
                    sqlx::query("SELECT status FROM share_snapshot_instances WHERE id = $1")
                        .bind(DbUuid(cas.id))
                        .fetch_optional(&mut *conn)
                        .await?;
                Err(match current {
                    Some(row) => StoreError::Conflict(format!(
                        "snapshot instance {} has status {}, expected one of [{statuses}]",
                        cas.id,
                        get::<String>(&row, "status")?
                    )),
                    None => StoreError::NotFound(format!("snapshot instance {}", cas.id)),
                })
            }

            pub(super) async fn update_snapshot_instances_if(
                store: &$store,
                updates: Vec<SnapshotInstanceCas>,
                operations: Vec<NewOperation>,
                now: DateTime<Utc>,
            ) -> Result<Vec<SnapshotInstanceRow>> {
                // Id order, so concurrent callers lock rows in the same order.
                let mut order: Vec<usize> = (0..updates.len()).collect();
                order.sort_by_key(|&i| updates[i].id);
                let mut results: Vec<Option<SnapshotInstanceRow>> = vec![None; updates.len()];
                let mut tx = store.begin_write().await?;
                for i in order {
                    // An error drops `tx`: nothing is written.
                    results[i] = Some(apply_snapshot_cas(&mut tx, &updates[i], now).await?);
                }
                enqueue_operations(&mut tx, &operations).await?;
                tx.commit().await?;
                Ok(results.into_iter().flatten().collect())
            }

            pub(super) async fn update_share_and_snapshot_instances_if(
                store: &$store,
                share_updates: Vec<ShareInstanceCas>,
                snapshot_updates: Vec<SnapshotInstanceCas>,
                operations: Vec<NewOperation>,
                now: DateTime<Utc>,
            ) -> Result<()> {
                let mut share_updates = share_updates;
                share_updates.sort_by_key(|c| c.id);
                let mut snapshot_updates = snapshot_updates;
                snapshot_updates.sort_by_key(|c| c.id);
                let mut tx = store.begin_write().await?;
                // Share instances first, then snapshot instances, each in id order: every
                // caller takes row locks in the same order.
                for cas in &share_updates {
                    let statuses: Vec<&str> =
                        cas.expected_statuses.iter().map(String::as_str).collect();
                    let cond = InstanceCondition {
                        statuses: &statuses,
                        replica_state: cas.expected_replica_state.as_ref().map(Option::as_deref),
                    };
                    if apply_instance_update(&mut tx, cas.id, &cond, &cas.update, now)
                        .await?
                        .is_none()
                    {
                        let err = instance_cas_lost_in(&mut tx, cas.id, &cond.describe()).await;
                        drop(tx);
                        return Err(err);
                    }
                }
                for cas in &snapshot_updates {
                    apply_snapshot_cas(&mut tx, cas, now).await?;
                }
                enqueue_operations(&mut tx, &operations).await?;
                tx.commit().await?;
                Ok(())
            }

            pub(super) async fn delete_snapshot_instance(
                store: &$store,
                instance_id: Uuid,
                release: QuotaRequest,
                now: DateTime<Utc>,
            ) -> Result<bool> {
                let mut tx = store.begin_write().await?;
                let row = sqlx::query(
                    "SELECT snapshot_id FROM share_snapshot_instances WHERE id = $1",
                )
                .bind(DbUuid(instance_id))
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    return Ok(false);
                };
                let snapshot_id = uuid(&row, "snapshot_id")?;
                // Serialises removers of the same snapshot's instances.
                lock_row(&mut tx, "share_snapshots", snapshot_id).await?;
                let deleted = sqlx::query("DELETE FROM share_snapshot_instances WHERE id = $1")
                    .bind(DbUuid(instance_id))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if deleted == 0 {
                    return Ok(false);
                }
                let left = sqlx::query(
                    "SELECT COUNT(*) AS n FROM share_snapshot_instances WHERE snapshot_id = $1",
                )
                .bind(DbUuid(snapshot_id))
                .fetch_one(&mut *tx)
                .await?;
                let removed = get::<i64>(&left, "n")? == 0;
                if removed {
                    // Metadata and access rules go with it (ON DELETE CASCADE).
                    let gone = sqlx::query("DELETE FROM share_snapshots WHERE id = $1")
                        .bind(DbUuid(snapshot_id))
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if gone > 0 {
                        super::quota_sql::charge_in(&mut tx, &release, now).await?;
                    }
                }
                tx.commit().await?;
                Ok(removed)
            }

            // ---- export locations ----

            async fn select_export_locations(
                conn: &mut DbConn,
                instance_id: Uuid,
            ) -> Result<Vec<SnapshotExportLocationRow>> {
                let rows = sqlx::query(
                    "SELECT id, snapshot_instance_id, path, is_admin_only, created_at, \
                         updated_at \
                     FROM share_snapshot_instance_export_locations \
                     WHERE snapshot_instance_id = $1 ORDER BY position, id",
                )
                .bind(DbUuid(instance_id))
                .fetch_all(&mut *conn)
                .await?;
                rows.iter().map(export_location_from_row).collect()
            }

            pub(super) async fn replace_snapshot_export_locations(
                store: &$store,
                instance_id: Uuid,
                locations: Vec<NewSnapshotExportLocation>,
                now: DateTime<Utc>,
            ) -> Result<Vec<SnapshotExportLocationRow>> {
                let now = DbTime::new(now);
                let mut seen = BTreeSet::new();
                let locations: Vec<NewSnapshotExportLocation> = locations
                    .into_iter()
                    .filter(|l| seen.insert(l.path.clone()))
                    .collect();
                let mut tx = store.begin_write().await?;
                let exists = sqlx::query(
                    "UPDATE share_snapshot_instances SET updated_at = updated_at WHERE id = $1",
                )
                .bind(DbUuid(instance_id))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if exists == 0 {
                    return Err(StoreError::NotFound(format!(
                        "snapshot instance {instance_id}"
                    )));
                }
                let current = select_export_locations(&mut tx, instance_id).await?;
                for old in current.iter().filter(|l| !seen.contains(&l.path)) {
                    sqlx::query(
                        "DELETE FROM share_snapshot_instance_export_locations WHERE id = $1",
                    )
                    .bind(DbUuid(old.id))
                    .execute(&mut *tx)
                    .await?;
                }
                for (position, loc) in locations.iter().enumerate() {
                    let position = i32::try_from(position)
                        .map_err(|_| StoreError::other("too many export locations"))?;
                    sqlx::query(
                        "INSERT INTO share_snapshot_instance_export_locations \
                             (id, snapshot_instance_id, path, is_admin_only, position, \
                              created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $6) \
                         ON CONFLICT (snapshot_instance_id, path) DO UPDATE SET \
                             is_admin_only = excluded.is_admin_only, \
                             position = excluded.position, updated_at = excluded.updated_at",
                    )
                    .bind(DbUuid(Uuid::new_v4()))
                    .bind(DbUuid(instance_id))
                    .bind(&loc.path)
                    .bind(loc.is_admin_only)
                    .bind(position)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                let result = select_export_locations(&mut tx, instance_id).await?;
                tx.commit().await?;
                Ok(result)
            }

            pub(super) async fn list_snapshot_export_locations(
                store: &$store,
                instance_id: Uuid,
            ) -> Result<Vec<SnapshotExportLocationRow>> {
                let mut conn = store.pool.acquire().await?;
                select_export_locations(&mut conn, instance_id).await
            }

            // ---- access rules ----

            async fn read_access_rule(
                conn: &mut DbConn,
                id: Uuid,
            ) -> Result<SnapshotAccessRuleRow> {
                let rows = sqlx::query(concat!(
                    snapshot_access_select!(),
                    "WHERE r.id = $1 ORDER BY m.snapshot_instance_id"
                ))
                .bind(DbUuid(id))
                .fetch_all(&mut *conn)
                .await?;
                fold_access_rules(&rows)?
                    .pop()
                    .ok_or_else(|| StoreError::NotFound(format!("snapshot access rule {id}")))
            }

            pub(super) async fn insert_snapshot_access_rule(
                store: &$store,
                new: NewSnapshotAccessRule,
            ) -> Result<SnapshotAccessRuleRow> {
                let now = DbTime::new(new.now);
                let instance_ids: BTreeSet<Uuid> = new.instance_ids.iter().copied().collect();
                let mut tx = store.begin_write().await?;
                let inserted = sqlx::query(
                    "INSERT INTO share_snapshot_access_rules \
                         (id, snapshot_id, access_type, access_to, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(DbUuid(new.id))
                .bind(DbUuid(new.snapshot_id))
                .bind(&new.access_type)
                .bind(&new.access_to)
                .bind(now)
                .execute(&mut *tx)
                .await;
                match inserted {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => {
                        return Err(StoreError::Conflict(format!(
                            "snapshot {} already has a rule for {} {}",
                            new.snapshot_id, new.access_type, new.access_to
                        )));
                    }
                    Err(e) if is_foreign_key_violation(&e) => {
                        return Err(StoreError::NotFound(format!("snapshot {}", new.snapshot_id)));
                    }
                    Err(e) => return Err(e.into()),
                }
                for instance_id in &instance_ids {
                    let mapped = sqlx::query(
                        "INSERT INTO share_snapshot_instance_access_map \
                             (access_id, snapshot_instance_id, state, created_at) \
                         VALUES ($1, $2, 'queued_to_apply', $3)",
                    )
                    .bind(DbUuid(new.id))
                    .bind(DbUuid(*instance_id))
                    .bind(now)
                    .execute(&mut *tx)
                    .await;
                    match mapped {
                        Ok(_) => {}
                        Err(e) if is_foreign_key_violation(&e) => {
                            return Err(StoreError::NotFound(format!(
                                "snapshot instance {instance_id}"
                            )));
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                enqueue_operations(&mut tx, &new.operations).await?;
                let row = read_access_rule(&mut tx, new.id).await?;
                tx.commit().await?;
                Ok(row)
            }

            pub(super) async fn get_snapshot_access_rule(
                store: &$store,
                id: Uuid,
            ) -> Result<SnapshotAccessRuleRow> {
                let mut conn = store.pool.acquire().await?;
                read_access_rule(&mut conn, id).await
            }

            pub(super) async fn list_snapshot_access_rules(
                store: &$store,
                snapshot_id: Uuid,
            ) -> Result<Vec<SnapshotAccessRuleRow>> {
                let rows = sqlx::query(concat!(
                    snapshot_access_select!(),
                    "WHERE r.snapshot_id = $1 ORDER BY r.created_at, r.id, m.snapshot_instance_id"
                ))
                .bind(DbUuid(snapshot_id))
                .fetch_all(&store.pool)
                .await?;
                fold_access_rules(&rows)
            }

            pub(super) async fn set_snapshot_instance_access_state(
                store: &$store,
                access_id: Uuid,
                instance_id: Uuid,
                expected: &[&str],
                state: &str,
                now: DateTime<Utc>,
            ) -> Result<()> {
                let current = sqlx::query(
                    "SELECT state FROM share_snapshot_instance_access_map \
                     WHERE access_id = $1 AND snapshot_instance_id = $2",
                )
                .bind(DbUuid(access_id))
                .bind(DbUuid(instance_id))
                .fetch_optional(&store.pool)
                .await?;
                let Some(current) = current else {
                    return Err(StoreError::NotFound(format!(
                        "mapping of snapshot access rule {access_id} to {instance_id}"
                    )));
                };
                let current: String = get(&current, "state")?;
                if !expected.is_empty() && !expected.contains(&current.as_str()) {
                    return Err(StoreError::Conflict(format!(
                        "snapshot access rule {access_id} is {current} on {instance_id}"
                    )));
                }
                // Compare-and-set on the state read above.
                let done = sqlx::query(
                    "UPDATE share_snapshot_instance_access_map SET state = $1, updated_at = $2 \
                     WHERE access_id = $3 AND snapshot_instance_id = $4 AND state = $5",
                )
                .bind(state)
                .bind(DbTime::new(now))
                .bind(DbUuid(access_id))
                .bind(DbUuid(instance_id))
                .bind(&current)
                .execute(store.writer())
                .await?
                .rows_affected();
                if done == 0 {
                    return Err(StoreError::Conflict(format!(
                        "snapshot access rule {access_id} changed on {instance_id}"
                    )));
                }
                Ok(())
            }

            pub(super) async fn mark_snapshot_access_rule_for_deny(
                store: &$store,
                access_id: Uuid,
                operations: Vec<NewOperation>,
                now: DateTime<Utc>,
            ) -> Result<SnapshotAccessRuleRow> {
                let mut tx = store.begin_write().await?;
                if !lock_row(&mut tx, "share_snapshot_access_rules", access_id).await? {
                    return Err(StoreError::NotFound(format!(
                        "snapshot access rule {access_id}"
                    )));
                }
                sqlx::query(
                    "UPDATE share_snapshot_instance_access_map \
                     SET state = 'queued_to_deny', updated_at = $1 WHERE access_id = $2",
                )
                .bind(DbTime::new(now))
                .bind(DbUuid(access_id))
                .execute(&mut *tx)
                .await?;
                enqueue_operations(&mut tx, &operations).await?;
                let row = read_access_rule(&mut tx, access_id).await?;
                tx.commit().await?;
                Ok(row)
            }

            pub(super) async fn remove_snapshot_instance_access(
                store: &$store,
                access_id: Uuid,
                instance_id: Uuid,
            ) -> Result<bool> {
                let mut tx = store.begin_write().await?;
                if !lock_row(&mut tx, "share_snapshot_access_rules", access_id).await? {
                    return Err(StoreError::NotFound(format!(
                        "snapshot access rule {access_id}"
                    )));
                }
                sqlx::query(
                    "DELETE FROM share_snapshot_instance_access_map \
                     WHERE access_id = $1 AND snapshot_instance_id = $2",
                )
                .bind(DbUuid(access_id))
                .bind(DbUuid(instance_id))
                .execute(&mut *tx)
                .await?;
                let left = sqlx::query(
                    "SELECT COUNT(*) AS n FROM share_snapshot_instance_access_map \
                     WHERE access_id = $1",
                )
                .bind(DbUuid(access_id))
                .fetch_one(&mut *tx)
                .await?;
                let removed = get::<i64>(&left, "n")? == 0;
                if removed {
                    sqlx::query("DELETE FROM share_snapshot_access_rules WHERE id = $1")
                        .bind(DbUuid(access_id))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(removed)
            }
        }
    };
}
pub(crate) use snapshot_sql;
