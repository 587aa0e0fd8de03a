//! `StoreError`: the one error type of the store layer, and the single place where driver
//! errors of both engines are classified.
//!
//! Callers branch on the variant: `NotFound` becomes 404, `Conflict` (unique violation or a
//! lost compare-and-set) becomes 409, `QuotaExceeded` becomes 413, `Unavailable` (the
//! database cannot be reached right now) becomes 503, and everything else is an internal
//! error. Nothing here is persisted.

use sqlx::error::{DatabaseError, ErrorKind};

/// Result alias used by every store method.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What went wrong in the store, classified the way callers need to react.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The addressed row does not exist. The text names what was looked for.
    #[error("not found: {0}")]
    NotFound(String),
    /// A unique constraint was violated, or a compare-and-set lost its race.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A quota charge or reservation would take `resource` over its limit. Nothing of the
    /// call was written. The numbers are those seen when the charge was refused.
    #[error(
        "quota exceeded for {resource}: requested {requested}, in use {in_use}, \
         reserved {reserved}, limit {limit}"
    )]
    QuotaExceeded {
        /// Resource over its limit (`shares`, `gigabytes`, ...).
        resource: String,
        /// The delta that did not fit.
        requested: i64,
        /// Committed usage at that moment.
        in_use: i64,
        /// Reserved usage at that moment.
        reserved: i64,
        /// The effective limit.
        limit: i64,
    },
    /// The database cannot serve the request right now (pool timed out or closed, connection
    /// refused or dropped, server shutting down, SQLite busy past its timeout). Retryable.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug, a schema mismatch, bad data.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl StoreError {
    /// Builds an `Other` error from a message (internal text: lowercase, no trailing period).
    pub(crate) fn other(msg: impl std::fmt::Display) -> Self {
        StoreError::Other(anyhow::anyhow!("{msg}"))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        classify(err)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        match err {
            sqlx::migrate::MigrateError::Execute(inner) => classify(inner),
            other => StoreError::Other(anyhow::Error::new(other).context("migration failed")),
        }
    }
}

/// Maps a sqlx error of either engine onto [`StoreError`].
fn classify(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::PoolTimedOut => {
            StoreError::Unavailable("timed out waiting for a database connection".into())
        }
        sqlx::Error::PoolClosed => StoreError::Unavailable("database pool is closed".into()),
        sqlx::Error::WorkerCrashed => {
            StoreError::Unavailable("database connection worker crashed".into())
        }
        sqlx::Error::Io(e) => StoreError::Unavailable(format!("database i/o error: {e}")),
        sqlx::Error::Tls(e) => StoreError::Unavailable(format!("database tls error: {e}")),
        sqlx::Error::RowNotFound => StoreError::NotFound("row".into()),
        sqlx::Error::Database(db) => classify_database(db),
        other => StoreError::Other(anyhow::Error::new(other)),
    }
}

/// Classifies an error reported by the database server (PG) or library (SQLite).
fn classify_database(db: Box<dyn DatabaseError>) -> StoreError {
    if matches!(db.kind(), ErrorKind::UniqueViolation) {
        return StoreError::Conflict(db.message().to_owned());
    }
    let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
    if db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
        && pg_code_is_unavailable(&code)
    {
        return StoreError::Unavailable(format!("{} ({code})", db.message()));
    }
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
        && sqlite_code_is_unavailable(&code)
    {
        return StoreError::Unavailable(format!("{} (sqlite code {code})", db.message()));
    }
    StoreError::Other(anyhow::Error::new(sqlx::Error::Database(db)))
}

/// SQLSTATEs meaning "the server cannot serve you now": class 08 (connection exception),
/// 57P01..57P03 (admin/crash shutdown, cannot connect now), 53300 (too many connections).
fn pg_code_is_unavailable(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

/// SQLite result codes (possibly extended; the primary code is the low byte) meaning the
/// database is busy, locked, unopenable or failing I/O.
fn sqlite_code_is_unavailable(code: &str) -> bool {
    const SQLITE_BUSY: i64 = 5;
    const SQLITE_LOCKED: i64 = 6;
    const SQLITE_IOERR: i64 = 10;
    const SQLITE_FULL: i64 = 13;
    const SQLITE_CANTOPEN: i64 = 14;
    let Ok(extended) = code.parse::<i64>() else {
        return false;
    };
    matches!(
        extended & 0xff,
        SQLITE_BUSY | SQLITE_LOCKED | SQLITE_IOERR | SQLITE_FULL | SQLITE_CANTOPEN
    )
}

/// True when `err` is a foreign-key violation (the referenced row is missing).
pub(crate) fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if matches!(db.kind(), ErrorKind::ForeignKeyViolation))
}

/// True when `err` is a unique violation.
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if matches!(db.kind(), ErrorKind::UniqueViolation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_codes() {
        assert!(pg_code_is_unavailable("08006"));
        assert!(pg_code_is_unavailable("57P01"));
        assert!(!pg_code_is_unavailable("23505"));
    }

    #[test]
    fn sqlite_codes() {
        assert!(sqlite_code_is_unavailable("5"));
        assert!(sqlite_code_is_unavailable("517")); // SQLITE_BUSY_SNAPSHOT
        assert!(sqlite_code_is_unavailable("266")); // SQLITE_IOERR_READ
        assert!(!sqlite_code_is_unavailable("2067")); // SQLITE_CONSTRAINT_UNIQUE
        assert!(!sqlite_code_is_unavailable("garbage"));
    }

    #[test]
    fn pool_errors_are_unavailable() {
        assert!(matches!(
            StoreError::from(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            StoreError::from(sqlx::Error::PoolClosed),
            StoreError::Unavailable(_)
        ));
    }
}
