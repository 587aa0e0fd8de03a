//! A tiny in-process Keystone v3 token server for tests (feature `standin`).
//!
//! It owns a handful of users (all in the `Default` domain, each with roles
//! on one project), the tokens it has issued, and these endpoints:
//!
//! * `POST /v3/auth/tokens`: password authentication, unscoped or scoped to
//!   the user's project (by id, or by name and domain); 201 with the token
//!   in `X-Subject-Token`.
//! * `GET` / `HEAD /v3/auth/tokens`: validation; the caller's `X-Auth-Token`
//!   must carry role `admin` or `service` (or be the subject itself).
//! * `DELETE /v3/auth/tokens`: revocation, under the same rule.
//! * `GET /v3`: a minimal version document.
//!
//! Errors use Keystone's body, `{"error": {"code", "title", "message"}}`.
//! It is test support: state lives in one `Mutex`, nothing is persisted.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::wire;

/// The id of the only domain.
pub const DEFAULT_DOMAIN_ID: &str = "default";
/// The name of the only domain.
pub const DEFAULT_DOMAIN_NAME: &str = "Default";
/// Lifetime of the tokens the stand-in issues unless told otherwise
/// (Keystone's default `[token] expiration`).
pub const DEFAULT_TOKEN_LIFETIME: TimeDelta = TimeDelta::hours(1);

/// A Keystone v3 stand-in serving on an ephemeral port of 127.0.0.1 until
/// dropped.
pub struct KeystoneStandin {
    /// Base URL, `http://127.0.0.1:PORT` (append `/v3` or not: the validator
    /// accepts both).
    pub url: String,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for KeystoneStandin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeystoneStandin")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

struct Shared {
    state: Mutex<StandinState>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, StandinState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Default)]
struct StandinState {
    users: Vec<UserRecord>,
    /// Role name → role id.
    roles: HashMap<String, String>,
    tokens: HashMap<String, IssuedToken>,
    validations: usize,
    authentications: usize,
    down: bool,
    /// Set on drop, so requests still in flight on kept-alive connections
    /// are refused until the server has wound down.
    closed: bool,
}

struct UserRecord {
    id: String,
    name: String,
    password: String,
    project_id: String,
    project_name: String,
    roles: Vec<String>,
}

struct IssuedToken {
    user_id: String,
    scoped: bool,
    methods: Vec<String>,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    audit_id: String,
    revoked: bool,
}

/// Why a token presented to the stand-in is not usable.
enum TokenProblem {
    Unknown,
    Revoked,
    Expired,
}

impl TokenProblem {
    fn describe(&self) -> &'static str {
        match self {
            TokenProblem::Unknown => "Could not find token.",
            TokenProblem::Revoked => "Could not find token: it has been revoked.",
            TokenProblem::Expired => "Could not find token: it has expired.",
        }
    }
}

impl StandinState {
    fn user_by_name(&self, name: &str) -> Option<&UserRecord> {
        self.users.iter().find(|u| u.name == name)
    }

    fn user_by_id(&self, id: &str) -> Option<&UserRecord> {
        self.users.iter().find(|u| u.id == id)
    }

    fn role_id(&mut self, name: &str) -> String {
        self.roles
            .entry(name.to_owned())
            .or_insert_with(new_id)
            .clone()
    }

    fn mint(&mut self, user_id: String, scoped: bool, expires_at: DateTime<Utc>) -> String {
        let token = format!("gAAAAAstandin{}", new_id());
        self.tokens.insert(
            token.clone(),
            IssuedToken {
                user_id,
                scoped,
                methods: vec!["password".to_owned()],
                issued_at: Utc::now(),
                expires_at,
                audit_id: new_id(),
                revoked: false,
            },
        );
        token
    }

    /// A token that is known, unrevoked and unexpired.
    fn live_token(&self, token: &str) -> Result<&IssuedToken, TokenProblem> {
        let issued = self.tokens.get(token).ok_or(TokenProblem::Unknown)?;
        if issued.revoked {
            return Err(TokenProblem::Revoked);
        }
        if issued.expires_at <= Utc::now() {
            return Err(TokenProblem::Expired);
        }
        if self.user_by_id(&issued.user_id).is_none() {
            return Err(TokenProblem::Unknown);
        }
        Ok(issued)
    }

