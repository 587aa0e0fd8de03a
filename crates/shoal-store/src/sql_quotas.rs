//! Quota queries (overrides, usages, reservations), expanded for each engine by
//! [`quota_sql!`] from inside [`impl_store!`](crate::sql_impl::impl_store).
//!
//! Usage rows are created on demand (`INSERT ... ON CONFLICT DO NOTHING`). Every charge or
//! reservation of a positive delta is ONE conditional statement per resource,
//! `UPDATE quota_usages SET ... WHERE ... AND (limit < 0 OR in_use + reserved + delta <=
//! limit)`, so two concurrent callers can never both squeeze under the limit: SQLite
//! serialises writers, and PostgreSQL re-checks the WHERE clause against the row version a
//! concurrent writer committed. Zero rows means the limit would be exceeded, and the caller's
//! transaction is rolled back. Counters are clamped at zero with `CASE WHEN` (portable where
//! `MAX(a, b)` and `GREATEST` are not). Resources are always touched in sorted order, so
//! concurrent transactions lock usage rows in the same order and cannot deadlock on them.

/// Expands the quota query functions as module `quota_sql` next to `store_impl`.
macro_rules! quota_sql {
    ($store:ident) => {
        /// Quota overrides, usages and reservations.
        mod quota_sql {
            use std::collections::BTreeMap;

            use chrono::{DateTime, Utc};
            use uuid::Uuid;

            use super::$store;
            use super::sql_common::{get, DbConn};
            use $crate::codec::{DbTime, DbUuid};
            use $crate::error::{Result, StoreError};
            use $crate::model_shares::{QuotaRequest, QuotaUsage};

            /// Effective limit of `resource` in `req`; a resource without a limit is
            /// unlimited.
            fn limit_of(req: &QuotaRequest, resource: &str) -> i64 {
                req.limits.get(resource).copied().unwrap_or(-1)
            }

            /// Creates the usage row of (project, resource) if it does not exist yet.
            async fn ensure_usage_row(
                conn: &mut DbConn,
                project_id: &str,
                resource: &str,
                now: DateTime<Utc>,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO quota_usages (project_id, resource, in_use, reserved, updated_at) \
                     VALUES ($1, $2, 0, 0, $3) \
                     ON CONFLICT (project_id, resource) DO NOTHING",
                )
                .bind(project_id)
                .bind(resource)
                .bind(DbTime::new(now))
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            /// Builds the `QuotaExceeded` error for a refused delta, with the usage seen by
            /// the refusing transaction.
            async fn exceeded(
                conn: &mut DbConn,
                project_id: &str,
                resource: &str,
                requested: i64,
                limit: i64,
            ) -> StoreError {
                let row = sqlx::query(
                    "SELECT in_use, reserved FROM quota_usages \
                     WHERE project_id = $1 AND resource = $2",
                )
                .bind(project_id)
                .bind(resource)
                .fetch_optional(&mut *conn)
                .await;
                let (in_use, reserved) = match row {
                    Ok(Some(row)) => match (get::<i64>(&row, "in_use"), get::<i64>(&row, "reserved")) {
                        (Ok(in_use), Ok(reserved)) => (in_use, reserved),
                        (Err(e), _) | (_, Err(e)) => return e,
                    },
                    Ok(None) => (0, 0),
                    Err(e) => return e.into(),
                };
                StoreError::QuotaExceeded {
                    resource: resource.to_owned(),
                    requested,
                    in_use,
                    reserved,
                    limit,
                }
            }

            /// Changes `in_use` by each delta of `req` inside the caller's transaction.
            /// Positive deltas must fit under the limit (`QuotaExceeded` otherwise; the
            /// caller drops the transaction); negative ones are clamped at zero and need
            /// no existing row.
            pub(super) async fn charge_in(
                conn: &mut DbConn,
                req: &QuotaRequest,
                now: DateTime<Utc>,
            ) -> Result<()> {
                for (resource, &delta) in &req.deltas {
                    if delta == 0 {
                        continue;
                    }
                    let limit = limit_of(req, resource);
                    if delta > 0 {
                        ensure_usage_row(conn, &req.project_id, resource, now).await?;
                    }
                    let updated = sqlx::query(
                        "UPDATE quota_usages SET \
                             in_use = CASE WHEN in_use + $1 < 0 THEN 0 ELSE in_use + $1 END, \
                             updated_at = $2 \
                         WHERE project_id = $3 AND resource = $4 \
                           AND ($5 < 0 OR $1 <= 0 OR in_use + reserved + $1 <= $5)",
                    )
                    .bind(delta)
                    .bind(DbTime::new(now))
                    .bind(&req.project_id)
                    .bind(resource)
                    .bind(limit)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if updated == 0 && delta > 0 {
                        return Err(exceeded(conn, &req.project_id, resource, delta, limit).await);
                    }
                }
                Ok(())
            }

            /// Reserves each non-zero delta of `req` inside the caller's transaction and
            /// returns the reservation ids. Positive deltas are added to `reserved` if they
            /// fit; negative ones are only recorded (they take effect on commit), as in
            /// Manila.
            async fn reserve_in(
                conn: &mut DbConn,
                req: &QuotaRequest,
                expire_at: DateTime<Utc>,
                now: DateTime<Utc>,
            ) -> Result<Vec<Uuid>> {
                let mut ids = Vec::new();
                for (resource, &delta) in &req.deltas {
                    if delta == 0 {
                        continue;
                    }
                    if delta > 0 {
                        let limit = limit_of(req, resource);
                        ensure_usage_row(conn, &req.project_id, resource, now).await?;
                        let updated = sqlx::query(
                            "UPDATE quota_usages SET reserved = reserved + $1, updated_at = $2 \
                             WHERE project_id = $3 AND resource = $4 \
                               AND ($5 < 0 OR in_use + reserved + $1 <= $5)",
                        )
                        .bind(delta)
                        .bind(DbTime::new(now))
                        .bind(&req.project_id)
                        .bind(resource)
                        .bind(limit)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                        if updated == 0 {
                            return Err(
                                exceeded(conn, &req.project_id, resource, delta, limit).await
                            );
                        }
                    }
                    let id = Uuid::new_v4();
                    sqlx::query(
                        "INSERT INTO reservations \
                             (id, project_id, resource, delta, expire_at, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(DbUuid(id))
                    .bind(&req.project_id)
                    .bind(resource)
                    .bind(delta)
                    .bind(DbTime::new(expire_at))
                    .bind(DbTime::new(now))
                    .execute(&mut *conn)
                    .await?;
                    ids.push(id);
                }
                Ok(ids)
            }

            /// A reservation removed from the table, to be applied to its usage row.
            struct Finished {
                project_id: String,
                resource: String,
                delta: i64,
            }

            /// Deletes the given reservations (sorted, so concurrent callers lock them in
            /// the same order) and returns those that existed. A reservation deleted by a
            /// concurrent commit, rollback or expiry is simply absent, so each one is
            /// applied exactly once.
            async fn take_reservations(conn: &mut DbConn, ids: &[Uuid]) -> Result<Vec<Finished>> {
                let mut ids = ids.to_vec();
                ids.sort_unstable();
                ids.dedup();
                let mut taken = Vec::new();
                for id in ids {
                    let row = sqlx::query(
                        "DELETE FROM reservations WHERE id = $1 \
                         RETURNING project_id, resource, delta",
                    )
                    .bind(DbUuid(id))
                    .fetch_optional(&mut *conn)
                    .await?;
                    if let Some(row) = row {
                        taken.push(Finished {
                            project_id: get(&row, "project_id")?,
                            resource: get(&row, "resource")?,
                            delta: get(&row, "delta")?,
                        });
                    }
                }
                Ok(taken)
            }

            /// Applies finished reservations to their usage rows, in (project, resource)
            /// order. Commit: `in_use += delta`; both: a positive delta leaves `reserved`.
            /// Both counters are clamped at zero.
            async fn apply_finished(
                conn: &mut DbConn,
                mut finished: Vec<Finished>,
                commit: bool,
                now: DateTime<Utc>,
            ) -> Result<()> {
                finished.sort_by(|a, b| {
                    (&a.project_id, &a.resource).cmp(&(&b.project_id, &b.resource))
                });
                for f in finished {
                    let to_in_use = if commit { f.delta } else { 0 };
                    let from_reserved = f.delta.max(0);
                    if to_in_use == 0 && from_reserved == 0 {
                        continue;
                    }
                    sqlx::query(
                        "UPDATE quota_usages SET \
                             in_use = CASE WHEN in_use + $1 < 0 THEN 0 ELSE in_use + $1 END, \
                             reserved = CASE WHEN reserved - $2 < 0 THEN 0 ELSE reserved - $2 END, \
                             updated_at = $3 \
                         WHERE project_id = $4 AND resource = $5",
                    )
                    .bind(to_in_use)
                    .bind(from_reserved)
                    .bind(DbTime::new(now))
                    .bind(&f.project_id)
                    .bind(&f.resource)
                    .execute(&mut *conn)
                    .await?;
                }
                Ok(())
            }

            pub(super) async fn get_quota_overrides(
                store: &$store,
                project_id: &str,
            ) -> Result<BTreeMap<String, i64>> {
                let rows = sqlx::query(
                    "SELECT resource, hard_limit FROM quotas WHERE project_id = $1 \
                     ORDER BY resource",
                )
                .bind(project_id)
                .fetch_all(&store.pool)
                .await?;
                rows.iter()
                    .map(|r| Ok((get(r, "resource")?, get(r, "hard_limit")?)))
                    .collect()
            }

            pub(super) async fn set_quota_overrides(
                store: &$store,
                project_id: &str,
                limits: &BTreeMap<String, i64>,
                now: DateTime<Utc>,
            ) -> Result<()> {
                if let Some((resource, limit)) = limits.iter().find(|(_, l)| **l < -1) {
                    return Err(StoreError::other(format!(
                        "invalid hard limit {limit} for {resource} (use -1 for unlimited)"
                    )));
                }
                let mut tx = store.begin_write().await?;
                for (resource, limit) in limits {
                    sqlx::query(
                        "INSERT INTO quotas (project_id, resource, hard_limit, created_at, \
                             updated_at) \
                         VALUES ($1, $2, $3, $4, NULL) \
                         ON CONFLICT (project_id, resource) DO UPDATE SET \
                             hard_limit = excluded.hard_limit, updated_at = $4",
                    )
                    .bind(project_id)
                    .bind(resource)
                    .bind(*limit)
                    .bind(DbTime::new(now))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            pub(super) async fn delete_quota_overrides(
                store: &$store,
                project_id: &str,
            ) -> Result<()> {
                sqlx::query("DELETE FROM quotas WHERE project_id = $1")
                    .bind(project_id)
                    .execute(store.writer())
                    .await?;
                Ok(())
            }

            pub(super) async fn delete_quota_override_keys(
                store: &$store,
                project_id: &str,
                resources: &[String],
            ) -> Result<()> {
                if resources.is_empty() {
                    return Ok(());
                }
                let mut tx = store.begin_write().await?;
                for resource in resources {
                    sqlx::query("DELETE FROM quotas WHERE project_id = $1 AND resource = $2")
                        .bind(project_id)
                        .bind(resource)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            pub(super) async fn get_quota_usages(
                store: &$store,
                project_id: &str,
            ) -> Result<BTreeMap<String, QuotaUsage>> {
                let rows = sqlx::query(
                    "SELECT resource, in_use, reserved FROM quota_usages \
                     WHERE project_id = $1 ORDER BY resource",
                )
                .bind(project_id)
                .fetch_all(&store.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        let usage = QuotaUsage {
                            resource: get(r, "resource")?,
                            in_use: get(r, "in_use")?,
                            reserved: get(r, "reserved")?,
                        };
                        Ok((usage.resource.clone(), usage))
                    })
                    .collect()
            }

            pub(super) async fn reserve_quota(
                store: &$store,
                req: QuotaRequest,
                expire_at: DateTime<Utc>,
                now: DateTime<Utc>,
            ) -> Result<Vec<Uuid>> {
                let mut tx = store.begin_write().await?;
                let ids = reserve_in(&mut tx, &req, expire_at, now).await?;
                tx.commit().await?;
                Ok(ids)
            }

            /// Commits the given reservations inside the caller's transaction; returns
            /// whether any was still there to commit.
            pub(super) async fn commit_in(
                conn: &mut DbConn,
                ids: &[Uuid],
                now: DateTime<Utc>,
            ) -> Result<bool> {
                let finished = take_reservations(conn, ids).await?;
                let any = !finished.is_empty();
                apply_finished(conn, finished, true, now).await?;
                Ok(any)
            }

            pub(super) async fn finish_reservations(
                store: &$store,
                ids: &[Uuid],
                commit: bool,
                now: DateTime<Utc>,
            ) -> Result<()> {
                if ids.is_empty() {
                    return Ok(());
                }
                let mut tx = store.begin_write().await?;
                let finished = take_reservations(&mut tx, ids).await?;
                apply_finished(&mut tx, finished, commit, now).await?;
                tx.commit().await?;
                Ok(())
            }

            pub(super) async fn expire_reservations(
                store: &$store,
                now: DateTime<Utc>,
            ) -> Result<u64> {
                let mut tx = store.begin_write().await?;
                let rows = sqlx::query("SELECT id FROM reservations WHERE expire_at < $1")
                    .bind(DbTime::new(now))
                    .fetch_all(&mut *tx)
                    .await?;
                let ids = rows
                    .iter()
                    .map(|r| Ok(get::<DbUuid>(r, "id")?.0))
                    .collect::<Result<Vec<Uuid>>>()?;
                let finished = take_reservations(&mut tx, &ids).await?;
                let count = finished.len() as u64;
                apply_finished(&mut tx, finished, false, now).await?;
                tx.commit().await?;
                Ok(count)
            }

            pub(super) async fn charge_quota(
                store: &$store,
                req: QuotaRequest,
                now: DateTime<Utc>,
            ) -> Result<()> {
                let mut tx = store.begin_write().await?;
                charge_in(&mut tx, &req, now).await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}
pub(crate) use quota_sql;
