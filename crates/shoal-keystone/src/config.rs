//! Validator configuration: where Keystone is, which service user shoal is,
//! and how long validation outcomes are trusted.
//!
//! The field names follow keystonemiddleware's `[keystone_authtoken]`
//! options (`auth_url`, `username`, `project_name`, `www_authenticate_uri`,
//! `token_cache_time`, ...), so operators can carry a Manila configuration
//! across.

use std::fmt;
use std::time::Duration;

/// How long a successfully validated token is trusted by default
/// (keystonemiddleware's `token_cache_time`).
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);
/// How long a rejected token is remembered as rejected by default.
pub const DEFAULT_NEGATIVE_CACHE_TTL: Duration = Duration::from_secs(10);
/// Default bound on the number of cached validation outcomes.
pub const DEFAULT_CACHE_CAPACITY: u64 = 10_000;
/// Default timeout of each HTTP request to Keystone.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How shoal talks to Keystone.
///
/// `Debug` redacts the password.
#[derive(Clone)]
pub struct KeystoneConfig {
    /// Keystone's identity endpoint, e.g. `http://127.0.0.1:5000/v3`; a
    /// trailing `/v3` (and trailing slashes) are optional.
    pub auth_url: String,
    /// The service user shoal authenticates as.
    pub username: String,
    /// The service user's password.
    pub password: String,
    /// The project the service token is scoped to.
    pub project_name: String,
    /// The domain (by name) of the service user.
    pub user_domain_name: String,
    /// The domain (by name) of the service project.
    pub project_domain_name: String,
    /// The URI advertised in `WWW-Authenticate` on 401 answers; defaults to
    /// `auth_url` without its version suffix.
    pub www_authenticate_uri: Option<String>,
    /// How long a validated token is trusted (never beyond its own expiry).
    pub cache_ttl: Duration,
    /// How long a rejected token is remembered as rejected, so a flood of bad
    /// tokens does not hammer Keystone.
    pub negative_cache_ttl: Duration,
    /// Bound on the number of cached validation outcomes.
    pub cache_capacity: u64,
    /// Timeout of each HTTP request to Keystone.
    pub request_timeout: Duration,
}

impl KeystoneConfig {
    /// A configuration with keystonemiddleware-like defaults: both domains
    /// `Default`, 300 s cache, 10 s negative cache, 10 000 entries, 10 s
    /// request timeout.
    pub fn new(
        auth_url: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
        project_name: impl Into<String>,
    ) -> Self {
        Self {
            auth_url: auth_url.into(),
            username: username.into(),
            password: password.into(),
            project_name: project_name.into(),
            user_domain_name: "Default".to_owned(),
            project_domain_name: "Default".to_owned(),
            www_authenticate_uri: None,
            cache_ttl: DEFAULT_CACHE_TTL,
            negative_cache_ttl: DEFAULT_NEGATIVE_CACHE_TTL,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// The identity endpoint without its version suffix or trailing slash,
    /// e.g. `http://127.0.0.1:5000`.
    pub(crate) fn identity_base(&self) -> Result<String, ConfigError> {
        let invalid = |reason: &str| ConfigError::InvalidAuthUrl {
            url: self.auth_url.clone(),
            reason: reason.to_owned(),
        };
        let mut base = self.auth_url.trim().trim_end_matches('/');
        if let Some(stripped) = base.strip_suffix("/v3") {
            base = stripped.trim_end_matches('/');
        }
        let parsed = reqwest::Url::parse(base).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid("scheme must be http or https"));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(invalid("no host"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(invalid("must not carry a query or fragment"));
        }
        Ok(base.to_owned())
    }

    /// The URI to advertise in `WWW-Authenticate`.
    pub(crate) fn www_authenticate_uri(&self, identity_base: &str) -> String {
        match &self.www_authenticate_uri {
            Some(uri) if !uri.trim().is_empty() => uri.trim().to_owned(),
            _ => identity_base.to_owned(),
        }
    }
}

impl fmt::Debug for KeystoneConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeystoneConfig")
            .field("auth_url", &self.auth_url)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("project_name", &self.project_name)
            .field("user_domain_name", &self.user_domain_name)
            .field("project_domain_name", &self.project_domain_name)
            .field("www_authenticate_uri", &self.www_authenticate_uri)
            .field("cache_ttl", &self.cache_ttl)
            .field("negative_cache_ttl", &self.negative_cache_ttl)
            .field("cache_capacity", &self.cache_capacity)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// Why a [`KeystoneConfig`] could not be turned into a validator.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `auth_url` is not a usable http(s) URL.
    #[error("invalid keystone auth_url {url:?}: {reason}")]
    InvalidAuthUrl {
        /// The configured URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the keystone HTTP client: {0}")]
    HttpClient(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str) -> KeystoneConfig {
        KeystoneConfig::new(url, "shoal", "hunter2", "service")
    }

    #[test]
    fn auth_url_is_normalised_with_or_without_version() {
        for url in [
            "http://127.0.0.1:5000",
            "http://127.0.0.1:5000/",
            "http://127.0.0.1:5000/v3",
            "http://127.0.0.1:5000/v3/",
            " http://127.0.0.1:5000//v3// ",
        ] {
            assert_eq!(
                cfg(url).identity_base().ok().as_deref(),
                Some("http://127.0.0.1:5000"),
                "{url}"
            );
        }
        assert_eq!(
            cfg("https://cloud.example/identity/v3")
                .identity_base()
                .ok()
                .as_deref(),
            Some("https://cloud.example/identity")
        );
    }

    #[test]
    fn bad_auth_urls_are_rejected() {
        for url in ["", "not a url", "ftp://example/v3", "http://h/v3?x=1"] {
            assert!(
                matches!(
                    cfg(url).identity_base(),
                    Err(ConfigError::InvalidAuthUrl { .. })
                ),
                "{url}"
            );
        }
    }

    #[test]
    fn debug_redacts_the_password() {
        let shown = format!("{:?}", cfg("http://127.0.0.1:5000"));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert!(shown.contains("shoal"));
    }

    #[test]
    fn www_authenticate_uri_defaults_to_identity_base() {
        let mut c = cfg("http://k:5000/v3");
        assert_eq!(c.www_authenticate_uri("http://k:5000"), "http://k:5000");
        c.www_authenticate_uri = Some("https://public.example:5000".to_owned());
        assert_eq!(
            c.www_authenticate_uri("http://k:5000"),
            "https://public.example:5000"
        );
    }

    #[test]
    fn defaults_match_keystonemiddleware() {
        let c = cfg("http://k:5000");
        assert_eq!(c.cache_ttl, Duration::from_secs(300));
        assert_eq!(c.cache_capacity, 10_000);
        assert_eq!(c.user_domain_name, "Default");
        assert_eq!(c.project_domain_name, "Default");
    }
}
