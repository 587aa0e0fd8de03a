//! Durable state of shoal: the [`Store`] trait, its SQLite ([`SqliteStore`]) and PostgreSQL
//! ([`PgStore`]) implementations, their embedded migrations, and one conformance test suite
//! run against both.
//!
//! What is persisted (see [`model`], [`model_shares`] and [`model_identity`]): share types
//! with extra specs and project access, availability zones, services and their heartbeats,
//! pool capabilities, durable operations, shares with their instances, export locations,
//! access rules and metadata, snapshots with their instances, metadata, export locations
//! and access rules, replica metadata, per-share replica locks and sync history,
//! quota overrides, usages and reservations, user messages, and the built-in identity
//! (projects, users, role assignments, revoked tokens, the token signing key). SQL lives only
//! in this crate. It is written once (`sql_impl.rs`, with the share, replica, snapshot, quota,
//! message and identity queries in `sql_shares.rs`, `sql_replicas.rs`, `sql_snapshots.rs`,
//! `sql_quotas.rs`, `sql_messages.rs` and `sql_identity.rs`) and expanded for both engines, so the two cannot
//! drift apart. Only the migrations are per engine, because
//! column types differ (see `codec.rs` for timestamps and UUIDs).
//!
//! Open a store with [`open_store`], which picks the engine from the URL, then call
//! [`Store::migrate`] (what `shoal db sync` does).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod codec;
mod error;
pub mod model;
pub mod model_identity;
pub mod model_shares;
pub mod model_snapshots;
mod postgres;
mod sql_identity;
mod sql_impl;
mod sql_lifecycle;
mod sql_messages;
mod sql_quotas;
mod sql_replicas;
mod sql_shares;
mod sql_snapshots;
mod sqlite;
mod store;

#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;

pub use codec::truncate_to_micros;
pub use error::{Result, StoreError};
pub use model::*;
pub use model_identity::*;
pub use model_shares::*;
pub use model_snapshots::*;
pub use postgres::{OPERATIONS_CHANNEL, PgStore};
pub use sqlite::SqliteStore;
pub use store::Store;

/// Default upper bound on pooled connections per store.
pub const MAX_CONNECTIONS_DEFAULT: u32 = 10;
/// Default wait for a free (or new) connection before a call fails with `Unavailable`. Short,
/// so that a dead database turns into a prompt 503 rather than a hung request.
pub const ACQUIRE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);
/// Default time a SQLite writer waits for its turn (the writer connection, then the file's
/// write lock) before giving up. Longer than [`ACQUIRE_TIMEOUT_DEFAULT`]: writers wait in
/// line, so under a burst the wait is the length of the line, and a slow answer is better
/// than a 503 for a database that is up.
pub const SQLITE_BUSY_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);

/// Connection pool settings shared by both engines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Maximum number of pooled connections.
    pub max_connections: u32,
    /// How long a call waits for a connection before failing with `Unavailable`.
    pub acquire_timeout: Duration,
    /// SQLite only: how long a writer waits for the database lock.
    pub sqlite_busy_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_connections: MAX_CONNECTIONS_DEFAULT,
            acquire_timeout: ACQUIRE_TIMEOUT_DEFAULT,
            sqlite_busy_timeout: SQLITE_BUSY_TIMEOUT_DEFAULT,
        }
    }
}

/// Which engine a database URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum StoreUrl {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL, passed on unchanged.
    Postgres,
}

/// Classifies `url`: `sqlite://PATH`, `sqlite:PATH` or a bare path is SQLite;
/// `postgres://` or `postgresql://` is PostgreSQL; any other scheme is refused.
fn parse_store_url(url: &str) -> Result<StoreUrl> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(StoreUrl::Postgres);
    }
    let path = if let Some(rest) = url.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        rest
    } else if let Some((scheme, _)) = url.split_once("://") {
        return Err(StoreError::other(format!(
            "unsupported database url scheme {scheme:?} (use sqlite:// or postgres://)"
        )));
    } else {
        url
    };
    // Connection parameters such as `?mode=rwc` do not apply: the store sets its own.
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::other(format!(
            "sqlite database url {url:?} must name a file"
        )));
    }
    Ok(StoreUrl::Sqlite(PathBuf::from(path)))
}

/// Opens the store named by `url`: `sqlite://PATH`, `sqlite:PATH` or a bare path opens a SQLite
/// file (parent directories are created); `postgres://…` or `postgresql://…` connects to
/// PostgreSQL. Other schemes and in-memory SQLite are refused. Does not migrate.
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>> {
    match parse_store_url(url)? {
        StoreUrl::Sqlite(path) => Ok(Arc::new(SqliteStore::open(&path).await?)),
        StoreUrl::Postgres => Ok(Arc::new(PgStore::connect(url).await?)),
    }
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn parses_sqlite_forms() {
        let sqlite = |p: &str| StoreUrl::Sqlite(PathBuf::from(p));
        assert_eq!(
            parse_store_url("sqlite:///var/lib/shoal/db").unwrap(),
            sqlite("/var/lib/shoal/db")
        );
        assert_eq!(
            parse_store_url("sqlite://data/shoal.db").unwrap(),
            sqlite("data/shoal.db")
        );
        assert_eq!(
            parse_store_url("sqlite:shoal.db?mode=rwc").unwrap(),
            sqlite("shoal.db")
        );
        assert_eq!(
            parse_store_url("./shoal-data/shoal.db").unwrap(),
            sqlite("./shoal-data/shoal.db")
        );
        assert_eq!(
            parse_store_url("/abs/shoal.db").unwrap(),
            sqlite("/abs/shoal.db")
        );
    }

    #[test]
    fn parses_postgres_forms() {
        assert_eq!(
            parse_store_url("postgres://u@h/db").unwrap(),
            StoreUrl::Postgres
        );
        assert_eq!(
            parse_store_url("postgresql://u@h:5432/db").unwrap(),
            StoreUrl::Postgres
        );
    }

    #[test]
    fn refuses_memory_and_unknown_schemes() {
        assert!(parse_store_url("sqlite::memory:").is_err());
        assert!(parse_store_url("sqlite://").is_err());
        assert!(parse_store_url("").is_err());
        assert!(parse_store_url("mysql://u@h/db").is_err());
    }

    #[tokio::test]
    async fn open_store_routes_postgres_urls_to_postgres() {
        // Nothing listens there, so reaching the PG driver shows up as Unavailable (after the
        // default acquire timeout), not as a SQLite or URL error.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let short = format!("postgres://postgres@127.0.0.1:{port}/shoal");
        let long = format!("postgresql://postgres@127.0.0.1:{port}/shoal");
        let (a, b) = tokio::join!(open_store(&short), open_store(&long));
        for result in [a, b] {
            let err = result.err().expect("nothing listens");
            assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        }
    }

    #[tokio::test]
    async fn open_store_picks_engine() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("x/shoal.db").display());
        let store = open_store(&url).await.expect("open");
        assert_eq!(store.backend_name(), "sqlite");
        store.migrate().await.expect("migrate");
        store.ping().await.expect("ping");
        store.close().await;

        let bare = dir.path().join("bare.db");
        let store = open_store(bare.to_str().expect("utf-8"))
            .await
            .expect("open");
        assert_eq!(store.backend_name(), "sqlite");
        store.close().await;
    }
}
