//! `PgStore`: the shared engine for scale-out deployments, where every API, scheduler and share
//! node talks to one PostgreSQL. Queries come from [`impl_store!`](crate::sql_impl); this
//! module only connects and supplies the engine hooks.
//!
//! Transactions run at the default READ COMMITTED level; correctness under concurrency comes
//! from single-statement compare-and-set updates and `ON CONFLICT`, not from isolation.

use std::str::FromStr;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use crate::PoolConfig;
use crate::error::{Result, StoreError};

/// Migrations for PostgreSQL, embedded at compile time.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Store backed by a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
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
        Ok(Self { pool })
    }

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    /// Starts a transaction (READ COMMITTED).
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }
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
