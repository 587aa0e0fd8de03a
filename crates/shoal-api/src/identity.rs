//! The HTTP face of the built-in identity (`auth_strategy = "builtin"`): the part of
//! Keystone's v3 API that keystoneauth and the OpenStack clients use, mounted at
//! `/identity`:
//! * `GET /identity` (300, versions) and `GET /identity/v3` (200, the v3 version document),
//!   which keystoneauth reads to pick its v3 plugin;
//! * `POST /identity/v3/auth/tokens`: the password and token methods, scoped to a project
//!   by id or by name and domain, or unscoped; 201 with `X-Subject-Token` and a body with
//!   roles and the service catalog (`sharev2` and `share`, pointing at this API, plus
//!   `identity`), public, internal and admin interfaces in one region;
//! * `GET`/`HEAD /identity/v3/auth/tokens`: validation of `X-Subject-Token`, allowed to
//!   admins, the `service` role and the token's own user;
//! * `DELETE /identity/v3/auth/tokens`: revocation, under the same rule;
//! * `GET /identity/v3/projects[/{id}]`, `/identity/v3/users[/{id}]` (admins, or a
//!   caller looking at its own project or user) and `/identity/v3/auth/projects`, which
//!   clients use to turn a project name into an id (`openstack share quota show demo`);
//! * the admin calls of `admin`: creating, changing and deleting users and projects, the
//!   Default domain, roles, role grants and `role_assignments`, which `openstack user/project/
//!   role ...` and manila-tempest-plugin's class set-ups use.
//!
//! Errors use Keystone's envelope `{"error": {"code", "title", "message"}}` and its codes:
//! 400 malformed, 401 failed authentication (with `WWW-Authenticate`), 403, 404 for a subject
//! token that does not validate, 429 for an address over its failure limit (shoal's own
//! addition: Keystone has no such limit), 503 when the database is down. The logic is in
//! `shoal-identity`; this module parses and renders.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::routes::Routes;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

mod admin;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use shoal_identity::{
    AuthMethod, AuthRequest, DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME, DomainRef, IdentityError,
    IdentityService, ProjectRef, Scope, UNAUTHORIZED_MESSAGE, UserRef, ValidToken, role_id,
};

/// State of the `/identity` routes.
#[derive(Clone)]
pub struct IdentityApi {
    /// The identity service.
    pub service: Arc<IdentityService>,
    /// Largest request body accepted (the API's `max_request_body_size`); larger is 413.
    pub max_body: usize,
}

/// Header carrying the token being issued, validated or revoked.
const SUBJECT_TOKEN: &str = "x-subject-token";
/// Header carrying the caller's own token.
const AUTH_TOKEN: &str = "x-auth-token";
/// The v3 API's version id and date, as a Keystone of the 2023.2 series reports them.
const V3_ID: &str = "v3.14";
const V3_UPDATED: &str = "2020-04-07T00:00:00Z";

/// The routes under `/identity`, ready to merge into a router of any state. A method a
/// path lacks answers Keystone's 405.
pub fn router<S: Clone + Send + Sync + 'static>(api: IdentityApi) -> Router<S> {
    routes()
        .into_router()
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(api)
}

/// The recorded routes under `/identity` (part of [`crate::route_table`]); a path that is
/// none of them answers Keystone's 404.
pub fn routes() -> Routes<IdentityApi> {
    Routes::new()
        .get("/identity", versions)
        .get("/identity/", versions)
        .get("/identity/v3", version_v3)
        .get("/identity/v3/", version_v3)
        .get("/identity/v3/auth/tokens", validate_token)
        .head("/identity/v3/auth/tokens", validate_token)
        .post("/identity/v3/auth/tokens", issue_token)
        .delete("/identity/v3/auth/tokens", revoke_token)
        .get("/identity/v3/auth/projects", list_auth_projects)
        .get("/identity/v3/projects", list_projects)
        .post("/identity/v3/projects", admin::create_project)
        .get("/identity/v3/projects/{id}", show_project)
        .delete("/identity/v3/projects/{id}", admin::delete_project)
        .get(
            "/identity/v3/projects/{project}/users/{user}/roles",
            admin::list_grants,
        )
        .get(
            "/identity/v3/projects/{project}/users/{user}/roles/{role}",
            admin::check_grant,
        )
        .head(
            "/identity/v3/projects/{project}/users/{user}/roles/{role}",
            admin::check_grant,
        )
        .put(
            "/identity/v3/projects/{project}/users/{user}/roles/{role}",
            admin::grant_role,
        )
        .delete(
            "/identity/v3/projects/{project}/users/{user}/roles/{role}",
            admin::revoke_grant,
        )
        .get("/identity/v3/users", list_users)
        .post("/identity/v3/users", admin::create_user)
        .get("/identity/v3/users/{id}", show_user)
        .patch("/identity/v3/users/{id}", admin::update_user)
        .delete("/identity/v3/users/{id}", admin::delete_user)
        .get("/identity/v3/domains", admin::list_domains)
        .get("/identity/v3/domains/{id}", admin::show_domain)
        .get("/identity/v3/roles", admin::list_roles)
        .get("/identity/v3/roles/{id}", admin::show_role)
        .get(
            "/identity/v3/role_assignments",
            admin::list_role_assignments,
        )
        .catch_all("/identity/{*rest}", not_found)
}

