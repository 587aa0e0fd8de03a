//! Share lifecycle queries: the recycle bin (soft delete, restore, the purge's scan of expired
//! shares), the export-path lookup that manage uses to refuse a path already managed, and the
//! completion of a manage. Expanded for each engine by [`lifecycle_sql!`] from inside
//! [`impl_store!`](crate::sql_impl::impl_store). Same rules as `sql_impl.rs`: one query text
//! for both engines, `$N` placeholders, `DbTime`/`DbUuid` binds.
//!
//! Persisted: the `is_soft_deleted` and `scheduled_to_be_deleted_at` columns of `shares`
//! (migration 6). Soft delete and restore are single conditional `UPDATE`s whose `WHERE`
//! repeats the checks on the share's instances, so a status change that races with them
//! either happens first (and the call is refused) or after.

/// Expands the lifecycle query functions as module `lifecycle_sql` next to `store_impl`.
macro_rules! lifecycle_sql {
    ($store:ident) => {
        /// Recycle bin, export-path lookup, manage completion.
        mod lifecycle_sql {
            use chrono::{DateTime, Utc};
            use uuid::Uuid;

            use super::share_sql::{
                InstanceCondition, apply_instance_update, fold_shares, get_share,
                instance_cas_lost_in, instance_from_row,
            };
            use super::sql_common::{DbRow, placeholders};
            use super::$store;
            use $crate::codec::{DbTime, DbUuid};
            use $crate::error::{Result, StoreError};
            use $crate::model_shares::{
                QuotaRequest, ShareInstanceRow, ShareInstanceUpdate, ShareRow,
            };
            use $crate::sql_shares::{instance_columns, share_select};

            /// Why a conditional share update matched no row: `NotFound` when the share
            /// is missing, else `Conflict` with `what`.
            async fn share_cas_lost(store: &$store, id: Uuid, what: &str) -> StoreError {
                match get_share(store, id).await {
                    Ok(_) => StoreError::Conflict(format!("share {id}: {what}")),
                    Err(err) => err,
                }
            }

            pub(super) async fn soft_delete_share(
                store: &$store,
                id: Uuid,
                statuses: &[&str],
                scheduled_to_be_deleted_at: DateTime<Utc>,
                now: DateTime<Utc>,
            ) -> Result<ShareRow> {
                let sql = format!(
                    "UPDATE shares SET is_soft_deleted = $1, scheduled_to_be_deleted_at = $2, \
                         updated_at = $3 \
                     WHERE id = $4 AND is_soft_deleted = $5 AND NOT EXISTS ( \
                         SELECT 1 FROM share_instances i \
                         WHERE i.share_id = shares.id AND i.status NOT IN ({}))",
                    placeholders(6, statuses.len().max(1))
                );
                let mut query = sqlx::query(&sql)
                    .bind(true)
                    .bind(DbTime::new(scheduled_to_be_deleted_at))
                    .bind(DbTime::new(now))
                    .bind(DbUuid(id))
                    .bind(false);
                if statuses.is_empty() {
                    // No status qualifies: only a share without instances matches.
                    query = query.bind("");
                }
                for status in statuses {
                    query = query.bind(*status);
                }
                let updated = query.execute(store.writer()).await?.rows_affected();
                if updated == 0 {
                    return Err(share_cas_lost(
                        store,
                        id,
                        &format!("already soft deleted or an instance is not in {statuses:?}"),
                    )
                    .await);
                }
                get_share(store, id).await
            }

            pub(super) async fn restore_share(
                store: &$store,
                id: Uuid,
                blocking_statuses: &[&str],
                now: DateTime<Utc>,
            ) -> Result<ShareRow> {
                let sql = format!(
                    "UPDATE shares SET is_soft_deleted = $1, scheduled_to_be_deleted_at = NULL, \
                         updated_at = $2 \
                     WHERE id = $3 AND is_soft_deleted = $4 AND NOT EXISTS ( \
                         SELECT 1 FROM share_instances i \
                         WHERE i.share_id = shares.id AND i.status IN ({}))",
                    placeholders(5, blocking_statuses.len().max(1))
                );
                let mut query = sqlx::query(&sql)
                    .bind(false)
                    .bind(DbTime::new(now))
                    .bind(DbUuid(id))
                    .bind(true);
                if blocking_statuses.is_empty() {
                    query = query.bind("");
                }
                for status in blocking_statuses {
                    query = query.bind(*status);
                }
                let updated = query.execute(store.writer()).await?.rows_affected();
                if updated == 0 {
                    return Err(share_cas_lost(
                        store,
                        id,
                        &format!("not soft deleted or an instance is in {blocking_statuses:?}"),
                    )
                    .await);
                }
                get_share(store, id).await
            }

            pub(super) async fn list_expired_soft_deleted_shares(
                store: &$store,
                now: DateTime<Utc>,
            ) -> Result<Vec<ShareRow>> {
                let rows: Vec<DbRow> = sqlx::query(concat!(
                    share_select!(),
                    "WHERE s.is_soft_deleted = $1 AND s.scheduled_to_be_deleted_at <= $2 \
                     ORDER BY s.scheduled_to_be_deleted_at, s.id, m.key"
                ))
                .bind(true)
                .bind(DbTime::new(now))
                .fetch_all(&store.pool)
                .await?;
                fold_shares(&rows)
            }

            pub(super) async fn list_share_instances_by_export_path(
                store: &$store,
                host: &str,
                path: &str,
            ) -> Result<Vec<ShareInstanceRow>> {
                // `host` or any pool of it (`host#...`, the byte range ['host#', 'host$') as
                // in `list_share_instances_on_host`).
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    instance_columns!(),
                    " FROM share_instances \
                     WHERE (host = $1 OR (host >= $2 AND host < $3)) AND id IN ( \
                         SELECT share_instance_id FROM share_instance_export_locations \
                         WHERE path = $4) \
                     ORDER BY created_at, id"
                ))
                .bind(host)
                .bind(format!("{host}#"))
                .bind(format!("{host}$"))
                .bind(path)
                .fetch_all(&store.pool)
                .await?;
                rows.iter().map(instance_from_row).collect()
            }

            pub(super) async fn finish_share_manage(
                store: &$store,
                instance_id: Uuid,
                size_gb: i64,
                quota: QuotaRequest,
                update: ShareInstanceUpdate,
                now: DateTime<Utc>,
            ) -> Result<ShareInstanceRow> {
                let statuses = ["manage_starting"];
                let cond = InstanceCondition {
                    statuses: &statuses,
                    replica_state: None,
                };
                let mut tx = store.begin_write().await?;
                let Some(instance) =
                    apply_instance_update(&mut tx, instance_id, &cond, &update, now).await?
                else {
                    let err = instance_cas_lost_in(&mut tx, instance_id, &cond.describe()).await;
                    return Err(err);
                };
                sqlx::query("UPDATE shares SET size_gb = $1, updated_at = $2 WHERE id = $3")
                    .bind(size_gb)
                    .bind(DbTime::new(now))
                    .bind(DbUuid(instance.share_id))
                    .execute(&mut *tx)
                    .await?;
                super::quota_sql::charge_in(&mut tx, &quota, now).await?;
                tx.commit().await?;
                Ok(instance)
            }
        }
    };
}
pub(crate) use lifecycle_sql;
