//! Replica queries: multi-instance compare-and-set (promotion), replica metadata, the
//! per-share replica lock and the sync history, expanded for each engine by [`replica_sql!`]
//! from inside [`impl_store!`](crate::sql_impl::impl_store). Same rules as `sql_impl.rs`: one
//! query text for both engines, `$N` placeholders, `DbTime`/`DbUuid` binds.
//!
//! Persisted: `share_instance_metadata` (goes with its instance by `ON DELETE CASCADE`),
//! `share_locks` (one row per locked share, no foreign key: a lock may briefly outlive its
//! share) and `replication_history` (goes with its instance). Nothing is derived here.
//!
//! The lock is a lease, not a session: `try_lock_share` is a single upsert whose conflict
//! branch only fires for the same holder or an expired lease, so two nodes racing for a free
//! lock serialise on the primary key and exactly one of them gets its row back.

/// Columns of `replication_history`, in `SELECT` lists (`trigger` is quoted: it is an SQL
/// keyword on both engines).
macro_rules! history_columns {
    () => {
        "id, share_instance_id, source_instance_id, \"trigger\", started_at, finished_at, \
         source_point, version, files_total, bytes_total, files_transferred, \
         bytes_transferred, files_deleted, outcome, detail, wire_bytes"
    };
}
pub(crate) use history_columns;

/// At most this many ids per `IN (...)` list, well below both engines' parameter limits.
pub(crate) const IN_LIST_CHUNK: usize = 500;

