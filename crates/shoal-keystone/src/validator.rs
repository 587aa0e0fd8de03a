//! [`KeystoneValidator`]: validates user tokens against Keystone and caches
//! the outcome.
//!
//! Successful validations are cached for `min(cache_ttl, time left on the
//! token)`; rejections for `negative_cache_ttl`; an unavailable Keystone is
//! never cached. Concurrent validations of the same token share one request
//! to Keystone. The cache is keyed by a keyed 128-bit hash of the token, with
//! keys drawn at random per validator, so raw tokens are not cache keys.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use moka::Expiry;
use moka::future::Cache;
use reqwest::StatusCode;
use reqwest::header::HeaderValue;

use crate::clock::{Clock, SystemClock};
use crate::config::{ConfigError, KeystoneConfig};
use crate::service::ServiceSession;
use crate::token::{Rejection, TokenInfo, token_info};
use crate::wire;

/// Tokens longer than this are rejected without asking Keystone (Fernet
/// tokens are ~200 bytes; this leaves ample room for JWS tokens).
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidateError {
    /// The token is bad, expired, revoked or not project-scoped: the caller
    /// should answer 401.
    #[error("the token is invalid, expired, revoked or not project-scoped")]
    Invalid,
    /// Keystone could not vouch either way (unreachable, 5xx, or shoal's own
    /// service credentials failing): the caller should answer 503.
    #[error("identity service unavailable: {0}")]
    Unavailable(String),
}

/// Validates Keystone v3 tokens for Manila's `keystone` auth strategy.
///
/// Cheap to clone; clones share the cache and the service token.
#[derive(Clone)]
pub struct KeystoneValidator {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    tokens_url: String,
    www_authenticate_uri: String,
    service: ServiceSession,
    clock: Arc<dyn Clock>,
    cache: Cache<u128, CacheEntry>,
    cache_ttl: Duration,
    negative_cache_ttl: Duration,
    key_hashers: (RandomState, RandomState),
}

impl fmt::Debug for KeystoneValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeystoneValidator")
            .field("tokens_url", &self.inner.tokens_url)
            .field("service", &self.inner.service)
            .field("cache_ttl", &self.inner.cache_ttl)
            .field("negative_cache_ttl", &self.inner.negative_cache_ttl)
            .field("cached_entries", &self.inner.cache.entry_count())
            .finish_non_exhaustive()
    }
}

/// A cached validation outcome.
#[derive(Clone)]
struct CacheEntry {
    outcome: Outcome,
    /// When the entry stops being trusted, by the validator's clock.
    until: DateTime<Utc>,
    /// The same lifetime as a duration, for moka's own eviction.
    ttl: Duration,
}

#[derive(Clone)]
enum Outcome {
    Valid(Arc<TokenInfo>),
    Invalid,
}

/// Tells moka to evict each entry after its own lifetime.
struct EntryExpiry;