    /// The Keystone v3 document for `issued`; roles are the user's current
    /// ones, as with Keystone's Fernet tokens.
    fn render(&self, issued: &IssuedToken) -> Option<wire::TokenDocument> {
        let user = self.user_by_id(&issued.user_id)?;
        let domain = || wire::Domain {
            id: Some(DEFAULT_DOMAIN_ID.to_owned()),
            name: Some(DEFAULT_DOMAIN_NAME.to_owned()),
        };
        let (project, roles, is_domain) = if issued.scoped {
            let roles = user
                .roles
                .iter()
                .map(|name| wire::Role {
                    id: self.roles.get(name).cloned(),
                    name: name.clone(),
                })
                .collect();
            let project = wire::Project {
                id: user.project_id.clone(),
                name: user.project_name.clone(),
                domain: Some(domain()),
            };
            (Some(project), Some(roles), Some(false))
        } else {
            (None, None, None)
        };
        Some(wire::TokenDocument {
            token: wire::Token {
                methods: issued.methods.clone(),
                user: wire::User {
                    id: user.id.clone(),
                    name: user.name.clone(),
                    domain: Some(domain()),
                },
                expires_at: wire::format_timestamp(issued.expires_at),
                issued_at: Some(wire::format_timestamp(issued.issued_at)),
                audit_ids: vec![issued.audit_id.clone()],
                project,
                is_domain,
                roles,
            },
        })
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl KeystoneStandin {
    /// Starts a stand-in on `127.0.0.1:0`.
    ///
    /// # Panics
    /// If no local port can be bound; use [`KeystoneStandin::try_start`] to
    /// handle that.
    pub async fn start() -> Self {
        match Self::try_start().await {
            Ok(standin) => standin,
            Err(e) => panic!("cannot start the keystone stand-in: {e}"),
        }
    }

    /// Starts a stand-in on `127.0.0.1:0`, reporting bind failures.
    pub async fn try_start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(StandinState::default()),
        });
        let app = router(shared.clone());
        let (shutdown, stop) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // A dropped sender also means "stop".
                    let _ = stop.await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "keystone stand-in stopped with an error");
            }
        });
        Ok(Self {
            url: format!("http://{addr}"),
            shared,
            shutdown: Some(shutdown),
        })
    }

    /// Adds a user in the `Default` domain with `roles` on project
    /// `project_id`/`project_name`, and returns the user's id. Adding an
    /// existing name updates that user (same id).
    pub fn add_user(
        &self,
        name: &str,
        password: &str,
        project_id: &str,
        project_name: &str,
        roles: &[&str],
    ) -> String {
        let mut state = self.shared.lock();
        for role in roles {
            state.role_id(role);
        }
        let record = UserRecord {
            id: state
                .user_by_name(name)
                .map_or_else(new_id, |u| u.id.clone()),
            name: name.to_owned(),
            password: password.to_owned(),
            project_id: project_id.to_owned(),
            project_name: project_name.to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        };
        let id = record.id.clone();
        state.users.retain(|u| u.name != name);
        state.users.push(record);
        id
    }

    /// Mints a project-scoped token for `user_name`, valid for an hour.
    ///
    /// # Panics
    /// If `user_name` was never added.
    pub fn issue_token(&self, user_name: &str) -> String {
        self.issue(user_name, true, Utc::now() + DEFAULT_TOKEN_LIFETIME)
    }

    /// Mints a project-scoped token for `user_name` expiring at
    /// `expires_at` (which may be in the past).
    ///
    /// # Panics
    /// If `user_name` was never added.
    pub fn issue_token_with_expiry(&self, user_name: &str, expires_at: DateTime<Utc>) -> String {
        self.issue(user_name, true, expires_at)
    }

    /// Mints an unscoped token (no project, no roles) for `user_name`.
    ///
    /// # Panics
    /// If `user_name` was never added.
    pub fn issue_unscoped_token(&self, user_name: &str) -> String {
        self.issue(user_name, false, Utc::now() + DEFAULT_TOKEN_LIFETIME)
    }

    fn issue(&self, user_name: &str, scoped: bool, expires_at: DateTime<Utc>) -> String {
        let mut state = self.shared.lock();
        let Some(user_id) = state.user_by_name(user_name).map(|u| u.id.clone()) else {
            panic!("keystone stand-in has no user {user_name:?}");
        };
        state.mint(user_id, scoped, expires_at)
    }

    /// Revokes `token`; later validations of it answer 404.
    pub fn revoke(&self, token: &str) {
        if let Some(issued) = self.shared.lock().tokens.get_mut(token) {
            issued.revoked = true;
        }
    }

    /// Revokes every token issued to `user_name` (e.g. shoal's service
    /// token, which a test never sees) and returns how many there were.
    pub fn revoke_user_tokens(&self, user_name: &str) -> usize {
        let mut state = self.shared.lock();
        let Some(user_id) = state.user_by_name(user_name).map(|u| u.id.clone()) else {
            return 0;
        };
        let mut revoked = 0;
        for issued in state.tokens.values_mut() {
            if issued.user_id == user_id && !issued.revoked {
                issued.revoked = true;
                revoked += 1;
            }
        }
        revoked
    }

    /// How many `GET /v3/auth/tokens` requests reached the validation
    /// handler (requests refused with 503 while unavailable are not counted).
    pub fn validation_count(&self) -> usize {
        self.shared.lock().validations
    }

    /// How many `POST /v3/auth/tokens` requests reached the authentication
    /// handler, successful or not.
    pub fn authentication_count(&self) -> usize {
        self.shared.lock().authentications
    }

    /// While `down`, every request is answered 503.
    pub fn set_unavailable(&self, down: bool) {
        self.shared.lock().down = down;
    }
}

