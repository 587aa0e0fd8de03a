//! shoal's own Keystone session: the project-scoped service token that
//! authorises `GET /v3/auth/tokens`.
//!
//! The token is obtained with the password method, kept until shortly
//! before it expires, and dropped early when Keystone rejects it. Concurrent
//! callers share one authentication request.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde_json::json;
use tokio::sync::Mutex;

use crate::clock::Clock;
use crate::config::KeystoneConfig;
use crate::validator::{ValidateError, describe_http_error};
use crate::wire;

/// A service token is renewed once it has less than this left to live
/// (keystoneauth's `MIN_TOKEN_LIFE_SECONDS`).
const REFRESH_MARGIN: TimeDelta = TimeDelta::seconds(120);

/// A service token and its expiry. `Debug` redacts the token.
#[derive(Clone)]
pub(crate) struct ServiceToken {
    header: HeaderValue,
    pub expires_at: DateTime<Utc>,
}

impl ServiceToken {
    /// The token as a (sensitive) header value for `X-Auth-Token`.
    pub fn header(&self) -> HeaderValue {
        self.header.clone()
    }
}

impl fmt::Debug for ServiceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The password credentials, kept apart so they can't be printed by accident.
struct Credentials {
    username: String,
    password: String,
    user_domain_name: String,
    project_name: String,
    project_domain_name: String,
}

impl Credentials {
    fn auth_request(&self) -> serde_json::Value {
        json!({
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": self.username,
                            "domain": {"name": self.user_domain_name},
                            "password": self.password,
                        }
                    }
                },
                "scope": {
                    "project": {
                        "name": self.project_name,
                        "domain": {"name": self.project_domain_name},
                    }
                }
            }
        })
    }
}

/// Holds and renews the service token.
pub(crate) struct ServiceSession {
    http: reqwest::Client,
    tokens_url: String,
    credentials: Credentials,
    clock: Arc<dyn Clock>,
    current: Mutex<Option<ServiceToken>>,
}

impl fmt::Debug for ServiceSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceSession")
            .field("tokens_url", &self.tokens_url)
            .field("username", &self.credentials.username)
            .finish_non_exhaustive()
    }
}

impl ServiceSession {
    pub fn new(
        http: reqwest::Client,
        tokens_url: String,
        cfg: &KeystoneConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            http,
            tokens_url,
            credentials: Credentials {
                username: cfg.username.clone(),
                password: cfg.password.clone(),
                user_domain_name: cfg.user_domain_name.clone(),
                project_name: cfg.project_name.clone(),
                project_domain_name: cfg.project_domain_name.clone(),
            },
            clock,
            current: Mutex::new(None),
        }
    }

    /// A service token with comfortable life left, authenticating if needed.
    pub async fn token(&self) -> Result<ServiceToken, ValidateError> {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref()
            && token.expires_at - REFRESH_MARGIN > self.clock.now()
        {
            return Ok(token.clone());
        }
        let fresh = self.authenticate().await?;
        *current = Some(fresh.clone());
        Ok(fresh)
    }

    /// Forgets `rejected` (which Keystone just refused) unless it has
    /// already been replaced.
    pub async fn invalidate(&self, rejected: &ServiceToken) {
        let mut current = self.current.lock().await;
        if current
            .as_ref()
            .is_some_and(|held| held.header == rejected.header)
        {
            *current = None;
        }
    }

    async fn authenticate(&self) -> Result<ServiceToken, ValidateError> {
        let response = self
            .http
            .post(&self.tokens_url)
            .json(&self.credentials.auth_request())
            .send()
            .await
            .map_err(|e| {
                unavailable(format!(
                    "cannot reach keystone to authenticate the service user: {}",
                    describe_http_error(&e)
                ))
            })?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            return Err(unavailable(format!(
                "keystone rejected the credentials of service user {:?} (401)",
                self.credentials.username
            )));
        }
        if !status.is_success() {
            return Err(unavailable(format!(
                "keystone answered {status} when authenticating the service user"
            )));
        }
        let header = response
            .headers()
            .get("x-subject-token")
            .filter(|v| !v.is_empty())
            .cloned()
            .map(|mut v| {
                v.set_sensitive(true);
                v
            })
            .ok_or_else(|| {
                unavailable("keystone issued a service token without X-Subject-Token".to_owned())
            })?;
        let body = response.bytes().await.map_err(|e| {
            unavailable(format!(
                "cannot read keystone's service token response: {}",
                describe_http_error(&e)
            ))
        })?;
        let document: wire::TokenDocument = serde_json::from_slice(&body).map_err(|e| {
            unavailable(format!(
                "unreadable service token document from keystone: {e}"
            ))
        })?;
        let expires_at = wire::parse_timestamp(&document.token.expires_at).ok_or_else(|| {
            unavailable("unreadable expires_at in keystone's service token".to_owned())
        })?;
        tracing::info!(
            username = %self.credentials.username,
            %expires_at,
            "obtained keystone service token"
        );
        Ok(ServiceToken { header, expires_at })
    }
}

fn unavailable(message: String) -> ValidateError {
    tracing::warn!(error = %message, "keystone service authentication failed");
    ValidateError::Unavailable(message)
}