impl Expiry<u128, CacheEntry> for EntryExpiry {
    fn expire_after_create(
        &self,
        _key: &u128,
        value: &CacheEntry,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

impl KeystoneValidator {
    /// A validator using the system clock.
    pub fn new(cfg: KeystoneConfig) -> Result<Self, ConfigError> {
        Self::with_clock(cfg, Arc::new(SystemClock))
    }

    /// A validator deciding cache lifetimes and expiry by `clock`.
    pub fn with_clock(cfg: KeystoneConfig, clock: Arc<dyn Clock>) -> Result<Self, ConfigError> {
        let base = cfg.identity_base()?;
        let tokens_url = format!("{base}/v3/auth/tokens");
        let http = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.request_timeout)
            // Tokens travel in headers reqwest would forward on redirect.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("shoal-keystone/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::HttpClient(describe_http_error(&e)))?;
        let cache = Cache::builder()
            .name("keystone-tokens")
            .max_capacity(cfg.cache_capacity)
            .expire_after(EntryExpiry)
            .build();
        let service = ServiceSession::new(http.clone(), tokens_url.clone(), &cfg, clock.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                www_authenticate_uri: cfg.www_authenticate_uri(&base),
                tokens_url,
                service,
                clock,
                cache,
                cache_ttl: cfg.cache_ttl,
                negative_cache_ttl: cfg.negative_cache_ttl,
                key_hashers: (RandomState::new(), RandomState::new()),
            }),
        })
    }

    /// Validates `user_token` (the request's `X-Auth-Token`).
    ///
    /// Answers from the cache when it can; otherwise asks Keystone, sharing
    /// the request with concurrent validations of the same token.
    pub async fn validate(&self, user_token: &str) -> Result<TokenInfo, ValidateError> {
        if user_token.is_empty() || user_token.len() > MAX_TOKEN_LEN {
            return Err(ValidateError::Invalid);
        }
        let inner = &self.inner;
        let key = inner.cache_key(user_token);
        if let Some(entry) = inner.cache.get(&key).await {
            if entry.until > inner.clock.now() {
                return entry.outcome.into_result();
            }
            inner.cache.invalidate(&key).await;
        }
        let entry = inner
            .cache
            .try_get_with(key, inner.lookup(user_token))
            .await
            .map_err(|e| ValidateError::clone(&e))?;
        entry.outcome.into_result()
    }

    /// The `WWW-Authenticate` header value for 401 answers:
    /// `Keystone uri="<www_authenticate_uri>"`.
    pub fn www_authenticate_header(&self) -> String {
        format!(
            "Keystone uri=\"{}\"",
            self.inner.www_authenticate_uri.replace('"', "%22")
        )
    }

    /// Drops every cached validation outcome (e.g. after a policy change).
    pub fn clear_cache(&self) {
        self.inner.cache.invalidate_all();
    }
}

impl Outcome {
    fn into_result(self) -> Result<TokenInfo, ValidateError> {
        match self {
            Outcome::Valid(info) => Ok(TokenInfo::clone(&info)),
            Outcome::Invalid => Err(ValidateError::Invalid),
        }
    }
}

impl Inner {
    fn cache_key(&self, token: &str) -> u128 {
        let (high, low) = &self.key_hashers;
        (u128::from(high.hash_one(token)) << 64) | u128::from(low.hash_one(token))
    }

    fn negative(&self, why: &str) -> CacheEntry {
        tracing::debug!(reason = why, "keystone token rejected");
        let ttl = self.negative_cache_ttl;
        CacheEntry {
            outcome: Outcome::Invalid,
            until: self.clock.now() + chrono::TimeDelta::from_std(ttl).unwrap_or_default(),
            ttl,
        }
    }

    fn positive(&self, info: TokenInfo) -> CacheEntry {
        let now = self.clock.now();
        let left = (info.expires_at - now).to_std().unwrap_or_default();
        let ttl = left.min(self.cache_ttl);
        tracing::debug!(
            user_id = %info.user_id,
            project_id = %info.project_id,
            "keystone token validated"
        );
        CacheEntry {
            until: now + chrono::TimeDelta::from_std(ttl).unwrap_or_default(),
            ttl,
            outcome: Outcome::Valid(Arc::new(info)),
        }
    }

    /// Asks Keystone about `user_token`. `Ok` outcomes (valid or invalid)
    /// are cached; `Err` (unavailable) is not.
    async fn lookup(&self, user_token: &str) -> Result<CacheEntry, ValidateError> {
        let Ok(mut subject) = HeaderValue::from_str(user_token) else {
            return Ok(self.negative("token is not a valid header value"));
        };
        subject.set_sensitive(true);
        let mut retried = false;
        loop {
            let service = self.service.token().await?;
            let response = self
                .http
                .get(&self.tokens_url)
                .query(&[("nocatalog", "")])
                .header("x-auth-token", service.header())
                .header("x-subject-token", subject.clone())
                .send()
                .await
                .map_err(|e| {
                    unavailable(format!(
                        "cannot reach keystone to validate a token: {}",
                        describe_http_error(&e)
                    ))
                })?;
            let status = response.status();
            if status.is_success() {
                let body = response.bytes().await.map_err(|e| {
                    unavailable(format!(
                        "cannot read keystone's token validation response: {}",
                        describe_http_error(&e)
                    ))
                })?;
                let document: wire::TokenDocument = serde_json::from_slice(&body)
                    .map_err(|e| unavailable(format!("unreadable token document: {e}")))?;
                return match token_info(document.token, self.clock.now()) {
                    Ok(info) => Ok(self.positive(info)),
                    Err(Rejection::Invalid(why)) => Ok(self.negative(why)),
                    Err(Rejection::Malformed(why)) => {
                        Err(unavailable(format!("bad token document: {why}")))
                    }
                };
            }
            match status {
                StatusCode::NOT_FOUND => return Ok(self.negative("keystone: token not found")),
                // Keystone refused our service token (expired or revoked
                // early): renew it and ask again, once.
                StatusCode::UNAUTHORIZED if !retried => {
                    tracing::info!("keystone rejected the service token; re-authenticating");
                    self.service.invalidate(&service).await;
                    retried = true;
                }
                // A freshly issued service token was refused too, so the
                // refusal is about the subject token.
                StatusCode::UNAUTHORIZED => {
                    return Ok(self.negative("keystone: 401 with a fresh service token"));
                }
                other => {
                    return Err(unavailable(format!(
                        "keystone answered {other} to token validation"
                    )));
                }
            }
        }
    }
}

