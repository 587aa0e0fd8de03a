//! Keystone's v3 admin calls on the built-in identity, admin-only as Keystone's default
//! policies (`identity:create_user` and the rest: `role:admin`) have them:
//! * `POST /v3/users` (201), `PATCH /v3/users/{id}` (200: name, password, enabled,
//!   default project), `DELETE /v3/users/{id}` (204);
//! * `POST /v3/projects` (201), `DELETE /v3/projects/{id}` (204);
//! * `GET /v3/domains[/{id}]`: the `Default` domain, the only one (a project-scoped caller
//!   may show it, as Keystone lets a token see its own project's domain);
//! * `GET /v3/roles[?name=]`, `GET /v3/roles/{id}`: the built-in roles and any other that is
//!   assigned; ids are hashes of names (see `shoal_identity::role_id`);
//! * `PUT`/`GET`/`HEAD`/`DELETE /v3/projects/{p}/users/{u}/roles/{r}` (204) and
//!   `GET /v3/projects/{p}/users/{u}/roles`;
//! * `GET /v3/role_assignments` with Keystone's `user.id`, `scope.project.id`, `role.id`,
//!   `effective` and `include_names` filters.
//!
//! Errors as Keystone: 401 without a valid token, 403 for non-admins, 400 malformed bodies,
//! 404 `Could not find <kind>: <id>.`, 409 for a taken name. Attributes Keystone keeps as
//! free-form extras (`email`, `description` of a user, project `tags`) are accepted and not
//! stored. The logic is in `shoal_identity::admin`; this module parses and renders.

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Map, Value, json};
use shoal_identity::{
    DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME, IdentityError, NewUser, UserChanges, effective_roles,
    role_id,
};

use super::{
    IdentityApi, ParseResult, caller, collection, error, forbidden, is_admin, lookup_failure,
    project_view, public_base, server_failure, user_view,
};

/// The caller's token must hold `admin`; the base URL on success.
async fn admin_only(
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

/// Keystone's schema-validation 400.
fn invalid(field: &str, why: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        &format!("Invalid input for field '{field}': {why}"),
    )
}

fn conflict(kind: &str, name: &str) -> Response {
    error(
        StatusCode::CONFLICT,
        &format!(
            "Conflict occurred attempting to store {kind} - Duplicate entry found with name \
             {name} at domain ID {DEFAULT_DOMAIN_ID}."
        ),
    )
}

fn not_found(kind: &str, id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        &format!("Could not find {kind}: {id}."),
    )
}

/// Reads the body and returns its `key` object (`{"user": {...}}`).
async fn body_object(
    api: &IdentityApi,
    request: Request,
    key: &str,
) -> Result<Map<String, Value>, Response> {
    let body = axum::body::to_bytes(request.into_body(), api.max_body)
        .await
        .map_err(|_| error(StatusCode::PAYLOAD_TOO_LARGE, "Request is too large."))?;
    let value: Value =
        serde_json::from_slice(&body).map_err(|_| super::bad_request(key, "request body"))?;
    match value.get(key) {
        Some(Value::Object(object)) => Ok(object.clone()),
        Some(_) => Err(invalid(key, &format!("'{key}' is not of type 'object'"))),
        None => Err(super::bad_request(key, "request body")),
    }
}

/// An optional string attribute; `null` counts as absent.
fn opt_string(object: &Map<String, Value>, key: &str) -> ParseResult<Option<String>> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(Box::new(invalid(
            key,
            &format!("{other} is not of type 'string'"),
        ))),
    }
}

fn opt_bool(object: &Map<String, Value>, key: &str) -> ParseResult<Option<bool>> {
    match object.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(Box::new(invalid(
            key,
            &format!("{other} is not of type 'boolean'"),
        ))),
    }
}

/// A name: present, a string of 1 to 255 characters, not only blanks.
fn name_field(object: &Map<String, Value>) -> ParseResult<String> {
    match opt_string(object, "name")? {
        None => Err(Box::new(invalid("name", "'name' is a required property"))),
        Some(name) if name.trim().is_empty() || name.chars().count() > 255 => {
            Err(Box::new(invalid(
                "name",
                "the name must have 1 to 255 characters, not only blanks",
            )))
        }
        Some(name) => Ok(name),
    }
}

/// The domain named by `domain_id`, which must be the default one (404 otherwise).
fn check_domain(object: &Map<String, Value>) -> ParseResult<()> {
    match opt_string(object, "domain_id")? {
        Some(domain) if domain != DEFAULT_DOMAIN_ID => Err(Box::new(not_found("domain", &domain))),
        _ => Ok(()),
    }
}

