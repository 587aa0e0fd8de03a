//! `PgStore`: the shared engine for scale-out deployments, where every API, scheduler and share
//! node talks to one PostgreSQL. Queries come from [`impl_store!`](crate::sql_impl); this
//! module only connects and supplies the engine hooks.
//!
//! Transactions run at the default READ COMMITTED level; correctness under concurrency comes
//! from single-statement compare-and-set updates and `ON CONFLICT`, not from isolation.
//!
//! Wake-ups between nodes: every transaction that enqueues operations also sends
//! `pg_notify('shoal_operations', {"schema", "kind", "host"})`, which PostgreSQL delivers
//! when (and only if) it commits; [`Store::listen_for_operations`](crate::Store::listen_for_operations) keeps one dedicated
//! connection `LISTEN`ing on that channel and passes the notices of its own schema on.
//! Nothing is persisted for this: a lost notice only delays work until the next poll.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};
use tokio::sync::mpsc;

use crate::PoolConfig;
use crate::error::{Result, StoreError};
use crate::model::{NewOperation, OperationNotice, OperationNotices};

/// The `LISTEN`/`NOTIFY` channel of operation wake-ups. Nodes of other deployments sharing
/// the server (another schema) send on it too; the payload's `schema` tells them apart.
pub const OPERATIONS_CHANNEL: &str = "shoal_operations";

/// Notices buffered for a slow consumer. Any one pending notice already wakes the workers, so
/// notices that find the buffer full are dropped.
const NOTICE_BUFFER: usize = 64;

/// First wait before reconnecting the listener; doubles up to [`LISTEN_BACKOFF_MAX`].
const LISTEN_BACKOFF_MIN: Duration = Duration::from_millis(250);
/// Longest wait between reconnection attempts of the listener.
const LISTEN_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Payload of a notification on [`OPERATIONS_CHANNEL`].
#[derive(Debug, serde::Deserialize)]
struct NoticePayload {
    /// Schema of the `operations` table the operation went into.
    schema: Option<String>,
    kind: String,
    host: Option<String>,
}

/// Migrations for PostgreSQL, embedded at compile time.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Store backed by a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Server process id of the connection that listens for operation notices, 0 while
    /// there is none (it is logged; tests cut that connection).
    listener_pid: Arc<AtomicI32>,
}

impl PgStore {
    const BACKEND: &'static str = "postgres";

    /// Connects to `url` (`postgres://user:pass@host:port/db?...`) with the default pool
    /// settings, opening one connection to fail fast. Does not migrate.
    pub async fn connect(url: &str) -> Result<Self> {
        // The parse error never echoes the URL, which may hold a password.
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::other(format!("invalid postgres url: {e}")))?;
        Self::connect_with(options, &PoolConfig::default()).await
    }

    /// Connects with explicit connect options (e.g. a `search_path`) and pool settings.
    pub async fn connect_with(options: PgConnectOptions, config: &PoolConfig) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout)
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            listener_pid: Arc::new(AtomicI32::new(0)),
        })
    }

    /// Creates schema `schema` on the server of `url` and returns a URL whose connections
    /// use it (`search_path` through libpq's `options` parameter, which `open_store` and
    /// `shoal serve` accept), for benchmarks and multi-node tests that want a database of
    /// their own on a shared server. `schema` must be a plain identifier.
    pub async fn create_schema(url: &str, schema: &str) -> Result<String> {
        Self::admin_statement(url, &format!("CREATE SCHEMA \"{}\"", identifier(schema)?)).await?;
        let separator = if url.contains('?') { '&' } else { '?' };
        Ok(format!(
            "{url}{separator}options=-c%20search_path%3D{schema}"
        ))
    }

    /// Drops schema `schema` on the server of `url` and everything in it.
    pub async fn drop_schema(url: &str, schema: &str) -> Result<()> {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", identifier(schema)?);
        Self::admin_statement(url, &sql).await
    }

    /// Runs one statement on a connection of its own to `url`.
    async fn admin_statement(url: &str, sql: &str) -> Result<()> {
        use sqlx::Connection as _;
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::other(format!("invalid postgres url: {e}")))?;
        let mut conn = PgConnection::connect_with(&options).await?;
        sqlx::query(sql).execute(&mut conn).await?;
        conn.close().await?;
        Ok(())
    }

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    /// The pool for writes: the same as for reads, since PostgreSQL has row locks.
    fn writer(&self) -> &PgPool {
        &self.pool
    }

    /// Starts a transaction (READ COMMITTED).
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// Notifies [`OPERATIONS_CHANNEL`] once per distinct kind and host of `ops`, inside the
    /// caller's transaction, so the notice goes out only if the operations are committed.
    async fn notify_enqueued(conn: &mut PgConnection, ops: &[NewOperation]) -> Result<()> {
        let distinct: BTreeSet<(&str, Option<&str>)> = ops
            .iter()
            .map(|op| (op.kind.as_str(), op.host.as_deref()))
            .collect();
        for (kind, host) in distinct {
            sqlx::query(
                "SELECT pg_notify($1, json_build_object('schema', current_schema(), \
                     'kind', $2::text, 'host', $3::text)::text)",
            )
            .bind(OPERATIONS_CHANNEL)
            .bind(kind)
            .bind(host)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// Starts the listener task on a connection of its own (a pool of one with the store's
    /// connect options, so it never takes one of the store's connections). The first
    /// connection is attempted before returning.
    async fn listen_for_operations_impl(&self) -> Option<OperationNotices> {
        let options = (*self.pool.connect_options()).clone();
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(crate::ACQUIRE_TIMEOUT_DEFAULT)
            .connect_lazy_with(options);
        let (tx, rx) = mpsc::channel(NOTICE_BUFFER);
        let first = OperationListener::connect(&listen_pool, &self.listener_pid).await;
        if let Err(err) = &first {
            tracing::warn!(error = %err, "cannot listen for operation wake-ups yet, polling meanwhile: {err}");
        }
        let task = ListenTask {
            listen_pool,
            store_pool: self.pool.clone(),
            pid: self.listener_pid.clone(),
            tx,
        };
        tokio::spawn(task.run(first.ok()));
        Some(rx)
    }
}

/// `name` if it is a plain identifier (ASCII letters, digits, `_`; not starting with a digit).
fn identifier(name: &str) -> Result<&str> {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        Ok(name)
    } else {
        Err(StoreError::other(format!(
            "schema name {name:?} is not a plain identifier"
        )))
    }
}