fn unavailable(message: String) -> ValidateError {
    tracing::warn!(error = %message, "keystone token validation unavailable");
    ValidateError::Unavailable(message)
}

/// An HTTP error with its causes, e.g. "error sending request: connection
/// refused". Never contains headers, so never contains tokens.
pub(crate) fn describe_http_error(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn validator(clock: Arc<dyn Clock>) -> KeystoneValidator {
        let cfg = KeystoneConfig::new(
            "http://keystone.invalid:5000/v3",
            "shoal",
            "correct-horse",
            "service",
        );
        match KeystoneValidator::with_clock(cfg, clock) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn cache_keys_are_stable_and_distinct() {
        let v = validator(Arc::new(SystemClock));
        assert_eq!(v.inner.cache_key("abc"), v.inner.cache_key("abc"));
        assert_ne!(v.inner.cache_key("abc"), v.inner.cache_key("abd"));
        // Keys are per validator, so they can't be precomputed.
        let other = validator(Arc::new(SystemClock));
        assert_ne!(v.inner.cache_key("abc"), other.inner.cache_key("abc"));
    }

    #[test]
    fn positive_ttl_is_capped_by_token_expiry() {
        let clock = Arc::new(ManualClock::starting_now());
        let v = validator(clock.clone());
        let info = |left: i64| TokenInfo {
            user_id: "u".into(),
            user_name: "n".into(),
            project_id: "p".into(),
            project_name: "pn".into(),
            domain_id: None,
            project_domain_id: None,
            roles: vec![],
            expires_at: clock.now() + chrono::TimeDelta::seconds(left),
        };
        assert_eq!(v.inner.positive(info(30)).ttl, Duration::from_secs(30));
        assert_eq!(v.inner.positive(info(3600)).ttl, Duration::from_secs(300));
        assert_eq!(v.inner.positive(info(-5)).ttl, Duration::ZERO);
        assert_eq!(v.inner.negative("x").ttl, Duration::from_secs(10));
    }

    #[test]
    fn www_authenticate_names_keystone() {
        let v = validator(Arc::new(SystemClock));
        assert_eq!(
            v.www_authenticate_header(),
            r#"Keystone uri="http://keystone.invalid:5000""#
        );
    }

    #[tokio::test]
    async fn empty_oversized_and_unprintable_tokens_are_invalid_without_keystone() {
        // The auth_url does not resolve: reaching for Keystone would be
        // Unavailable, so Invalid proves Keystone was not asked.
        let v = validator(Arc::new(SystemClock));
        assert_eq!(v.validate("").await, Err(ValidateError::Invalid));
        let huge = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(v.validate(&huge).await, Err(ValidateError::Invalid));
        assert_eq!(v.validate("bad\ntoken").await, Err(ValidateError::Invalid));
    }

    #[test]
    fn debug_shows_no_secrets() {
        let v = validator(Arc::new(SystemClock));
        let shown = format!("{v:?}");
        assert!(!shown.contains("correct-horse"), "{shown}");
        assert!(shown.contains("tokens_url"));
    }
}