/// The base URL of this API as the client sees it: the configured public endpoint, else
/// the request's `Host`.
pub fn public_base(service: &IdentityService, headers: &HeaderMap) -> String {
    let configured = service.config().public_endpoint.trim_end_matches('/');
    if configured.is_empty() {
        crate::versions::base_url(headers)
    } else {
        configured.to_owned()
    }
}

/// `WWW-Authenticate` of 401 answers: where to get a token.
pub fn www_authenticate(service: &IdentityService, headers: &HeaderMap) -> String {
    format!(
        "Keystone uri=\"{}/identity\"",
        public_base(service, headers)
    )
}

/// Keystone's error envelope.
fn error(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = json!({"error": {"code": status.as_u16(), "title": title, "message": message}});
    (status, Json(body)).into_response()
}

/// Keystone's `ValidationError` text.
fn bad_request(attribute: &str, target: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        &format!(
            "Expecting to find {attribute} in {target}. The server could not comply with the \
             request since it is either malformed or otherwise incorrect. The client is \
             assumed to be in error."
        ),
    )
}

fn unauthorized(api: &IdentityApi, headers: &HeaderMap, message: &str) -> Response {
    let mut response = error(StatusCode::UNAUTHORIZED, message);
    if let Ok(value) = HeaderValue::from_str(&www_authenticate(&api.service, headers)) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// A failure that is not the client's: 503 while the database is unreachable, else 500.
/// Logged here, once.
fn server_failure(err: &IdentityError) -> Response {
    tracing::error!(error = %err, "identity request failed: {err}");
    match err {
        IdentityError::Unavailable(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is temporarily unavailable; try again later.",
        ),
        _ => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An unexpected error prevented the server from fulfilling your request.",
        ),
    }
}

/// Maps a failure of the token being validated or revoked: 404 unless the server failed.
fn subject_failure(err: &IdentityError) -> Response {
    match err {
        IdentityError::Unavailable(_) | IdentityError::Internal(_) => server_failure(err),
        _ => error(StatusCode::NOT_FOUND, "Failed to validate token"),
    }
}

/// Maps a failure of issuing or of the caller's own token.
fn auth_failure(api: &IdentityApi, headers: &HeaderMap, err: IdentityError) -> Response {
    match err {
        IdentityError::Unauthorized(message) => unauthorized(api, headers, &message),
        IdentityError::InvalidToken | IdentityError::NotFound(_) => {
            unauthorized(api, headers, UNAUTHORIZED_MESSAGE)
        }
        IdentityError::TooManyFailures { retry_after } => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed authentications from this address; try again later.",
            );
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            response
        }
        IdentityError::BadRequest(message) => error(StatusCode::BAD_REQUEST, &message),
        IdentityError::Unavailable(_) | IdentityError::Conflict(_) | IdentityError::Internal(_) => {
            server_failure(&err)
        }
    }
}

fn version_entry(base: &str) -> Value {
    json!({
        "id": V3_ID,
        "status": "stable",
        "updated": V3_UPDATED,
        "links": [{"rel": "self", "href": format!("{base}/identity/v3/")}],
        "media-types": [{"base": "application/json",
                         "type": "application/vnd.openstack.identity-v3+json"}]
    })
}

/// `GET /identity`: 300 with the one version.
async fn versions(State(api): State<IdentityApi>, headers: HeaderMap) -> Response {
    let base = public_base(&api.service, &headers);
    let body = json!({"versions": {"values": [version_entry(&base)]}});
    (StatusCode::MULTIPLE_CHOICES, Json(body)).into_response()
}

