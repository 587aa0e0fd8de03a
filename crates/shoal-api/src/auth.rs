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

/// Middleware authenticating every `/v2` request.
pub async fn authenticate(
    State(auth): State<Authenticator>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = header_text(&request, AUTH_TOKEN).filter(|t| !t.is_empty());
    let identity = match (&auth, token) {
        (Authenticator::Noauth, None) => return noauth_token_reply(&request),
        (Authenticator::Noauth, Some(token)) => noauth_identity(&token),
        (Authenticator::Keystone(validator), None) => {
            return keystone_unauthorized(&validator.www_authenticate_header());
        }
        (Authenticator::Keystone(validator), Some(token)) => match validator.validate(&token).await
        {
            Ok(info) => Identity {
                user_id: info.user_id,
                project_id: info.project_id,
                roles: info.roles,
                force_admin: false,
            },
            Err(ValidateError::Invalid) => {
                return keystone_unauthorized(&validator.www_authenticate_header());
            }
            Err(err) => return identity_unavailable(&err),
        },
        (Authenticator::Builtin(identity), token) => {
            // Built only on the refusal paths: a valid token is the hot path.
            let refuse = |request: &Request| {
                keystone_unauthorized(&crate::identity::www_authenticate(
                    identity,
                    request.headers(),
                ))
            };
            let Some(token) = token else {
                return refuse(&request);
            };
            match identity.validate(&token, chrono::Utc::now()).await {
                Ok(valid) => match valid.project {
                    Some(project) => Identity {
                        user_id: valid.user.id,
                        project_id: project.id,
                        roles: valid.roles,
                        force_admin: false,
                    },
                    // Manila needs a project: an unscoped token is not enough.
                    None => return refuse(&request),
                },
                Err(err @ shoal_identity::IdentityError::Unavailable(_)) => {
                    return identity_unavailable(&err);
                }
                Err(_) => return refuse(&request),
            }
        }
    };
    request.extensions_mut().insert(identity);
    next.run(request).await
}
