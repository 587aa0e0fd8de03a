//! `CoreError`: the one error type of the service layer. Callers branch on [`ErrorKind`];
//! the API maps each kind to a status code and fault name in exactly one place.

use shoal_store::StoreError;

/// What kind of failure, independent of transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is invalid (400).
    BadRequest,
    /// The caller may not do this (403).
    Forbidden,
    /// The resource does not exist or is not visible to the caller (404).
    NotFound,
    /// The resource's state forbids the request, or a compare-and-set was lost (409).
    Conflict,
    /// A quota would be exceeded (413).
    OverLimit,
    /// A dependency (database, Keystone) is unavailable (503).
    Unavailable,
    /// A bug or an unexpected failure (500).
    Internal,
}

/// Error of a core operation. The message of user-facing kinds is shown to the client
/// verbatim, so it copies Manila's wording where clients compare it.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A user-facing refusal with its kind and message.
    #[error("{message}")]
    User {
        /// Status class.
        kind: ErrorKind,
        /// Text for the client.
        message: String,
    },
    /// The database is unreachable.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Background work must wait for another holder (the per-share replica lock held by
    /// another node). Workers retry it without counting the attempt towards giving up,
    /// because waiting is not failing.
    #[error("busy: {0}")]
    Busy(String),
    /// Anything unexpected; never shown to clients.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl CoreError {
    /// A 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::User {
            kind: ErrorKind::BadRequest,
            message: message.into(),
        }
    }
    /// A 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::User {
            kind: ErrorKind::Forbidden,
            message: message.into(),
        }
    }
    /// A 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::User {
            kind: ErrorKind::NotFound,
            message: message.into(),
        }
    }
    /// A 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::User {
            kind: ErrorKind::Conflict,
            message: message.into(),
        }
    }
    /// A 413.
    pub fn over_limit(message: impl Into<String>) -> Self {
        Self::User {
            kind: ErrorKind::OverLimit,
            message: message.into(),
        }
    }

    /// The kind, for status mapping.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CoreError::User { kind, .. } => *kind,
            CoreError::Unavailable(_) => ErrorKind::Unavailable,
            CoreError::Busy(_) => ErrorKind::Conflict,
            CoreError::Internal(_) => ErrorKind::Internal,
        }
    }
}

impl From<StoreError> for CoreError {
    /// Store errors that reach the API without being translated by a service keep their
    /// class: a missing row is a 404, a lost compare-and-set a 409, an outage a 503.
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(m) => CoreError::not_found(m),
            StoreError::Conflict(m) => CoreError::conflict(m),
            StoreError::QuotaExceeded { resource, .. } => {
                CoreError::over_limit(format!("Quota exceeded for resources: ['{resource}']."))
            }
            StoreError::Unavailable(m) => CoreError::Unavailable(m),
            StoreError::Other(e) => CoreError::Internal(e),
        }
    }
}

/// Result alias of the service layer.
pub type CoreResult<T> = Result<T, CoreError>;