/// `GET /identity/v3`: the version document.
async fn version_v3(State(api): State<IdentityApi>, headers: HeaderMap) -> Response {
    let base = public_base(&api.service, &headers);
    Json(json!({"version": version_entry(&base)})).into_response()
}

/// Keystone's 405, for a method a route lacks (`PUT /v3/users`, say).
async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "The method you requested is not allowed for the requested URL.",
    )
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "The resource could not be found.")
}

/// Keystone's timestamps: microseconds and `Z`.
fn keystone_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn domain() -> Value {
    json!({"id": DEFAULT_DOMAIN_ID, "name": DEFAULT_DOMAIN_NAME})
}

/// The service catalog of a project-scoped token: Manila's two service types at this
/// API's project URL, and the identity service itself.
fn catalog(base: &str, region: &str, project_id: &str) -> Value {
    let share_url = format!("{base}/v2/{project_id}");
    let identity_url = format!("{base}/identity");
    let entry = |service_type: &str, name: &str, url: &str| {
        let endpoints: Vec<Value> = ["public", "internal", "admin"]
            .iter()
            .map(|interface| {
                json!({
                    "id": role_id(&format!("endpoint:{service_type}:{interface}")),
                    "interface": interface,
                    "region": region,
                    "region_id": region,
                    "url": url,
                })
            })
            .collect();
        json!({
            "endpoints": endpoints,
            "id": role_id(&format!("service:{service_type}")),
            "type": service_type,
            "name": name,
        })
    };
    json!([
        entry("sharev2", "manilav2", &share_url),
        entry("share", "manila", &share_url),
        entry("identity", "keystone", &identity_url),
    ])
}

/// The `token` body of issue and validation answers.
fn token_body(valid: &ValidToken, base: &str, region: &str, with_catalog: bool) -> Value {
    let mut token = json!({
        "methods": valid.payload.methods,
        "user": {
            "domain": domain(),
            "id": valid.user.id,
            "name": valid.user.name,
            "password_expires_at": null,
        },
        "audit_ids": valid.payload.audit_ids,
        "expires_at": keystone_time(valid.payload.expires_at),
        "issued_at": keystone_time(valid.payload.issued_at),
    });
    if let Some(project) = &valid.project {
        token["project"] = json!({"domain": domain(), "id": project.id, "name": project.name});
        token["is_domain"] = json!(false);
        token["roles"] = valid
            .roles
            .iter()
            .map(|name| json!({"id": role_id(name), "name": name}))
            .collect();
        if with_catalog {
            token["catalog"] = catalog(base, region, &project.id);
        }
    }
    json!({ "token": token })
}

/// `?nocatalog` leaves the catalog out, as in Keystone.
#[derive(Debug, Default, serde::Deserialize)]
struct TokenQuery {
    nocatalog: Option<String>,
}

fn with_catalog(query: &TokenQuery) -> bool {
    query.nocatalog.is_none()
}

