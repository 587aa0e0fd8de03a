//! Keystone v3 token validation for Manila's `keystone` auth strategy.
//!
//! This crate owns what keystonemiddleware's `auth_token` filter does for
//! Manila: shoal authenticates to Keystone as a service user, validates the
//! `X-Auth-Token` of each API request against `GET /v3/auth/tokens`, and caches
//! the outcome for a bounded time in a bounded cache.
//!
//! * [`KeystoneConfig`] says where Keystone is and who shoal is.
//! * [`KeystoneValidator`] turns a user token into a [`TokenInfo`] or a
//!   [`ValidateError`]; [`ValidateError::Invalid`] means "answer 401",
//!   [`ValidateError::Unavailable`] means "answer 503".
//! * [`Clock`] makes the validator's notion of "now" injectable, so cache
//!   lifetimes and token expiry can be tested without sleeping.
//! * `standin` (feature `standin`) is a tiny in-process Keystone v3 token
//!   server for tests.
//!
//! Tokens and passwords are never logged, and `Debug` output redacts them.

mod clock;
mod config;
mod service;
mod token;
mod validator;
mod wire;

#[cfg(feature = "standin")]
pub mod standin;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    ConfigError, DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_TTL, DEFAULT_NEGATIVE_CACHE_TTL,
    DEFAULT_REQUEST_TIMEOUT, KeystoneConfig,
};
pub use token::TokenInfo;
pub use validator::{KeystoneValidator, ValidateError};