/// Maps a failure of a change to `kind` `id` named `name`.
fn change_failure(err: IdentityError, kind: &str, id: &str, name: &str) -> Response {
    match err {
        IdentityError::Conflict(_) => conflict(kind, name),
        IdentityError::NotFound(_) => not_found(kind, id),
        IdentityError::BadRequest(message) => error(StatusCode::BAD_REQUEST, &message),
        other => server_failure(&other),
    }
}

// ---- users ----

/// `POST /identity/v3/users`.
pub(super) async fn create_user(
    State(api): State<super::IdentityApi>,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    let base = match admin_only(&api, &headers, "create_user").await {
        Ok(base) => base,
        Err(response) => return response,
    };
    let user = match body_object(&api, request, "user").await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let parsed = (|| {
        let name = name_field(&user)?;
        check_domain(&user)?;
        Ok::<_, Box<Response>>(NewUser {
            name,
            password: opt_string(&user, "password")?,
            default_project_id: opt_string(&user, "default_project_id")?,
            enabled: opt_bool(&user, "enabled")?.unwrap_or(true),
        })
    })();
    let new = match parsed {
        Ok(new) => new,
        Err(response) => return *response,
    };
    let name = new.name.clone();
    let project = new.default_project_id.clone().unwrap_or_default();
    match api.service.create_user(new, Utc::now()).await {
        Ok(row) => {
            tracing::info!(user.id = %row.id, "created user {} ({})", row.name, row.id);
            (
                StatusCode::CREATED,
                Json(json!({"user": user_view(&base, &row)})),
            )
                .into_response()
        }
        // The only thing a new user refers to is its default project.
        Err(IdentityError::NotFound(_)) => not_found("project", &project),
        Err(err) => change_failure(err, "user", "", &name),
    }
}

/// `PATCH /identity/v3/users/{id}`.
pub(super) async fn update_user(
    State(api): State<super::IdentityApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    let base = match admin_only(&api, &headers, "update_user").await {
        Ok(base) => base,
        Err(response) => return response,
    };
    let user = match body_object(&api, request, "user").await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let parsed = (|| {
        if opt_string(&user, "id")?.is_some_and(|given| given != id) {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "Cannot change user ID",
            )));
        }
        if opt_string(&user, "domain_id")?.is_some_and(|d| d != DEFAULT_DOMAIN_ID) {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "Cannot change Domain ID",
            )));
        }
        let name = if user.contains_key("name") {
            Some(name_field(&user)?)
        } else {
            None
        };
        let password = opt_string(&user, "password")?;
        if password.as_deref() == Some("") {
            return Err(Box::new(invalid("password", "the password is empty")));
        }
        let default_project_id = if user.contains_key("default_project_id") {
            Some(opt_string(&user, "default_project_id")?)
        } else {
            None
        };
        Ok(UserChanges {
            name,
            password,
            enabled: opt_bool(&user, "enabled")?,
            default_project_id,
        })
    })();
    let changes = match parsed {
        Ok(changes) => changes,
        Err(response) => return *response,
    };
    // A missing user and a missing new default project are both NotFound in the store;
    // tell them apart as Keystone would, user first.
    if let Err(err) = api.service.get_user(&id).await {
        return lookup_failure(err, "user", &id);
    }
    let name = changes.name.clone().unwrap_or_default();
    let project = changes
        .default_project_id
        .clone()
        .flatten()
        .unwrap_or_default();
    match api.service.change_user(&id, changes, Utc::now()).await {
        Ok(row) => {
            tracing::info!(user.id = %row.id, "updated user {} ({})", row.name, row.id);
            Json(json!({"user": user_view(&base, &row)})).into_response()
        }
        Err(IdentityError::NotFound(_)) => match api.service.get_user(&id).await {
            Ok(_) => not_found("project", &project),
            Err(err) => lookup_failure(err, "user", &id),
        },
        Err(err) => change_failure(err, "user", &id, &name),
    }
}