/// `POST /identity/v3/auth/tokens`.
async fn issue_token(
    State(api): State<IdentityApi>,
    Query(query): Query<TokenQuery>,
    request: Request,
) -> Response {
    let source = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let headers = request.headers().clone();
    let body = match axum::body::to_bytes(request.into_body(), api.max_body).await {
        Ok(body) => body,
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "Request is too large."),
    };
    let auth = match parse_auth_request(&body) {
        Ok(auth) => auth,
        Err(response) => return *response,
    };
    match api.service.authenticate(auth, source, Utc::now()).await {
        Ok(issued) => {
            let base = public_base(&api.service, &headers);
            let region = &api.service.config().region;
            let body = token_body(&issued.valid, &base, region, with_catalog(&query));
            let mut response = (StatusCode::CREATED, Json(body)).into_response();
            if let Ok(value) = HeaderValue::from_str(&issued.token) {
                response.headers_mut().insert(SUBJECT_TOKEN, value);
            }
            response
                .headers_mut()
                .insert(header::VARY, HeaderValue::from_static("X-Auth-Token"));
            response
        }
        Err(err) => auth_failure(&api, &headers, err),
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The caller's own token, validated; 401 otherwise.
async fn caller(api: &IdentityApi, headers: &HeaderMap) -> Result<ValidToken, Response> {
    let Some(token) = header_text(headers, AUTH_TOKEN) else {
        return Err(unauthorized(api, headers, UNAUTHORIZED_MESSAGE));
    };
    api.service
        .validate(&token, Utc::now())
        .await
        .map_err(|err| auth_failure(api, headers, err))
}

fn is_admin(token: &ValidToken) -> bool {
    token.roles.iter().any(|role| role == "admin")
}

fn forbidden(action: &str) -> Response {
    error(
        StatusCode::FORBIDDEN,
        &format!("You are not authorized to perform the requested action: identity:{action}."),
    )
}

/// Checks the caller's token and that it may look at (or revoke) the subject token.
async fn authorize_subject(
    api: &IdentityApi,
    headers: &HeaderMap,
    action: &str,
) -> Result<ValidToken, Response> {
    let caller = caller(api, headers).await?;
    let Some(subject_token) = header_text(headers, SUBJECT_TOKEN) else {
        return Err(bad_request("X-Subject-Token", "header"));
    };
    let subject = api
        .service
        .validate(&subject_token, Utc::now())
        .await
        .map_err(|err| subject_failure(&err))?;
    let privileged = is_admin(&caller) || caller.roles.iter().any(|role| role == "service");
    if !privileged && caller.user.id != subject.user.id {
        return Err(forbidden(action));
    }
    Ok(subject)
}

fn project_view(base: &str, project: &shoal_store::IdentityProjectRow) -> Value {
    json!({
        "id": project.id,
        "name": project.name,
        "domain_id": project.domain_id,
        "description": project.description,
        "enabled": project.enabled,
        "is_domain": false,
        "parent_id": project.domain_id,
        "tags": [],
        "options": {},
        "links": {"self": format!("{base}/identity/v3/projects/{}", project.id)},
    })
}

fn user_view(base: &str, user: &shoal_store::IdentityUserRow) -> Value {
    let mut view = json!({
        "id": user.id,
        "name": user.name,
        "domain_id": user.domain_id,
        "enabled": user.enabled,
        "password_expires_at": null,
        "options": {},
        "links": {"self": format!("{base}/identity/v3/users/{}", user.id)},
    });
    if let Some(project) = &user.default_project_id {
        view["default_project_id"] = json!(project);
    }
    view
}

fn collection(base: &str, key: &str, items: Vec<Value>) -> Response {
    Json(json!({
        key: items,
        "links": {"self": format!("{base}/identity/v3/{key}"), "previous": null, "next": null},
    }))
    .into_response()
}

fn lookup_failure(err: IdentityError, what: &str, id: &str) -> Response {
    match err {
        IdentityError::NotFound(_) => error(
            StatusCode::NOT_FOUND,
            &format!("Could not find {what}: {id}."),
        ),
        other => server_failure(&other),
    }
}

/// Filters of the project and user lists that clients send.
#[derive(Debug, Default, serde::Deserialize)]
struct ListQuery {
    name: Option<String>,
    domain_id: Option<String>,
}

impl ListQuery {
    fn admits(&self, name: &str, domain_id: &str) -> bool {
        self.name.as_deref().is_none_or(|n| n == name)
            && self.domain_id.as_deref().is_none_or(|d| d == domain_id)
    }
}

/// `GET /identity/v3/projects/{id}`: admins, or members of that project.
async fn show_project(
    State(api): State<IdentityApi>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let caller = match caller(&api, &headers).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let own = caller.project.as_ref().is_some_and(|p| p.id == id);
    if !is_admin(&caller) && !own {
        return forbidden("get_project");
    }
    match api.service.get_project(&id).await {
        Ok(project) => {
            let base = public_base(&api.service, &headers);
            Json(json!({"project": project_view(&base, &project)})).into_response()
        }
        Err(err) => lookup_failure(err, "project", &id),
    }
}

/// Authorizes an admin-only listing (Keystone's `identity:list_*`); the base URL on success.
async fn authorize_listing(
    api: &IdentityApi,
    headers: &HeaderMap,
    action: &str,
) -> Result<String, Response> {
    match caller(api, headers).await {
        Ok(caller) if is_admin(&caller) => Ok(public_base(&api.service, headers)),
        Ok(_) => Err(forbidden(action)),
        Err(response) => Err(response),
    }
}

/// `GET /identity/v3/projects`: admins only.
async fn list_projects(
    State(api): State<IdentityApi>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    let base = match authorize_listing(&api, &headers, "list_projects").await {
        Ok(base) => base,
        Err(response) => return response,
    };
    match api.service.list_projects().await {
        Ok(projects) => collection(
            &base,
            "projects",
            projects
                .iter()
                .filter(|p| query.admits(&p.name, &p.domain_id))
                .map(|p| project_view(&base, p))
                .collect(),
        ),
        Err(err) => server_failure(&err),
    }
}

/// `GET /identity/v3/auth/projects`: the projects the caller's user has a role on.
async fn list_auth_projects(State(api): State<IdentityApi>, headers: HeaderMap) -> Response {
    let caller = match caller(&api, &headers).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let base = public_base(&api.service, &headers);
    match api.service.projects_of_user(&caller.user.id).await {
        Ok(projects) => collection(
            &base,
            "projects",
            projects.iter().map(|p| project_view(&base, p)).collect(),
        ),
        Err(err) => server_failure(&err),
    }
}

/// `GET /identity/v3/users/{id}`: admins, or the user itself.
async fn show_user(
    State(api): State<IdentityApi>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let caller = match caller(&api, &headers).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    if !is_admin(&caller) && caller.user.id != id {
        return forbidden("get_user");
    }
    match api.service.get_user(&id).await {
        Ok(user) => {
            let base = public_base(&api.service, &headers);
            Json(json!({"user": user_view(&base, &user)})).into_response()
        }
        Err(err) => lookup_failure(err, "user", &id),
    }
}

/// `GET /identity/v3/users`: admins only.
async fn list_users(
    State(api): State<IdentityApi>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    let base = match authorize_listing(&api, &headers, "list_users").await {
        Ok(base) => base,
        Err(response) => return response,
    };
    match api.service.list_users().await {
        Ok(users) => collection(
            &base,
            "users",
            users
                .iter()
                .filter(|u| query.admits(&u.name, &u.domain_id))
                .map(|u| user_view(&base, u))
                .collect(),
        ),
        Err(err) => server_failure(&err),
    }
}

/// `GET`/`HEAD /identity/v3/auth/tokens`.
async fn validate_token(
    State(api): State<IdentityApi>,
    Query(query): Query<TokenQuery>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let subject = match authorize_subject(&api, &headers, "validate_token").await {
        Ok(subject) => subject,
        Err(response) => return response,
    };
    let subject_token = headers
        .get(SUBJECT_TOKEN)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static(""));
    let mut response = if method == Method::HEAD {
        StatusCode::OK.into_response()
    } else {
        let base = public_base(&api.service, &headers);
        let region = &api.service.config().region;
        Json(token_body(&subject, &base, region, with_catalog(&query))).into_response()
    };
    response.headers_mut().insert(SUBJECT_TOKEN, subject_token);
    response
}

