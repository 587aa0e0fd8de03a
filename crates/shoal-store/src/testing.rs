//! Fresh, migrated, isolated databases for tests, on either engine (compiled for this crate's
//! tests and, with the `testing` feature, for other crates' tests).
//!
//! SQLite gets a new file in a temporary directory. PostgreSQL gets a new schema
//! `t_<uuid>` in the database named by `TEST_DATABASE_URL`, and the store connects with
//! `search_path` set to it, so tests run in parallel on one server without seeing each
//! other. [`TestDb::finish`] closes the store and drops the schema; if a test panics before
//! that, `Drop` drops the schema instead.

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use crate::{PgStore, PoolConfig, SqliteStore, Store};

/// Environment variable naming the PostgreSQL server for tests, e.g.
/// `postgres://postgres@127.0.0.1:55432/postgres`. PG tests are skipped when it is unset.
pub const TEST_DATABASE_URL_ENV: &str = "TEST_DATABASE_URL";

/// Pool size for test stores: tests run in parallel against one server, keep each small.
const TEST_MAX_CONNECTIONS: u32 = 5;

/// What to tear down after a test.
enum Cleanup {
    /// Deleted on drop.
    TempDir(tempfile::TempDir),
    /// Schema to drop, on the server at `options`.
    PgSchema {
        options: Box<PgConnectOptions>,
        schema: String,
    },
}

/// A migrated store private to one test, plus what it takes to remove it.
pub struct TestDb<S: ?Sized> {
    store: Arc<S>,
    /// A URL naming the same database, for another store or another process.
    url: String,
    /// `None` once cleaned up (or moved into another `TestDb`).
    cleanup: Option<Cleanup>,
}

impl<S: Store + ?Sized> TestDb<S> {
    /// The store under test.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// A database URL for this test's database that `open_store` and `shoal serve` accept:
    /// `sqlite://<file>`, or `TEST_DATABASE_URL` with the test schema as `search_path`.
    /// Another node of a multi-node test opens its own store with it.
    pub fn database_url(&self) -> &str {
        &self.url
    }

    /// Another store (its own connection pool) on this test's database, as a second node
    /// would have. Not closed by [`Self::finish`]; close it first.
    pub async fn open_another(&self) -> Arc<dyn Store> {
        crate::open_store(&self.url)
            .await
            .expect("open a second store on the test database")
    }

    /// Closes the store and removes its database (temp dir or PG schema). Call at the end of
    /// a test; if it is skipped (say the test panicked), `Drop` still drops the schema.
    pub async fn finish(mut self) {
        self.store.close().await;
        match self.cleanup.take() {
            Some(Cleanup::PgSchema { options, schema }) => drop_schema(&options, &schema).await,
            Some(Cleanup::TempDir(dir)) => drop(dir),
            None => {}
        }
    }
}

impl<S: Store> TestDb<S> {
    /// The same database as `Arc<dyn Store>`.
    pub fn into_dyn(mut self) -> TestDb<dyn Store> {
        let store: Arc<dyn Store> = self.store.clone();
        TestDb {
            store,
            url: std::mem::take(&mut self.url),
            cleanup: self.cleanup.take(),
        }
    }
}

impl<S: ?Sized> Drop for TestDb<S> {
    fn drop(&mut self) {
        // `finish` was not called. Drop cannot await and may run on a runtime thread, so
        // drop the schema from a helper thread with its own small runtime. A temp dir removes
        // itself when dropped.
        if let Some(Cleanup::PgSchema { options, schema }) = self.cleanup.take() {
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match runtime {
                    Ok(runtime) => runtime.block_on(drop_schema(&options, &schema)),
                    Err(e) => eprintln!("could not drop test schema {schema}: {e}"),
                }
            })
            .join();
        }
    }
}

/// Drops a test schema and everything in it. Never waits long for locks held by a
/// connection of a test that panicked mid-transaction; failures are only reported.
async fn drop_schema(options: &PgConnectOptions, schema: &str) {
    let result = async {
        let mut conn = PgConnection::connect_with(options).await?;
        sqlx::query("SET lock_timeout = '5s'")
            .execute(&mut conn)
            .await?;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .execute(&mut conn)
            .await?;
        conn.close().await
    }
    .await;
    if let Err(e) = result {
        eprintln!("could not drop test schema {schema}: {e}");
    }
}

/// A store engine that can make throw-away databases for tests.
#[async_trait]
pub trait ForTest: Store + Sized {
    /// A fresh migrated store, or `None` when the engine is not configured for tests
    /// (PostgreSQL without `TEST_DATABASE_URL`; a skip note is printed).
    async fn for_test() -> Option<TestDb<Self>>;
}

#[async_trait]
impl ForTest for SqliteStore {
    async fn for_test() -> Option<TestDb<Self>> {
        let dir = tempfile::tempdir().expect("create temp dir for test database");
        let config = PoolConfig {
            max_connections: TEST_MAX_CONNECTIONS,
            ..PoolConfig::default()
        };
        let path = dir.path().join("shoal.db");
        let store = SqliteStore::open_with(&path, &config)
            .await
            .expect("open test sqlite store");
        store.migrate().await.expect("migrate test sqlite store");
        Some(TestDb {
            store: Arc::new(store),
            url: format!("sqlite://{}", path.display()),
            cleanup: Some(Cleanup::TempDir(dir)),
        })
    }
}

#[async_trait]
impl ForTest for PgStore {
    async fn for_test() -> Option<TestDb<Self>> {
        let Ok(url) = std::env::var(TEST_DATABASE_URL_ENV) else {
            eprintln!("skipping postgres store test: {TEST_DATABASE_URL_ENV} is not set");
            return None;
        };
        let admin = PgConnectOptions::from_str(&url).expect("TEST_DATABASE_URL is a postgres url");
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect_with(&admin)
            .await
            .expect("connect to TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
            .execute(&mut conn)
            .await
            .expect("create test schema");
        let _ = conn.close().await;

        let options = admin.clone().options([("search_path", schema.as_str())]);
        let config = PoolConfig {
            max_connections: TEST_MAX_CONNECTIONS,
            ..PoolConfig::default()
        };
        let store = PgStore::connect_with(options, &config)
            .await
            .expect("connect test postgres store");
        store.migrate().await.expect("migrate test postgres store");
        Some(TestDb {
            store: Arc::new(store),
            url: url_with_search_path(&url, &schema),
            cleanup: Some(Cleanup::PgSchema {
                options: Box::new(admin),
                schema,
            }),
        })
    }
}

/// `url` with `search_path` set to `schema` through libpq's `options` parameter, which
/// sqlx and `shoal serve` understand.
fn url_with_search_path(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

/// A fresh store for another crate's tests: PostgreSQL when `TEST_DATABASE_URL` is set (so CI
/// re-runs the same tests on PG), SQLite otherwise.
pub async fn fresh_store_from_env() -> TestDb<dyn Store> {
    // Checked here too so that SQLite runs print no PG skip note.
    let pg = match std::env::var_os(TEST_DATABASE_URL_ENV) {
        Some(_) => PgStore::for_test().await,
        None => None,
    };
    if let Some(db) = pg {
        return db.into_dyn();
    }
    SqliteStore::for_test()
        .await
        .expect("sqlite test stores are always available")
        .into_dyn()
}