/// `DELETE /identity/v3/users/{id}`.
pub(super) async fn delete_user(
    State(api): State<super::IdentityApi>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = admin_only(&api, &headers, "delete_user").await {
        return response;
    }
    match api.service.delete_user_by_id(&id).await {
        Ok(()) => {
            tracing::info!(user.id = %id, "deleted user {id}");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => lookup_failure(err, "user", &id),
    }
}

// ---- projects ----

/// `POST /identity/v3/projects`.
pub(super) async fn create_project(
    State(api): State<super::IdentityApi>,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    let base = match admin_only(&api, &headers, "create_project").await {
        Ok(base) => base,
        Err(response) => return response,
    };
    let project = match body_object(&api, request, "project").await {
        Ok(project) => project,
        Err(response) => return response,
    };
    let parsed = (|| {
        let name = name_field(&project)?;
        check_domain(&project)?;
        if opt_bool(&project, "is_domain")? == Some(true) {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "The built-in identity has only the Default domain; it creates no domains.",
            )));
        }
        // Projects sit directly under the domain: Keystone names the domain as parent.
        if let Some(parent) = opt_string(&project, "parent_id")?
            && parent != DEFAULT_DOMAIN_ID
        {
            return Err(Box::new(not_found("project", &parent)));
        }
        let description = opt_string(&project, "description")?.unwrap_or_default();
        let enabled = opt_bool(&project, "enabled")?.unwrap_or(true);
        Ok((name, description, enabled))
    })();
    let (name, description, enabled) = match parsed {
        Ok(parsed) => parsed,
        Err(response) => return *response,
    };
    match api
        .service
        .create_project(&name, &description, enabled, Utc::now())
        .await
    {
        Ok(row) => {
            tracing::info!(project.id = %row.id, "created project {} ({})", row.name, row.id);
            (
                StatusCode::CREATED,
                Json(json!({"project": project_view(&base, &row)})),
            )
                .into_response()
        }
        Err(err) => change_failure(err, "project", "", &name),
    }
}

/// `DELETE /identity/v3/projects/{id}`.
pub(super) async fn delete_project(
    State(api): State<super::IdentityApi>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = admin_only(&api, &headers, "delete_project").await {
        return response;
    }
    match api.service.delete_project(&id).await {
        Ok(()) => {
            tracing::info!(project.id = %id, "deleted project {id}");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => lookup_failure(err, "project", &id),
    }
}

// ---- domains ----

fn domain_view(base: &str) -> Value {
    json!({
        "id": DEFAULT_DOMAIN_ID,
        "name": DEFAULT_DOMAIN_NAME,
        "description": "The default domain",
        "enabled": true,
        "tags": [],
        "options": {},
        "links": {"self": format!("{base}/identity/v3/domains/{DEFAULT_DOMAIN_ID}")},
    })
}

/// Filters of the domain and role lists.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct NameQuery {
    name: Option<String>,
    enabled: Option<String>,
}

/// `GET /identity/v3/domains`.
pub(super) async fn list_domains(
    State(api): State<super::IdentityApi>,
    Query(query): Query<NameQuery>,
    headers: HeaderMap,
) -> Response {
    let base = match admin_only(&api, &headers, "list_domains").await {
        Ok(base) => base,
        Err(response) => return response,
    };
    // Keystone reads `enabled=0`/`false` (any case) as false, anything else as true.
    let enabled_wanted = query
        .enabled
        .as_deref()
        .is_none_or(|e| !matches!(e.to_ascii_lowercase().as_str(), "0" | "false"));
    let matches = query
        .name
        .as_deref()
        .is_none_or(|n| n == DEFAULT_DOMAIN_NAME)
        && enabled_wanted;
    let domains = if matches {
        vec![domain_view(&base)]
    } else {
        Vec::new()
    };
    collection(&base, "domains", domains)
}

/// `GET /identity/v3/domains/{id}`: admins, and any caller scoped to a project of it.
pub(super) async fn show_domain(
    State(api): State<super::IdentityApi>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let caller = match caller(&api, &headers).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let own = caller.project.as_ref().is_some_and(|p| p.domain_id == id);
    if !is_admin(&caller) && !own {
        return forbidden("get_domain");
    }
    if id != DEFAULT_DOMAIN_ID {
        return not_found("domain", &id);
    }
    let base = public_base(&api.service, &headers);
    Json(json!({"domain": domain_view(&base)})).into_response()
}

// ---- roles ----

fn role_view(base: &str, name: &str) -> Value {
    let id = role_id(name);
    json!({
        "id": id,
        "name": name,
        "domain_id": null,
        "description": null,
        "options": {},
        "links": {"self": format!("{base}/identity/v3/roles/{id}")},
    })
}