/// `DELETE /identity/v3/auth/tokens`.
async fn revoke_token(State(api): State<IdentityApi>, headers: HeaderMap) -> Response {
    if let Err(response) = authorize_subject(&api, &headers, "revoke_token").await {
        return response;
    }
    let subject_token = headers
        .get(SUBJECT_TOKEN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match api.service.revoke(subject_token, Utc::now()).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => subject_failure(&err),
    }
}

type ParseResult<T> = Result<T, Box<Response>>;

fn missing(attribute: &str, target: &str) -> Box<Response> {
    Box::new(bad_request(attribute, target))
}

fn string_field(object: &Value, key: &str, target: &str) -> ParseResult<String> {
    object
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| missing(key, target))
}

fn parse_domain(value: Option<&Value>, target: &str) -> ParseResult<DomainRef> {
    let domain = value
        .filter(|v| v.is_object())
        .ok_or_else(|| missing("domain", target))?;
    if let Some(id) = domain.get("id").and_then(Value::as_str) {
        return Ok(DomainRef::Id(id.to_owned()));
    }
    string_field(domain, "name", "domain").map(DomainRef::Name)
}

/// Parses Keystone's authentication body into the service's terms.
fn parse_auth_request(body: &Bytes) -> ParseResult<AuthRequest> {
    let value: Value = serde_json::from_slice(body).map_err(|_| missing("auth", "request body"))?;
    let auth = value
        .get("auth")
        .filter(|v| v.is_object())
        .ok_or_else(|| missing("auth", "request body"))?;
    let identity = auth
        .get("identity")
        .filter(|v| v.is_object())
        .ok_or_else(|| missing("identity", "auth"))?;
    let methods: Vec<&str> = identity
        .get("methods")
        .and_then(Value::as_array)
        .ok_or_else(|| missing("methods", "identity"))?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let method = match methods.as_slice() {
        ["password"] => {
            let user = identity
                .get("password")
                .and_then(|p| p.get("user"))
                .filter(|u| u.is_object())
                .ok_or_else(|| missing("user", "password"))?;
            let password = string_field(user, "password", "user")?;
            let user = if let Some(id) = user.get("id").and_then(Value::as_str) {
                UserRef::Id(id.to_owned())
            } else {
                UserRef::Name {
                    name: string_field(user, "name", "user")?,
                    domain: parse_domain(user.get("domain"), "user")?,
                }
            };
            AuthMethod::Password { user, password }
        }
        ["token"] => {
            let token = identity
                .get("token")
                .filter(|t| t.is_object())
                .ok_or_else(|| missing("token", "identity"))?;
            AuthMethod::Token {
                token: string_field(token, "id", "token")?,
            }
        }
        _ => {
            return Err(Box::new(error(
                StatusCode::UNAUTHORIZED,
                "Attempted to authenticate with an unsupported method.",
            )));
        }
    };
    let scope = match auth.get("scope") {
        None | Some(Value::Null) => Scope::Default,
        Some(Value::String(s)) if s == "unscoped" => Scope::Unscoped,
        Some(scope) => {
            if let Some(project) = scope.get("project").filter(|p| p.is_object()) {
                if let Some(id) = project.get("id").and_then(Value::as_str) {
                    Scope::Project(ProjectRef::Id(id.to_owned()))
                } else {
                    Scope::Project(ProjectRef::Name {
                        name: string_field(project, "name", "project")?,
                        domain: parse_domain(project.get("domain"), "project")?,
                    })
                }
            } else if scope.get("domain").is_some() {
                Scope::Unsupported("domain scope".to_owned())
            } else if scope.get("system").is_some() {
                Scope::Unsupported("system scope".to_owned())
            } else {
                return Err(missing("project", "scope"));
            }
        }
    };
    Ok(AuthRequest { method, scope })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: Value) -> ParseResult<AuthRequest> {
        parse_auth_request(&Bytes::from(body.to_string()))
    }

    #[test]
    fn parses_keystoneauth_password_body() {
        let request = parse(json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"name": "Default"}, "password": "pw"}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}
        }}))
        .expect("parses");
        assert_eq!(
            request.method,
            AuthMethod::Password {
                user: UserRef::Name {
                    name: "admin".to_owned(),
                    domain: DomainRef::Name("Default".to_owned())
                },
                password: "pw".to_owned()
            }
        );
        assert_eq!(
            request.scope,
            Scope::Project(ProjectRef::Name {
                name: "admin".to_owned(),
                domain: DomainRef::Name("Default".to_owned())
            })
        );
    }

    #[test]
    fn parses_token_method_and_scopes() {
        let request = parse(json!({"auth": {
            "identity": {"methods": ["token"], "token": {"id": "abc"}},
            "scope": "unscoped"}}))
        .expect("parses");
        assert_eq!(
            request.method,
            AuthMethod::Token {
                token: "abc".to_owned()
            }
        );
        assert_eq!(request.scope, Scope::Unscoped);
        let request = parse(json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {"id": "u", "password": "p"}}},
            "scope": {"domain": {"id": "default"}}}}))
        .expect("parses");
        assert!(matches!(request.scope, Scope::Unsupported(_)));
    }

    #[test]
    fn malformed_bodies_are_400_and_unknown_methods_401() {
        for body in [
            json!({}),
            json!({"auth": {}}),
            json!({"auth": {"identity": {}}}),
            json!({"auth": {"identity": {"methods": ["password"]}}}),
            json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "a", "password": "p"}}}}}),
            json!({"auth": {"identity": {"methods": ["token"], "token": {}}}}),
            json!({"auth": {"identity": {"methods": ["token"], "token": {"id": "x"}}, "scope": {"project": {"name": "p"}}}}),
        ] {
            let response = parse(body.clone()).expect_err("malformed");
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        }
        let response = parse(json!({"auth": {"identity": {"methods": ["totp"]}}})).expect_err("x");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let response = parse_auth_request(&Bytes::from_static(b"{not json")).expect_err("x");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
}