impl Drop for KeystoneStandin {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        if let Some(shutdown) = self.shutdown.take() {
            // The server may already be gone; then there is nothing to stop.
            let _ = shutdown.send(());
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/v3/auth/tokens",
            get(validate_token).post(issue_token).delete(revoke_token),
        )
        .route("/v3", get(version))
        .route("/v3/", get(version))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(shared.clone(), availability))
        .with_state(shared)
}

/// Keystone's error document.
fn keystone_error(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = json!({
        "error": {"code": status.as_u16(), "title": title, "message": message}
    });
    (status, axum::Json(body)).into_response()
}

/// Keystone's message for a missing or bad credential.
const UNAUTHENTICATED: &str = "The request you have made requires authentication.";

fn unauthorized() -> Response {
    keystone_error(StatusCode::UNAUTHORIZED, UNAUTHENTICATED)
}

/// A refusal, rendered as Keystone's error document.
struct Refusal(StatusCode, &'static str);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        keystone_error(self.0, self.1)
    }
}

async fn availability(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let refuse = {
        let state = shared.lock();
        state.down || state.closed
    };
    if refuse {
        return keystone_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is temporarily unavailable.",
        );
    }
    next.run(request).await
}

async fn not_found() -> Response {
    keystone_error(StatusCode::NOT_FOUND, "The resource could not be found.")
}

async fn version(headers: HeaderMap) -> Response {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    axum::Json(json!({
        "version": {
            "id": "v3.14",
            "status": "stable",
            "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": format!("http://{host}/v3/")}],
            "media-types": [{
                "base": "application/json",
                "type": "application/vnd.openstack.identity-v3+json"
            }]
        }
    }))
    .into_response()
}

