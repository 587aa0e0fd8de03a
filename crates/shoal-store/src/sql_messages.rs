//! User message queries, expanded for each engine by [`message_sql!`] from inside
//! [`impl_store!`](crate::sql_impl::impl_store).

/// Columns of `messages`, in `SELECT` lists.
macro_rules! message_columns {
    () => {
        "id, project_id, request_id, resource_type, resource_id, action_id, detail_id, \
         message_level, created_at, expires_at"
    };
}
pub(crate) use message_columns;

/// Expands the message query functions as module `message_sql` next to `store_impl`.
macro_rules! message_sql {
    ($store:ident) => {
        /// User messages.
        mod message_sql {
            use chrono::{DateTime, Utc};
            use uuid::Uuid;

            use super::sql_common::{DbRow, get, time, uuid};
            use super::$store;
            use $crate::codec::{DbTime, DbUuid};
            use $crate::error::{Result, StoreError, is_unique_violation};
            use $crate::model_shares::MessageRow;
            use $crate::sql_messages::message_columns;

            fn message_from_row(row: &DbRow) -> Result<MessageRow> {
                Ok(MessageRow {
                    id: uuid(row, "id")?,
                    project_id: get(row, "project_id")?,
                    request_id: get(row, "request_id")?,
                    resource_type: get(row, "resource_type")?,
                    resource_id: get(row, "resource_id")?,
                    action_id: get(row, "action_id")?,
                    detail_id: get(row, "detail_id")?,
                    message_level: get(row, "message_level")?,
                    created_at: time(row, "created_at")?,
                    expires_at: time(row, "expires_at")?,
                })
            }

            pub(super) async fn insert_message(store: &$store, m: MessageRow) -> Result<()> {
                let inserted = sqlx::query(concat!(
                    "INSERT INTO messages (",
                    message_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                ))
                .bind(DbUuid(m.id))
                .bind(&m.project_id)
                .bind(&m.request_id)
                .bind(&m.resource_type)
                .bind(&m.resource_id)
                .bind(&m.action_id)
                .bind(&m.detail_id)
                .bind(&m.message_level)
                .bind(DbTime::new(m.created_at))
                .bind(DbTime::new(m.expires_at))
                .execute(store.writer())
                .await;
                match inserted {
                    Ok(_) => Ok(()),
                    Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                        "message {} already exists",
                        m.id
                    ))),
                    Err(e) => Err(e.into()),
                }
            }

            pub(super) async fn list_messages(
                store: &$store,
                project_id: Option<&str>,
            ) -> Result<Vec<MessageRow>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    message_columns!(),
                    " FROM messages WHERE ($1 IS NULL OR project_id = $1) \
                     ORDER BY created_at, id"
                ))
                .bind(project_id)
                .fetch_all(&store.pool)
                .await?;
                rows.iter().map(message_from_row).collect()
            }

            pub(super) async fn get_message(store: &$store, id: Uuid) -> Result<MessageRow> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    message_columns!(),
                    " FROM messages WHERE id = $1"
                ))
                .bind(DbUuid(id))
                .fetch_optional(&store.pool)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("message {id}")))?;
                message_from_row(&row)
            }

            pub(super) async fn delete_message(store: &$store, id: Uuid) -> Result<()> {
                let deleted = sqlx::query("DELETE FROM messages WHERE id = $1")
                    .bind(DbUuid(id))
                    .execute(store.writer())
                    .await?
                    .rows_affected();
                if deleted == 0 {
                    return Err(StoreError::NotFound(format!("message {id}")));
                }
                Ok(())
            }

            pub(super) async fn delete_expired_messages(
                store: &$store,
                now: DateTime<Utc>,
            ) -> Result<u64> {
                let deleted = sqlx::query("DELETE FROM messages WHERE expires_at < $1")
                    .bind(DbTime::new(now))
                    .execute(store.writer())
                    .await?
                    .rows_affected();
                Ok(deleted)
            }
        }
    };
}
pub(crate) use message_sql;