/// `GET /identity/v3/roles`.
pub(super) async fn list_roles(
    State(api): State<super::IdentityApi>,
    Query(query): Query<NameQuery>,
    headers: HeaderMap,
) -> Response {
    let base = match admin_only(&api, &headers, "list_roles").await {
        Ok(base) => base,
        Err(response) => return response,
    };
    match api.service.role_names().await {
        Ok(names) => collection(
            &base,
            "roles",
            names
                .iter()
                .filter(|n| {
                    query
                        .name
                        .as_deref()
                        .is_none_or(|wanted| wanted == n.as_str())
                })
                .map(|n| role_view(&base, n))
                .collect(),
        ),
        Err(err) => server_failure(&err),
    }
}

/// `GET /identity/v3/roles/{id}`.
pub(super) async fn show_role(
    State(api): State<super::IdentityApi>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let base = match admin_only(&api, &headers, "get_role").await {
        Ok(base) => base,
        Err(response) => return response,
    };
    match api.service.role_by_id(&id).await {
        Ok(name) => Json(json!({"role": role_view(&base, &name)})).into_response(),
        Err(err) => lookup_failure(err, "role", &id),
    }
}

// ---- grants ----

/// Resolves a grant's role, project and user, in Keystone's order; the role name.
async fn resolve_grant(
    api: &IdentityApi,
    project_id: &str,
    user_id: &str,
    role: &str,
) -> Result<String, Response> {
    let name = api
        .service
        .role_by_id(role)
        .await
        .map_err(|err| lookup_failure(err, "role", role))?;
    api.service
        .get_project(project_id)
        .await
        .map_err(|err| lookup_failure(err, "project", project_id))?;
    api.service
        .get_user(user_id)
        .await
        .map_err(|err| lookup_failure(err, "user", user_id))?;
    Ok(name)
}

fn assignment_not_found(role: &str, user: &str, project: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        &format!(
            "Could not find role assignment with role: {role}, user or group: {user}, project, \
             domain, or system: {project}."
        ),
    )
}