/// `POST /v3/auth/tokens`.
async fn issue_token(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let mut state = shared.lock();
    state.authentications += 1;
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return keystone_error(
            StatusCode::BAD_REQUEST,
            "Expecting to find auth in request body.",
        );
    };
    let auth = &request["auth"];
    let methods = &auth["identity"]["methods"];
    if !methods
        .as_array()
        .is_some_and(|m| m.iter().any(|m| m == "password"))
    {
        return unauthorized();
    }
    let claimed = &auth["identity"]["password"]["user"];
    let user = if let Some(id) = claimed["id"].as_str() {
        state.user_by_id(id)
    } else if let Some(name) = claimed["name"].as_str() {
        if !names_default_domain(&claimed["domain"]) {
            return unauthorized();
        }
        state.user_by_name(name)
    } else {
        return keystone_error(
            StatusCode::BAD_REQUEST,
            "Expecting to find id or name in user.",
        );
    };
    let Some(user) = user else {
        return unauthorized();
    };
    if claimed["password"].as_str() != Some(user.password.as_str()) {
        return unauthorized();
    }
    let scope = &auth["scope"];
    let scoped = if scope.is_null() {
        false
    } else {
        let project = &scope["project"];
        let matches = if let Some(id) = project["id"].as_str() {
            id == user.project_id
        } else if let Some(name) = project["name"].as_str() {
            name == user.project_name && names_default_domain(&project["domain"])
        } else {
            false
        };
        if !matches {
            return keystone_error(
                StatusCode::UNAUTHORIZED,
                "User has no access to the requested project.",
            );
        }
        true
    };
    let user_id = user.id.clone();
    let token = state.mint(user_id, scoped, Utc::now() + DEFAULT_TOKEN_LIFETIME);
    token_response(&state, &token, StatusCode::CREATED)
}

/// Whether a `{"id": ...}` / `{"name": ...}` domain reference names the
/// `Default` domain.
fn names_default_domain(domain: &Value) -> bool {
    match (domain["id"].as_str(), domain["name"].as_str()) {
        (Some(id), _) => id == DEFAULT_DOMAIN_ID,
        (None, Some(name)) => name == DEFAULT_DOMAIN_NAME,
        (None, None) => false,
    }
}

/// 2xx with `X-Subject-Token: token` and the token document.
fn token_response(state: &StandinState, token: &str, status: StatusCode) -> Response {
    let Some(document) = state
        .tokens
        .get(token)
        .and_then(|issued| state.render(issued))
    else {
        return keystone_error(StatusCode::NOT_FOUND, TokenProblem::Unknown.describe());
    };
    let Ok(header) = HeaderValue::from_str(token) else {
        return keystone_error(StatusCode::INTERNAL_SERVER_ERROR, "unprintable token");
    };
    let mut response = (status, axum::Json(document)).into_response();
    response.headers_mut().insert("x-subject-token", header);
    response
}

/// Checks `X-Auth-Token` and `X-Subject-Token` under Keystone's
/// `identity:validate_token` rule: the caller is an admin or service user,
/// or is asking about its own token. Returns the subject token.
fn authorize_subject(state: &StandinState, headers: &HeaderMap) -> Result<String, Refusal> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let Some(caller) = header("x-auth-token") else {
        return Err(Refusal(StatusCode::UNAUTHORIZED, UNAUTHENTICATED));
    };
    let Ok(caller_token) = state.live_token(&caller) else {
        return Err(Refusal(StatusCode::UNAUTHORIZED, UNAUTHENTICATED));
    };
    let Some(subject) = header("x-subject-token") else {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            "Expecting to find X-Subject-Token in request headers.",
        ));
    };
    let privileged = caller_token.scoped
        && state.user_by_id(&caller_token.user_id).is_some_and(|u| {
            u.roles
                .iter()
                .any(|r| r.eq_ignore_ascii_case("admin") || r.eq_ignore_ascii_case("service"))
        });
    if !privileged && subject != caller {
        return Err(Refusal(
            StatusCode::FORBIDDEN,
            "You are not authorized to perform the requested action: identity:validate_token.",
        ));
    }
    if let Err(problem) = state.live_token(&subject) {
        return Err(Refusal(StatusCode::NOT_FOUND, problem.describe()));
    }
    Ok(subject)
}

/// `GET` (and `HEAD`) `/v3/auth/tokens`.
async fn validate_token(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let mut state = shared.lock();
    state.validations += 1;
    match authorize_subject(&state, &headers) {
        Ok(subject) => token_response(&state, &subject, StatusCode::OK),
        Err(refusal) => refusal.into_response(),
    }
}