/// Expands the replica query functions as module `replica_sql` next to `store_impl`.
macro_rules! replica_sql {
    ($store:ident) => {
        /// Multi-instance compare-and-set, replica metadata, share locks, sync history.
        mod replica_sql {
            use std::collections::BTreeMap;
            use std::time::Duration;

            use chrono::{DateTime, Utc};
            use uuid::Uuid;

            use super::share_sql::{
                InstanceCondition, apply_instance_update, instance_cas_lost_in,
            };
            use super::sql_common::{
                DbConn, DbRow, enqueue_operations, get, lock_row, opt_time, opt_uuid, placeholders,
                time, uuid,
            };
            use super::$store;
            use $crate::codec::{DbTime, DbUuid};
            use $crate::error::{
                Result, StoreError, is_foreign_key_violation, is_unique_violation,
            };
            use $crate::model::NewOperation;
            use $crate::model_shares::{
                ReplicaSyncStatus, ReplicationRecord, ShareInstanceCas, ShareInstanceRow,
            };
            use $crate::sql_replicas::{IN_LIST_CHUNK, history_columns};

            // ---- multi-instance compare-and-set ----

            pub(super) async fn update_share_instances_if(
                store: &$store,
                updates: Vec<ShareInstanceCas>,
                operations: Vec<NewOperation>,
                now: DateTime<Utc>,
            ) -> Result<Vec<ShareInstanceRow>> {
                // Apply in id order (stable, so repeated ids keep the caller's order): two
                // concurrent calls over the same instances then take the row locks in the
                // same order and cannot deadlock on PostgreSQL.
                let mut order: Vec<usize> = (0..updates.len()).collect();
                order.sort_by_key(|&i| updates[i].id);
                let mut results: Vec<Option<ShareInstanceRow>> = vec![None; updates.len()];
                let mut tx = store.begin_write().await?;
                for i in order {
                    let cas = &updates[i];
                    let statuses: Vec<&str> =
                        cas.expected_statuses.iter().map(String::as_str).collect();
                    let cond = InstanceCondition {
                        statuses: &statuses,
                        replica_state: cas.expected_replica_state.as_ref().map(Option::as_deref),
                    };
                    let applied =
                        apply_instance_update(&mut tx, cas.id, &cond, &cas.update, now).await?;
                    let Some(row) = applied else {
                        // Diagnose inside the transaction, then drop it: nothing is written.
                        let err = instance_cas_lost_in(&mut tx, cas.id, &cond.describe()).await;
                        drop(tx);
                        return Err(err);
                    };
                    results[i] = Some(row);
                }
                enqueue_operations(&mut tx, &operations).await?;
                tx.commit().await?;
                Ok(results.into_iter().flatten().collect())
            }

            // ---- replica metadata ----

            async fn select_metadata(
                conn: &mut DbConn,
                instance_id: Uuid,
            ) -> Result<BTreeMap<String, String>> {
                let rows = sqlx::query(
                    "SELECT key, value FROM share_instance_metadata \
                     WHERE share_instance_id = $1 ORDER BY key",
                )
                .bind(DbUuid(instance_id))
                .fetch_all(&mut *conn)
                .await?;
                rows.iter()
                    .map(|r| Ok((get(r, "key")?, get(r, "value")?)))
                    .collect()
            }

            pub(super) async fn get_share_instance_metadata(
                store: &$store,
                instance_id: Uuid,
            ) -> Result<BTreeMap<String, String>> {
                let mut conn = store.pool.acquire().await?;
                select_metadata(&mut conn, instance_id).await
            }

            pub(super) async fn list_share_instance_metadata(
                store: &$store,
                instance_ids: &[Uuid],
            ) -> Result<BTreeMap<Uuid, BTreeMap<String, String>>> {
                let mut out: BTreeMap<Uuid, BTreeMap<String, String>> = BTreeMap::new();
                for chunk in instance_ids.chunks(IN_LIST_CHUNK) {
                    let sql = format!(
                        "SELECT share_instance_id, key, value FROM share_instance_metadata \
                         WHERE share_instance_id IN ({})",
                        placeholders(1, chunk.len())
                    );
                    let mut query = sqlx::query(&sql);
                    for id in chunk {
                        query = query.bind(DbUuid(*id));
                    }
                    for row in query.fetch_all(&store.pool).await? {
                        out.entry(uuid(&row, "share_instance_id")?)
                            .or_default()
                            .insert(get(&row, "key")?, get(&row, "value")?);
                    }
                }
                Ok(out)
            }

            pub(super) async fn set_share_instance_metadata(
                store: &$store,
                instance_id: Uuid,
                metadata: &BTreeMap<String, String>,
                replace_all: bool,
                now: DateTime<Utc>,
            ) -> Result<BTreeMap<String, String>> {
                let now = DbTime::new(now);
                let mut tx = store.begin_write().await?;
                // Serialises writers of the same instance's metadata, so `replace_all`
                // removes exactly the keys that are there.
                if !lock_row(&mut tx, "share_instances", instance_id).await? {
                    return Err(StoreError::NotFound(format!(
                        "share instance {instance_id}"
                    )));
                }
                if replace_all {
                    let current = select_metadata(&mut tx, instance_id).await?;
                    for key in current.keys().filter(|k| !metadata.contains_key(*k)) {
                        sqlx::query(
                            "DELETE FROM share_instance_metadata \
                             WHERE share_instance_id = $1 AND key = $2",
                        )
                        .bind(DbUuid(instance_id))
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                for (key, value) in metadata {
                    // An unchanged value keeps its `updated_at`.
                    sqlx::query(
                        "INSERT INTO share_instance_metadata \
                             (share_instance_id, key, value, created_at) \
                         VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (share_instance_id, key) DO UPDATE SET \
                             value = excluded.value, updated_at = $4 \
                         WHERE share_instance_metadata.value <> excluded.value",
                    )
                    .bind(DbUuid(instance_id))
                    .bind(key)
                    .bind(value)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                let result = select_metadata(&mut tx, instance_id).await?;
                tx.commit().await?;
                Ok(result)
            }

            pub(super) async fn delete_share_instance_metadata_key(
                store: &$store,
                instance_id: Uuid,
                key: &str,
            ) -> Result<()> {
                let deleted = sqlx::query(
                    "DELETE FROM share_instance_metadata \
                     WHERE share_instance_id = $1 AND key = $2",
                )
                .bind(DbUuid(instance_id))
                .bind(key)
                .execute(store.writer())
                .await?
                .rows_affected();
                if deleted > 0 {
                    return Ok(());
                }
                let exists = sqlx::query("SELECT id FROM share_instances WHERE id = $1")
                    .bind(DbUuid(instance_id))
                    .fetch_optional(&store.pool)
                    .await?;
                Err(match exists {
                    Some(_) => StoreError::NotFound(format!(
                        "metadata key {key} of share instance {instance_id}"
                    )),
                    None => StoreError::NotFound(format!("share instance {instance_id}")),
                })
            }

            // ---- per-share replica lock ----

            pub(super) async fn try_lock_share(
                store: &$store,
                share_id: Uuid,
                holder: &str,
                now: DateTime<Utc>,
                lease: Duration,
            ) -> Result<bool> {
                let lease = chrono::TimeDelta::from_std(lease)
                    .map_err(|e| StoreError::other(format!("lease {lease:?} too long: {e}")))?;
                let lease_until = now
                    .checked_add_signed(lease)
                    .ok_or_else(|| StoreError::other(format!("lease {lease} too long")))?;
                // One statement: a free share inserts the row; a held one is taken over
                // only by its holder (renewal) or once the lease has run out. When the
                // conflict branch's WHERE fails, no row comes back.
                let row = sqlx::query(
                    "INSERT INTO share_locks (share_id, holder, lease_until) \
                     VALUES ($1, $2, $3) \
                     ON CONFLICT (share_id) DO UPDATE SET \
                         holder = excluded.holder, lease_until = excluded.lease_until \
                     WHERE share_locks.holder = excluded.holder \
                        OR share_locks.lease_until < $4 \
                     RETURNING holder",
                )
                .bind(DbUuid(share_id))
                .bind(holder)
                .bind(DbTime::new(lease_until))
                .bind(DbTime::new(now))
                .fetch_optional(store.writer())
                .await?;
                match row {
                    Some(row) => Ok(get::<String>(&row, "holder")? == holder),
                    None => Ok(false),
                }
            }

            pub(super) async fn unlock_share(
                store: &$store,
                share_id: Uuid,
                holder: &str,
            ) -> Result<()> {
                sqlx::query("DELETE FROM share_locks WHERE share_id = $1 AND holder = $2")
                    .bind(DbUuid(share_id))
                    .bind(holder)
                    .execute(store.writer())
                    .await?;
                Ok(())
            }

            // ---- sync history ----

            fn record_from_row(row: &DbRow) -> Result<ReplicationRecord> {
                Ok(ReplicationRecord {
                    id: uuid(row, "id")?,
                    share_instance_id: uuid(row, "share_instance_id")?,
                    source_instance_id: opt_uuid(row, "source_instance_id")?,
                    trigger: get(row, "trigger")?,
                    started_at: time(row, "started_at")?,
                    finished_at: time(row, "finished_at")?,
                    source_point: opt_time(row, "source_point")?,
                    version: get(row, "version")?,
                    files_total: get(row, "files_total")?,
                    bytes_total: get(row, "bytes_total")?,
                    files_transferred: get(row, "files_transferred")?,
                    bytes_transferred: get(row, "bytes_transferred")?,
                    files_deleted: get(row, "files_deleted")?,
                    outcome: get(row, "outcome")?,
                    detail: get(row, "detail")?,
                    wire_bytes: get(row, "wire_bytes")?,
                })
            }

            pub(super) async fn insert_replication_record(
                store: &$store,
                record: ReplicationRecord,
            ) -> Result<()> {
                let inserted = sqlx::query(concat!(
                    "INSERT INTO replication_history (",
                    history_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
                ))
                .bind(DbUuid(record.id))
                .bind(DbUuid(record.share_instance_id))
                .bind(record.source_instance_id.map(DbUuid))
                .bind(&record.trigger)
                .bind(DbTime::new(record.started_at))
                .bind(DbTime::new(record.finished_at))
                .bind(record.source_point.map(DbTime::new))
                .bind(record.version)
                .bind(record.files_total)
                .bind(record.bytes_total)
                .bind(record.files_transferred)
                .bind(record.bytes_transferred)
                .bind(record.files_deleted)
                .bind(&record.outcome)
                .bind(&record.detail)
                .bind(record.wire_bytes)
                .execute(store.writer())
                .await;
                match inserted {
                    Ok(_) => Ok(()),
                    Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                        "replication record {} already exists",
                        record.id
                    ))),
                    Err(e) if is_foreign_key_violation(&e) => Err(StoreError::NotFound(format!(
                        "share instance {}",
                        record.share_instance_id
                    ))),
                    Err(e) => Err(e.into()),
                }
            }

            pub(super) async fn list_replica_sync_status(
                store: &$store,
            ) -> Result<Vec<ReplicaSyncStatus>> {
                // Each subquery walks the history index backwards from the newest row of
                // one replica, so a long history costs nothing here.
                let rows = sqlx::query(
                    "SELECT i.id, i.replica_state, \
                     (SELECT h.id FROM replication_history h WHERE h.share_instance_id = i.id \
                      ORDER BY h.started_at DESC, h.id DESC LIMIT 1) AS latest_id, \
                     (SELECT h.source_point FROM replication_history h \
                      WHERE h.share_instance_id = i.id AND h.outcome = 'clean' \
                      ORDER BY h.started_at DESC, h.id DESC LIMIT 1) AS clean_point \
                     FROM share_instances i \
                     WHERE i.replica_state IS NOT NULL AND i.replica_state <> 'active' \
                     ORDER BY i.id",
                )
                .fetch_all(&store.pool)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                let mut latest_ids = Vec::new();
                for row in &rows {
                    if let Some(id) = opt_uuid(row, "latest_id")? {
                        latest_ids.push(id);
                    }
                    out.push(ReplicaSyncStatus {
                        instance_id: uuid(row, "id")?,
                        replica_state: get(row, "replica_state")?,
                        latest: None,
                        last_clean_source_point: opt_time(row, "clean_point")?,
                    });
                }
                let mut latest: BTreeMap<Uuid, ReplicationRecord> = BTreeMap::new();
                for chunk in latest_ids.chunks(IN_LIST_CHUNK) {
                    let sql = format!(
                        "SELECT {} FROM replication_history WHERE id IN ({})",
                        history_columns!(),
                        placeholders(1, chunk.len())
                    );
                    let mut query = sqlx::query(&sql);
                    for id in chunk {
                        query = query.bind(DbUuid(*id));
                    }
                    for row in query.fetch_all(&store.pool).await? {
                        let record = record_from_row(&row)?;
                        latest.insert(record.share_instance_id, record);
                    }
                }
                for status in &mut out {
                    status.latest = latest.remove(&status.instance_id);
                }
                Ok(out)
            }

            pub(super) async fn list_replication_history(
                store: &$store,
                instance_id: Uuid,
                limit: i64,
            ) -> Result<Vec<ReplicationRecord>> {
                // SQLite reads a negative LIMIT as "no limit", PostgreSQL rejects it.
                if limit <= 0 {
                    return Ok(Vec::new());
                }
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    history_columns!(),
                    " FROM replication_history WHERE share_instance_id = $1 \
                     ORDER BY started_at DESC, id DESC LIMIT $2"
                ))
                .bind(DbUuid(instance_id))
                .bind(limit)
                .fetch_all(&store.pool)
                .await?;
                rows.iter().map(record_from_row).collect()
            }
        }
    };
}
pub(crate) use replica_sql;