/// A `LISTEN`ing connection and the schema whose notices it passes on.
struct OperationListener {
    listener: PgListener,
    schema: Option<String>,
}

impl OperationListener {
    /// Connects and listens; `pid` gets the listening connection's server process id.
    async fn connect(pool: &PgPool, pid: &AtomicI32) -> Result<Self> {
        let mut listener = PgListener::connect_with(pool).await?;
        // The schema unqualified table names (`operations`) resolve to, as for the inserts.
        let (schema, backend): (Option<String>, i32) =
            sqlx::query_as("SELECT current_schema(), pg_backend_pid()")
                .fetch_one(&mut listener)
                .await?;
        listener.listen(OPERATIONS_CHANNEL).await?;
        pid.store(backend, Ordering::Relaxed);
        tracing::debug!(
            pid = backend,
            "listening on {OPERATIONS_CHANNEL} (server process {backend})"
        );
        Ok(Self { listener, schema })
    }

    /// The notice for a notification, `None` for another schema's or an unreadable one.
    fn notice(&self, payload: &str) -> Option<OperationNotice> {
        let payload: NoticePayload = match serde_json::from_str(payload) {
            Ok(payload) => payload,
            Err(err) => {
                tracing::debug!(error = %err, "ignoring notification {payload:?} on {OPERATIONS_CHANNEL}");
                return None;
            }
        };
        (payload.schema == self.schema).then_some(OperationNotice::Enqueued {
            kind: payload.kind,
            host: payload.host,
        })
    }
}

/// The listener's task: passes notices on until the receiver is dropped or the store is
/// closed. A lost connection is logged once, retried with exponential backoff, and followed
/// by [`OperationNotice::Listening`] when it is back.
struct ListenTask {
    /// Pool of one connection, the listening one.
    listen_pool: PgPool,
    /// The store's pool, only to stop when the store is closed.
    store_pool: PgPool,
    pid: Arc<AtomicI32>,
    tx: mpsc::Sender<OperationNotice>,
}

impl ListenTask {
    async fn run(self, mut current: Option<OperationListener>) {
        let tx = &self.tx;
        let mut backoff = LISTEN_BACKOFF_MIN;
        let mut failing = current.is_none();
        let closed = self.store_pool.close_event();
        tokio::pin!(closed);
        loop {
            let Some(listening) = current.as_mut() else {
                tokio::select! {
                    _ = tx.closed() => break,
                    _ = &mut closed => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                match OperationListener::connect(&self.listen_pool, &self.pid).await {
                    Ok(listener) => {
                        tracing::info!("listening for operation wake-ups again");
                        current = Some(listener);
                        failing = false;
                        backoff = LISTEN_BACKOFF_MIN;
                        if !send(tx, OperationNotice::Listening) {
                            break;
                        }
                    }
                    Err(err) => {
                        tracing::debug!(error = %err, "listener reconnection failed: {err}");
                        backoff = (backoff * 2).min(LISTEN_BACKOFF_MAX);
                    }
                }
                continue;
            };
            let received = tokio::select! {
                _ = tx.closed() => break,
                _ = &mut closed => break,
                received = listening.listener.try_recv() => received,
            };
            let notice = match received {
                Ok(Some(notification)) => listening.notice(notification.payload()),
                // The connection dropped and sqlx reconnected it at once: notices sent in
                // between are lost.
                Ok(None) => Some(OperationNotice::Listening),
                Err(err) => {
                    if !failing {
                        tracing::warn!(error = %err, "lost the operation wake-up listener, polling until it is back: {err}");
                        failing = true;
                    }
                    self.pid.store(0, Ordering::Relaxed);
                    current = None;
                    continue;
                }
            };
            if let Some(notice) = notice
                && !send(tx, notice)
            {
                break;
            }
        }
        self.pid.store(0, Ordering::Relaxed);
        self.listen_pool.close().await;
    }
}

/// Hands `notice` over without waiting; `false` once the receiver is gone. A full buffer
/// drops it: the wake-ups already queued do its job.
fn send(tx: &mpsc::Sender<OperationNotice>, notice: OperationNotice) -> bool {
    !matches!(
        tx.try_send(notice),
        Err(mpsc::error::TrySendError::Closed(_))
    )
}

crate::sql_impl::impl_store!(PgStore, sqlx::Postgres);

#[cfg(test)]
mod suite {
    crate::tests::store_test_suite!(crate::postgres::PgStore);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::Store;
    use crate::testing::ForTest;