/// `DELETE /v3/auth/tokens`.
async fn revoke_token(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let mut state = shared.lock();
    match authorize_subject(&state, &headers) {
        Ok(subject) => {
            if let Some(issued) = state.tokens.get_mut(&subject) {
                issued.revoked = true;
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(refusal) => refusal.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password_auth(name: &str, password: &str, scope: Value) -> Value {
        let mut body = json!({
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {"name": name, "domain": {"name": "Default"}, "password": password}
                    }
                }
            }
        });
        if !scope.is_null() {
            body["auth"]["scope"] = scope;
        }
        body
    }

    async fn standin() -> KeystoneStandin {
        let ks = KeystoneStandin::start().await;
        ks.add_user("svc", "svc-pw", "svc-p", "service", &["service"]);
        ks.add_user("alice", "alice-pw", "demo-id", "demo", &["member"]);
        ks
    }

    fn tokens_url(ks: &KeystoneStandin) -> String {
        format!("{}/v3/auth/tokens", ks.url)
    }

    async fn post(ks: &KeystoneStandin, body: &Value) -> reqwest::Response {
        match reqwest::Client::new()
            .post(tokens_url(ks))
            .json(body)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => panic!("POST failed: {e}"),
        }
    }

    async fn get(ks: &KeystoneStandin, auth: &str, subject: Option<&str>) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .get(tokens_url(ks))
            .header("x-auth-token", auth);
        if let Some(subject) = subject {
            request = request.header("x-subject-token", subject);
        }
        match request.send().await {
            Ok(r) => r,
            Err(e) => panic!("GET failed: {e}"),
        }
    }

    async fn json_body(response: reqwest::Response) -> Value {
        match response.json().await {
            Ok(v) => v,
            Err(e) => panic!("not JSON: {e}"),
        }
    }

    #[tokio::test]
    async fn wrong_password_gets_keystones_401() {
        let ks = standin().await;
        let response = post(&ks, &password_auth("alice", "nope", Value::Null)).await;
        assert_eq!(response.status(), 401);
        assert_eq!(
            json_body(response).await,
            json!({"error": {
                "code": 401,
                "title": "Unauthorized",
                "message": "The request you have made requires authentication."
            }})
        );
        assert_eq!(ks.authentication_count(), 1);
    }

    #[tokio::test]
    async fn project_scoped_password_auth_issues_a_token() {
        let ks = standin().await;
        let scope = json!({"project": {"name": "demo", "domain": {"name": "Default"}}});
        let response = post(&ks, &password_auth("alice", "alice-pw", scope)).await;
        assert_eq!(response.status(), 201);
        let token = response
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        assert!(token.is_some_and(|t| !t.is_empty()));
        let body = json_body(response).await;
        assert_eq!(body["token"]["project"]["id"], "demo-id");
        assert_eq!(body["token"]["project"]["domain"]["id"], "default");
        assert_eq!(body["token"]["user"]["name"], "alice");
        assert_eq!(body["token"]["roles"][0]["name"], "member");
        assert_eq!(body["token"]["methods"], json!(["password"]));
        let expires = body["token"]["expires_at"].as_str().unwrap_or_default();
        assert!(expires.ends_with('Z') && expires.len() == 27, "{expires}");
    }

    #[tokio::test]
    async fn scope_by_project_id_and_wrong_project() {
        let ks = standin().await;
        let by_id = json!({"project": {"id": "demo-id"}});
        let response = post(&ks, &password_auth("alice", "alice-pw", by_id)).await;
        assert_eq!(response.status(), 201);
        let other = json!({"project": {"id": "svc-p"}});
        let response = post(&ks, &password_auth("alice", "alice-pw", other)).await;
        assert_eq!(response.status(), 401);
    }

    #[tokio::test]
    async fn unscoped_token_has_no_project_or_roles() {
        let ks = standin().await;
        let response = post(&ks, &password_auth("alice", "alice-pw", Value::Null)).await;
        assert_eq!(response.status(), 201);
        let body = json_body(response).await;
        assert!(body["token"].get("project").is_none());
        assert!(body["token"].get("roles").is_none());
    }

    #[tokio::test]
    async fn validation_requires_a_privileged_caller_or_the_subject_itself() {
        let ks = standin().await;
        let svc = ks.issue_token("svc");
        let alice = ks.issue_token("alice");
        let response = get(&ks, &svc, Some(&alice)).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response
                .headers()
                .get("x-subject-token")
                .and_then(|v| v.to_str().ok()),
            Some(alice.as_str())
        );
        assert_eq!(json_body(response).await["token"]["user"]["name"], "alice");
        assert_eq!(get(&ks, &alice, Some(&svc)).await.status(), 403);
        assert_eq!(get(&ks, &alice, Some(&alice)).await.status(), 200);
        assert_eq!(get(&ks, "bogus", Some(&alice)).await.status(), 401);
        assert_eq!(get(&ks, &svc, None).await.status(), 400);
        assert_eq!(ks.validation_count(), 5);
    }

    #[tokio::test]
    async fn unknown_revoked_and_expired_subjects_are_404() {
        let ks = standin().await;
        let svc = ks.issue_token("svc");
        let revoked = ks.issue_token("alice");
        ks.revoke(&revoked);
        let expired = ks.issue_token_with_expiry("alice", Utc::now() - TimeDelta::seconds(1));
        for subject in ["bogus", revoked.as_str(), expired.as_str()] {
            let response = get(&ks, &svc, Some(subject)).await;
            assert_eq!(response.status(), 404);
            let body = json_body(response).await;
            assert_eq!(body["error"]["code"], 404);
            assert_eq!(body["error"]["title"], "Not Found");
        }
    }

    #[tokio::test]
    async fn delete_revokes() {
        let ks = standin().await;
        let svc = ks.issue_token("svc");
        let alice = ks.issue_token("alice");
        let response = reqwest::Client::new()
            .delete(tokens_url(&ks))
            .header("x-auth-token", &svc)
            .header("x-subject-token", &alice)
            .send()
            .await
            .map(|r| r.status());
        assert_eq!(response.ok(), Some(StatusCode::NO_CONTENT));
        assert_eq!(get(&ks, &svc, Some(&alice)).await.status(), 404);
    }

    #[tokio::test]
    async fn unavailable_answers_503_to_everything() {
        let ks = standin().await;
        let svc = ks.issue_token("svc");
        ks.set_unavailable(true);
        assert_eq!(get(&ks, &svc, Some(&svc)).await.status(), 503);
        let response = post(&ks, &password_auth("alice", "alice-pw", Value::Null)).await;
        assert_eq!(response.status(), 503);
        assert_eq!(ks.validation_count(), 0);
        ks.set_unavailable(false);
        assert_eq!(get(&ks, &svc, Some(&svc)).await.status(), 200);
    }

    #[tokio::test]
    async fn add_user_twice_updates_in_place() {
        let ks = standin().await;
        let first = ks.add_user("bob", "a", "p1", "one", &["member"]);
        let second = ks.add_user("bob", "b", "p2", "two", &["admin"]);
        assert_eq!(first, second);
        let svc = ks.issue_token("svc");
        let bob = ks.issue_token("bob");
        let body = json_body(get(&ks, &svc, Some(&bob)).await).await;
        assert_eq!(body["token"]["project"]["id"], "p2");
        assert_eq!(body["token"]["roles"][0]["name"], "admin");
    }

    #[tokio::test]
    async fn version_document_and_keystone_shaped_404() {
        let ks = standin().await;
        let version = reqwest::get(format!("{}/v3", ks.url)).await;
        let Ok(version) = version else {
            panic!("GET /v3 failed");
        };
        assert_eq!(version.status(), 200);
        assert_eq!(json_body(version).await["version"]["status"], "stable");
        let missing = reqwest::get(format!("{}/v3/users", ks.url)).await;
        let Ok(missing) = missing else {
            panic!("GET /v3/users failed");
        };
        assert_eq!(missing.status(), 404);
        assert_eq!(json_body(missing).await["error"]["code"], 404);
    }
}
