//! `SqliteStore`: the embedded engine, one database file per deployment (the default
//! single-node setup). Queries come from [`impl_store!`](crate::sql_impl); this module only
//! opens the file and supplies the engine hooks.
//!
//! The file is opened in WAL mode (readers never block the writer), with foreign keys on.
//! SQLite has one write lock per database. Writers that wait for it in SQLite's busy handler
//! poll it with growing sleeps, in no order, so under load (64 API clients and the workers)
//! one of them could wait past any timeout while others took the lock again and again: the
//! "database is locked" 503. So every write, a transaction or a single statement, goes
//! through a pool of ONE connection (`writer`), whose waiters sqlx serves first come, first
//! served, within `sqlite_busy_timeout`; reads use the other pool and never wait for writes.
//! The busy timeout stays on both pools for other processes on the same file (`shoal db
//! ...` commands). Serialised writers are also what makes the operation claim race-free here.

use std::path::{Path, PathBuf};

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, SqliteConnection, Transaction};

use crate::PoolConfig;
use crate::error::{Result, StoreError};
use crate::model::{NewOperation, OperationNotices};

/// Migrations for SQLite, embedded at compile time.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Store backed by one SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers.
    pool: SqlitePool,
    /// The one writer connection (see the module doc).
    writer: SqlitePool,
    path: PathBuf,
}

impl SqliteStore {
    const BACKEND: &'static str = "sqlite";

    /// Opens (creating if needed, with its parent directories) the database file at `path`
    /// with the default pool settings. Does not migrate; call `Store::migrate`.
    pub async fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, &PoolConfig::default()).await
    }

    /// Like [`open`](Self::open) with explicit pool settings.
    pub async fn open_with(path: &Path, config: &PoolConfig) -> Result<Self> {
        if path.as_os_str().is_empty() || path == Path::new(":memory:") {
            return Err(StoreError::other(
                "sqlite store needs a file path, in-memory databases are not supported",
            ));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent).await.map_err(|e| {
                StoreError::Other(
                    anyhow::Error::new(e).context(format!("creating {}", parent.display())),
                )
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged write (an API 202 plus its operation row) survives power
            // loss too; NORMAL would only survive process crashes. Our write rate is low.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(config.sqlite_busy_timeout);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(config.sqlite_busy_timeout)
            .connect_with(options.clone())
            .await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout)
            .connect_with(options)
            .await?;
        tracing::debug!(path = %path.display(), "opened sqlite store at {}", path.display());
        Ok(Self {
            pool,
            writer,
            path: path.to_owned(),
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    /// Starts a write transaction. `BEGIN IMMEDIATE` takes the write lock up front (waiting up
    /// to the busy timeout), so a transaction that reads before it writes can never fail
    /// with `SQLITE_BUSY_SNAPSHOT` when another writer committed in between.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// The one writer connection's pool.
    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// Nothing to do: a SQLite deployment is one process, whose workers are woken in-process.
    async fn notify_enqueued(_conn: &mut SqliteConnection, _ops: &[NewOperation]) -> Result<()> {
        Ok(())
    }

    /// No cross-process wake-ups on SQLite (see [`Store::listen_for_operations`](crate::Store::listen_for_operations)).
    async fn listen_for_operations_impl(&self) -> Option<OperationNotices> {
        None
    }
}

crate::sql_impl::impl_store!(SqliteStore, sqlx::Sqlite);

#[cfg(test)]
mod suite {
    crate::tests::store_test_suite!(crate::sqlite::SqliteStore);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[tokio::test]
    async fn open_creates_parent_dirs_and_uses_wal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/b/shoal.db");
        let store = SqliteStore::open(&path).await.expect("open");
        assert!(path.exists());
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.pool)
            .await
            .expect("pragma");
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&store.pool)
            .await
            .expect("pragma");
        assert_eq!(fk, 1);
        assert_eq!(store.backend_name(), "sqlite");
        store.close().await;
    }

    #[tokio::test]
    async fn there_are_no_operation_notices() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
        assert!(store.listen_for_operations().await.is_none());
        store.close().await;
    }

    #[tokio::test]
    async fn memory_database_is_refused() {
        let err = SqliteStore::open(Path::new(":memory:")).await.unwrap_err();
        assert!(matches!(err, StoreError::Other(_)), "{err:?}");
    }

    /// Guards the encoding choice in `codec.rs`: sqlx's own SQLite `DateTime` text has a
    /// variable number of fractional digits, so it does not sort correctly as text.
    #[tokio::test]
    async fn sqlx_datetime_text_is_not_fixed_width() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
        let whole = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("valid");
        let frac = chrono::DateTime::from_timestamp(1_700_000_000, 500_000_000).expect("valid");
        let (a, b): (String, String) = sqlx::query_as("SELECT $1, $2")
            .bind(whole)
            .bind(frac)
            .fetch_one(&store.pool)
            .await
            .expect("select");
        assert_ne!(a.len(), b.len(), "{a} vs {b}");
        store.close().await;
    }
}