    fn new_operation(kind: &str, host: Option<&str>) -> NewOperation {
        NewOperation {
            kind: kind.to_owned(),
            target_id: uuid::Uuid::new_v4().to_string(),
            host: host.map(str::to_owned),
            payload: serde_json::json!({}),
            now: chrono::Utc::now(),
        }
    }

    /// The next notice, waiting at most 10 s.
    async fn next_notice(notices: &mut OperationNotices) -> OperationNotice {
        tokio::time::timeout(Duration::from_secs(10), notices.recv())
            .await
            .expect("a notice within 10 s")
            .expect("the listener is running")
    }

    #[tokio::test]
    async fn enqueues_wake_listeners_on_the_same_schema_only() {
        let (Some(db), Some(other)) = (PgStore::for_test().await, PgStore::for_test().await) else {
            return;
        };
        // Another node's store on the same schema.
        let node = db.open_another().await;
        let mut notices = node
            .listen_for_operations()
            .await
            .expect("postgres listens");
        // Another deployment's enqueue comes first; it must not show up.
        other
            .store()
            .insert_operation(new_operation("elsewhere", None))
            .await
            .expect("insert");
        db.store()
            .insert_operation(new_operation("schedule_share_instance", None))
            .await
            .expect("insert");
        assert_eq!(
            next_notice(&mut notices).await,
            OperationNotice::Enqueued {
                kind: "schedule_share_instance".to_owned(),
                host: None
            }
        );
        db.store()
            .insert_operation(new_operation("create_share_instance", Some("n1@dummy")))
            .await
            .expect("insert");
        assert_eq!(
            next_notice(&mut notices).await,
            OperationNotice::Enqueued {
                kind: "create_share_instance".to_owned(),
                host: Some("n1@dummy".to_owned())
            }
        );
        drop(notices);
        node.close().await;
        other.finish().await;
        db.finish().await;
    }

    #[tokio::test]
    async fn a_listener_that_loses_its_connection_comes_back_and_says_so() {
        let Some(db) = PgStore::for_test().await else {
            return;
        };
        let mut notices = db
            .store()
            .listen_for_operations()
            .await
            .expect("postgres listens");
        // Kill the listening backend, as a database restart or a network cut would.
        let pid = db.store().listener_pid.load(Ordering::Relaxed);
        assert_ne!(pid, 0, "listening after listen_for_operations returned");
        let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .fetch_one(&db.store().pool)
            .await
            .expect("terminate the listener");
        assert!(killed, "server process {pid} terminated");
        // Whichever way the loss surfaces (sqlx's eager reconnect or ours), the listener says
        // it listens again, and later enqueues reach it.
        loop {
            let notice = next_notice(&mut notices).await;
            if notice == OperationNotice::Listening {
                break;
            }
        }
        db.store()
            .insert_operation(new_operation("delete_share_instance", Some("n2@dummy")))
            .await
            .expect("insert");
        loop {
            if let OperationNotice::Enqueued { kind, .. } = next_notice(&mut notices).await
                && kind == "delete_share_instance"
            {
                break;
            }
        }
        drop(notices);
        db.finish().await;
    }

    /// A port nothing listens on: bind an ephemeral port, then release it.
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    }

    #[tokio::test]
    async fn connecting_to_a_closed_port_is_unavailable() {
        let options = PgConnectOptions::new()
            .host("127.0.0.1")
            .port(closed_port())
            .username("postgres");
        let config = PoolConfig {
            acquire_timeout: Duration::from_millis(500),
            ..PoolConfig::default()
        };
        let err = PgStore::connect_with(options, &config).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }

    #[tokio::test]
    async fn invalid_url_is_not_unavailable_and_hides_the_url() {
        let err = PgStore::connect("postgres://user:s3cret@host:notaport/db")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Other(_)), "{err:?}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}