/// `PUT /identity/v3/projects/{p}/users/{u}/roles/{r}`.
pub(super) async fn grant_role(
    State(api): State<super::IdentityApi>,
    Path((project, user, role)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = admin_only(&api, &headers, "create_grant").await {
        return response;
    }
    let name = match resolve_grant(&api, &project, &user, &role).await {
        Ok(name) => name,
        Err(response) => return response,
    };
    match api.service.grant_role_by_id(&user, &project, &name).await {
        Ok(()) => {
            tracing::info!(user.id = %user, project.id = %project, "granted role {name} to user {user} on project {project}");
            StatusCode::NO_CONTENT.into_response()
        }
        // Deleted between the lookup and the grant.
        Err(IdentityError::NotFound(_)) => assignment_not_found(&role, &user, &project),
        Err(err) => server_failure(&err),
    }
}

/// `GET`/`HEAD /identity/v3/projects/{p}/users/{u}/roles/{r}`: 204 when held, else 404.
pub(super) async fn check_grant(
    State(api): State<super::IdentityApi>,
    Path((project, user, role)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = admin_only(&api, &headers, "check_grant").await {
        return response;
    }
    let name = match resolve_grant(&api, &project, &user, &role).await {
        Ok(name) => name,
        Err(response) => return response,
    };
    match api.service.holds_role(&user, &project, &name).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => assignment_not_found(&role, &user, &project),
        Err(err) => server_failure(&err),
    }
}

/// `DELETE /identity/v3/projects/{p}/users/{u}/roles/{r}`.
pub(super) async fn revoke_grant(
    State(api): State<super::IdentityApi>,
    Path((project, user, role)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = admin_only(&api, &headers, "revoke_grant").await {
        return response;
    }
    let name = match resolve_grant(&api, &project, &user, &role).await {
        Ok(name) => name,
        Err(response) => return response,
    };
    match api.service.revoke_role_by_id(&user, &project, &name).await {
        Ok(()) => {
            tracing::info!(user.id = %user, project.id = %project, "revoked role {name} from user {user} on project {project}");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(IdentityError::NotFound(_)) => assignment_not_found(&role, &user, &project),
        Err(err) => server_failure(&err),
    }
}

/// `GET /identity/v3/projects/{p}/users/{u}/roles`: the roles assigned there.
pub(super) async fn list_grants(
    State(api): State<super::IdentityApi>,
    Path((project, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let base = match admin_only(&api, &headers, "list_grants").await {
        Ok(base) => base,
        Err(response) => return response,
    };
    if let Err(err) = api.service.get_project(&project).await {
        return lookup_failure(err, "project", &project);
    }
    if let Err(err) = api.service.get_user(&user).await {
        return lookup_failure(err, "user", &user);
    }
    match api.service.list_role_assignments().await {
        Ok(assignments) => {
            let roles: Vec<Value> = assignments
                .iter()
                .filter(|a| a.user_id == user && a.project_id == project)
                .map(|a| role_view(&base, &a.role))
                .collect();
            Json(json!({
                "roles": roles,
                "links": {
                    "self": format!("{base}/identity/v3/projects/{project}/users/{user}/roles"),
                    "previous": null,
                    "next": null,
                },
            }))
            .into_response()
        }
        Err(err) => server_failure(&err),
    }
}

// ---- role assignments ----

/// Keystone's filters of `GET /v3/role_assignments`.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct AssignmentQuery {
    #[serde(rename = "user.id")]
    user_id: Option<String>,
    #[serde(rename = "scope.project.id")]
    project_id: Option<String>,
    #[serde(rename = "role.id")]
    role_id: Option<String>,
    #[serde(rename = "group.id")]
    group_id: Option<String>,
    #[serde(rename = "scope.domain.id")]
    domain_id: Option<String>,
    #[serde(rename = "scope.system")]
    system: Option<String>,
    effective: Option<String>,
    include_names: Option<String>,
}

/// A query flag: present and not `0`/`false`.
fn flag(value: Option<&str>) -> bool {
    value.is_some_and(|v| !matches!(v.to_ascii_lowercase().as_str(), "0" | "false"))
}

/// `GET /identity/v3/role_assignments`: admins only. There are no groups and no domain or
/// system assignments, so filtering on those finds nothing. `effective` adds the implied
/// roles (admin ⊃ member ⊃ reader), as Keystone expands role implications there.
pub(super) async fn list_role_assignments(
    State(api): State<super::IdentityApi>,
    Query(query): Query<AssignmentQuery>,
    headers: HeaderMap,
) -> Response {
    let base = match admin_only(&api, &headers, "list_role_assignments").await {
        Ok(base) => base,
        Err(response) => return response,
    };
    let assignments = match api.service.list_role_assignments().await {
        Ok(assignments) => assignments,
        Err(err) => return server_failure(&err),
    };
    let with_names = flag(query.include_names.as_deref());
    let (users, projects) = if with_names {
        match (
            api.service.list_users().await,
            api.service.list_projects().await,
        ) {
            (Ok(users), Ok(projects)) => (users, projects),
            (Err(err), _) | (_, Err(err)) => return server_failure(&err),
        }
    } else {
        (Vec::new(), Vec::new())
    };
    let nothing = query.group_id.is_some() || query.domain_id.is_some() || query.system.is_some();
    // (user, project) -> role names, in the store's order.
    let mut grouped: Vec<((String, String), Vec<String>)> = Vec::new();
    for a in assignments {
        if nothing
            || query.user_id.as_deref().is_some_and(|u| u != a.user_id)
            || query
                .project_id
                .as_deref()
                .is_some_and(|p| p != a.project_id)
        {
            continue;
        }
        let key = (a.user_id, a.project_id);
        match grouped.iter_mut().find(|(k, _)| *k == key) {
            Some((_, roles)) => roles.push(a.role),
            None => grouped.push((key, vec![a.role])),
        }
    }
    let effective = flag(query.effective.as_deref());
    let mut items = Vec::new();
    for ((user, project), roles) in grouped {
        let roles = if effective {
            effective_roles(roles)
        } else {
            roles
        };
        for role in roles {
            let rid = role_id(&role);
            if query.role_id.as_deref().is_some_and(|r| r != rid) {
                continue;
            }
            let mut item = json!({
                "role": {"id": rid},
                "user": {"id": user},
                "scope": {"project": {"id": project}},
                "links": {"assignment": format!(
                    "{base}/identity/v3/projects/{project}/users/{user}/roles/{rid}")},
            });
            if with_names {
                let domain = json!({"id": DEFAULT_DOMAIN_ID, "name": DEFAULT_DOMAIN_NAME});
                item["role"]["name"] = json!(role);
                if let Some(u) = users.iter().find(|u| u.id == user) {
                    item["user"]["name"] = json!(u.name);
                    item["user"]["domain"] = domain.clone();
                }
                if let Some(p) = projects.iter().find(|p| p.id == project) {
                    item["scope"]["project"]["name"] = json!(p.name);
                    item["scope"]["project"]["domain"] = domain;
                }
            }
            items.push(item);
        }
    }
    collection(&base, "role_assignments", items)
}
