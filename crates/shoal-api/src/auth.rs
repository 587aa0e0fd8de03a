//! Authentication of `/v2` requests, Manila's `auth_strategy`:
//! * `noauth` (`manila/api/middleware/auth.py::NoAuthMiddleware`): without a token the
//!   middleware answers 204 with a fake token; with `X-Auth-Token: user[:project]` every
//!   caller is an admin of that project.
//! * `keystone`: the token is validated against Keystone (with a bounded cache in
//!   `shoal-keystone`); failures get keystonemiddleware's 401 envelope.
//! * `builtin`: the token was issued by shoal's own identity (`/identity`, see
//!   [`crate::identity`]) and is validated locally; failures get the same 401 envelope,
//!   pointing `WWW-Authenticate` at `/identity`. Only project-scoped tokens reach `/v2`.
//!
//! The result is an [`Identity`] in the request extensions, read by the context extractor.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use shoal_keystone::{KeystoneValidator, ValidateError};

use crate::microversion::RawResponse;

/// Who the caller is, after authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// User id.
    pub user_id: String,
    /// Project the token is scoped to.
    pub project_id: String,
    /// Role names.
    pub roles: Vec<String>,
    /// Forced admin (noauth); otherwise decided by the `context_is_admin` policy.
    pub force_admin: bool,
}

/// The configured strategy.
#[derive(Clone)]
pub enum Authenticator {
    /// Manila's noauth.
    Noauth,
    /// Keystone token validation.
    Keystone(Arc<KeystoneValidator>),
    /// shoal's built-in identity.
    Builtin(Arc<shoal_identity::IdentityService>),
}

/// Request header of the token.
const AUTH_TOKEN: &str = "x-auth-token";

fn raw(mut response: Response) -> Response {
    response.extensions_mut().insert(RawResponse);
    response
}

/// keystonemiddleware's 401 (not Manila's envelope).
fn keystone_unauthorized(www_authenticate: &str) -> Response {
    let body = json!({"error": {"code": 401, "title": "Unauthorized",
        "message": "The request you have made requires authentication."}});
    let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(www_authenticate) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    raw(response)
}

fn header_text(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// noauth without a token: hand the client a fake token and the management URL.
fn noauth_token_reply(request: &Request) -> Response {
    let user = header_text(request, "x-auth-user").unwrap_or_else(|| "admin".to_owned());
    let project = header_text(request, "x-auth-project-id").unwrap_or_else(|| "admin".to_owned());
    let host = header_text(request, "host").unwrap_or_else(|| "localhost".to_owned());
    let url = format!(
        "http://{host}{}/{project}",
        request.uri().path().trim_end_matches('/')
    );
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("{user}:{project}")) {
        headers.insert(AUTH_TOKEN, v);
    }
    if let Ok(v) = HeaderValue::from_str(&url) {
        headers.insert("x-server-management-url", v);
    }
    raw(response)
}

/// Parses a noauth token `user[:project]`.
pub fn noauth_identity(token: &str) -> Identity {
    let (user, project) = token.split_once(':').unwrap_or((token, token));
    Identity {
        user_id: user.to_owned(),
        project_id: project.to_owned(),
        roles: vec!["admin".to_owned()],
        force_admin: true,
    }
}

/// 503 when tokens cannot be checked (Keystone or the database is down).
fn identity_unavailable(err: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %err, "token validation failed: {err}");
    let body = json!({"error": {"code": 503, "title": "Service Unavailable",
        "message": "The identity service is unavailable."}});
    raw((StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response())
}

/// Why a presented token does not identify anybody.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The token is unknown, expired, revoked or (built-in identity) not project-scoped.
    Invalid,
    /// The token could not be checked: Keystone or the database is down (the cause).
    Unavailable(String),
}

/// Who `token` belongs to, under the configured strategy. Shared by the `/v2` middleware
/// and the detailed `/healthcheck`, so both decide identity the same way.
pub async fn identify(auth: &Authenticator, token: &str) -> Result<Identity, Refusal> {
    match auth {
        Authenticator::Noauth => Ok(noauth_identity(token)),
        Authenticator::Keystone(validator) => match validator.validate(token).await {
            Ok(info) => Ok(Identity {
                user_id: info.user_id,
                project_id: info.project_id,
                roles: info.roles,
                force_admin: false,
            }),
            Err(ValidateError::Invalid) => Err(Refusal::Invalid),
            Err(err) => Err(Refusal::Unavailable(err.to_string())),
        },
        Authenticator::Builtin(identity) => {
            match identity.validate(token, chrono::Utc::now()).await {
                Ok(valid) => match valid.project {
                    Some(project) => Ok(Identity {
                        user_id: valid.user.id,
                        project_id: project.id,
                        roles: valid.roles,
                        force_admin: false,
                    }),
                    // Manila needs a project: an unscoped token is not enough.
                    None => Err(Refusal::Invalid),
                },
                Err(err @ shoal_identity::IdentityError::Unavailable(_)) => {
                    Err(Refusal::Unavailable(err.to_string()))
                }
                Err(_) => Err(Refusal::Invalid),
            }
        }
    }
}

/// The token of a request, if it carries a non-empty one.
pub fn request_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(AUTH_TOKEN)
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty())
}

/// The answer to a request without a usable token: noauth's fake-token reply (noauth
/// takes every token, so it only gets here without one), otherwise the 401 envelope.
fn refuse(auth: &Authenticator, request: &Request) -> Response {
    match auth {
        Authenticator::Noauth => noauth_token_reply(request),
        Authenticator::Keystone(validator) => {
            keystone_unauthorized(&validator.www_authenticate_header())
        }
        Authenticator::Builtin(identity) => keystone_unauthorized(
            &crate::identity::www_authenticate(identity, request.headers()),
        ),
    }
}

/// Middleware authenticating every `/v2` request.
pub async fn authenticate(
    State(auth): State<Authenticator>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(token) = request_token(request.headers()).map(str::to_owned) else {
        metrics::counter!("shoal_auth_refusals_total", "reason" => "no_token").increment(1);
        return refuse(&auth, &request);
    };
    let identity = match identify(&auth, &token).await {
        Ok(identity) => identity,
        Err(Refusal::Invalid) => {
            metrics::counter!("shoal_auth_refusals_total", "reason" => "invalid_token")
                .increment(1);
            return refuse(&auth, &request);
        }
        Err(Refusal::Unavailable(cause)) => {
            metrics::counter!("shoal_auth_refusals_total", "reason" => "identity_unavailable")
                .increment(1);
            return identity_unavailable(&cause);
        }
    };
    request.extensions_mut().insert(identity);
    next.run(request).await
}
