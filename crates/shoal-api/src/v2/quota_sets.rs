//! Quota sets (Manila's `api/v2/quota_sets.py` and `views/quota_sets.py`):
//! `/v2/quota-sets/{project_id}` (≥2.7) with `/defaults` and `/detail` (≥2.25), and the
//! deprecated `/v2/os-quota-sets/{project_id}` (2.0–2.6).
//!
//! `?user_id=` and (2.39+) `?share_type=` address a user's or a share type's quota set
//! (mutually exclusive; an unknown share type is 404): limits default to the project's, an
//! update is bounded by the project's limit, a delete returns the scope to the project's
//! limits. Usage per user and per share type is charged with the project's
//! ([`shoal_core::quotas::Scope`]).
//!
//! Keys that need a newer microversion (`share_groups`/`share_group_snapshots` 2.40,
//! `share_replicas`/`replica_gigabytes` 2.53, `per_share_gigabytes` 2.62,
//! `backups`/`backup_gigabytes` 2.80, `encryption_keys` 2.90) are refused below it at every
//! version. Manila checks them through an `elif` chain that forgets most keys below 2.39;
//! shoal applies the documented rule instead.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use shoal_core::quota_sets::{self as core_quotas, QuotaDetail};
use shoal_core::quotas::Scope;
use shoal_core::share_types::{self as core_types, Caller};

use crate::ApiState;
use crate::body::JsonBody;
use crate::context::RequestContext;
use crate::error::{ApiError, ApiResult, GENERIC_400, POLICY_DENIED};
use crate::routes::Routes;

/// Routes of this resource.
pub fn router() -> Routes<ApiState> {
    Routes::new()
        .get("/v2/quota-sets/{project_id}", show_quota_set)
        .put("/v2/quota-sets/{project_id}", update_quota_set)
        .delete("/v2/quota-sets/{project_id}", delete_quota_set)
        .get(
            "/v2/quota-sets/{project_id}/defaults",
            show_quota_set_defaults,
        )
        .get("/v2/quota-sets/{project_id}/detail", show_quota_set_detail)
        .get("/v2/os-quota-sets/{project_id}", legacy_show_quota_set)
        .put("/v2/os-quota-sets/{project_id}", legacy_update_quota_set)
        .delete("/v2/os-quota-sets/{project_id}", legacy_delete_quota_set)
        .get(
            "/v2/os-quota-sets/{project_id}/defaults",
            legacy_show_quota_set_defaults,
        )
}

/// Keys shown (and settable) only from a microversion on.
const VERSIONED_KEYS: &[(&[&str], (u32, u32))] = &[
    (&["share_groups", "share_group_snapshots"], (2, 40)),
    (&["share_replicas", "replica_gigabytes"], (2, 53)),
    (&["per_share_gigabytes"], (2, 62)),
    (&["backups", "backup_gigabytes"], (2, 80)),
    (&["encryption_keys"], (2, 90)),
];

/// The query parameters Manila reads (`parse_qs` drops empty values).
struct ScopeParams {
    user_id: Option<String>,
    share_type: Option<String>,
}

impl ScopeParams {
    fn from_query(params: &HashMap<String, String>) -> Self {
        let get = |k: &str| params.get(k).filter(|v| !v.is_empty()).cloned();
        Self {
            user_id: get("user_id"),
            share_type: get("share_type"),
        }
    }

    /// `_ensure_share_type_arg_is_absent`, applied below 2.39.
    fn ensure_share_type_absent(&self, ctx: &RequestContext) -> ApiResult<()> {
        if !ctx.at_least(2, 39) && self.share_type.is_some() {
            return Err(ApiError::bad_request(
                "'share_type' key is not supported by this microversion. Use 2.39 or greater microversion to be able to use 'share_type' quotas.",
            ));
        }
        Ok(())
    }

    fn ensure_exclusive(&self) -> ApiResult<()> {
        if self.user_id.is_some() && self.share_type.is_some() {
            return Err(ApiError::bad_request(
                "'user_id' and 'share_type' values are mutually exclusive",
            ));
        }
        Ok(())
    }

    /// `_get_share_type_id` (404 for an unknown type), then the mutual exclusion: the
    /// scope the request addresses.
    async fn scope(&self, state: &ApiState, ctx: &RequestContext) -> ApiResult<OwnedScope> {
        let share_type = self.share_type_id(state, ctx).await?;
        self.ensure_exclusive()?;
        Ok(match (&self.user_id, share_type) {
            (Some(user), _) => OwnedScope::User(user.clone()),
            (None, Some(id)) => OwnedScope::ShareType(id),
            (None, None) => OwnedScope::Project,
        })
    }

    /// The id of the `share_type` parameter; 404 when no such type exists.
    async fn share_type_id(
        &self,
        state: &ApiState,
        ctx: &RequestContext,
    ) -> ApiResult<Option<uuid::Uuid>> {
        let Some(share_type) = &self.share_type else {
            return Ok(None);
        };
        let caller = Caller {
            project_id: ctx.project_id(),
            is_admin: ctx.is_admin,
        };
        match core_types::find_visible_by_name_or_id(&state.core, caller, share_type).await? {
            Some(found) => Ok(Some(found.id)),
            None => Err(ApiError::not_found(format!(
                "Share type with name or id '{share_type}' not found."
            ))),
        }
    }
}

/// A quota scope that owns its user id.
#[derive(Debug, Clone, PartialEq, Eq)]
enum OwnedScope {
    Project,
    User(String),
    ShareType(uuid::Uuid),
}

impl OwnedScope {
    fn scope(&self) -> Scope<'_> {
        match self {
            OwnedScope::Project => Scope::Project,
            OwnedScope::User(user) => Scope::User(user),
            OwnedScope::ShareType(id) => Scope::ShareType(*id),
        }
    }

    fn is_share_type(&self) -> bool {
        matches!(self, OwnedScope::ShareType(_))
    }
}

/// `db.authorize_project_context`: a non-admin may only address its own project.
fn authorize_project(ctx: &RequestContext, project_id: &str) -> ApiResult<()> {
    if ctx.is_admin || ctx.project_id() == project_id {
        Ok(())
    } else {
        Err(ApiError::forbidden(POLICY_DENIED))
    }
}

/// `ViewBuilder.detail_list`: the keys of the request's version, each rendered by `value`.
/// A share type's quota set has no `share_networks` and no share group keys.
fn quota_set_view(
    ctx: &RequestContext,
    project_id: Option<&str>,
    share_type: bool,
    value: impl Fn(&str) -> Value,
) -> Value {
    let mut view = Map::new();
    for key in ["shares", "gigabytes", "snapshots", "snapshot_gigabytes"] {
        view.insert(key.to_owned(), value(key));
    }
    if let Some(project_id) = project_id {
        view.insert("id".to_owned(), json!(project_id));
    }
    if !share_type {
        view.insert("share_networks".to_owned(), value("share_networks"));
    }
    for (keys, (major, minor)) in VERSIONED_KEYS {
        if ctx.at_least(*major, *minor) {
            for key in *keys {
                if share_type && key.starts_with("share_group") {
                    continue;
                }
                view.insert((*key).to_owned(), value(key));
            }
        }
    }
    json!({"quota_set": view})
}

fn limits_view(
    ctx: &RequestContext,
    project_id: Option<&str>,
    share_type: bool,
    limits: &BTreeMap<String, i64>,
) -> Value {
    quota_set_view(ctx, project_id, share_type, |key| json!(limits.get(key)))
}

fn detail_view(
    ctx: &RequestContext,
    project_id: &str,
    share_type: bool,
    quotas: &BTreeMap<String, QuotaDetail>,
) -> Value {
    quota_set_view(ctx, Some(project_id), share_type, |key| {
        match quotas.get(key) {
            Some(d) => json!({"in_use": d.in_use, "limit": d.limit, "reserved": d.reserved}),
            None => Value::Null,
        }
    })
}

/// `_show`: limits, or limits with usage when `detail`.
async fn show(
    state: &ApiState,
    ctx: &RequestContext,
    project_id: &str,
    params: &ScopeParams,
    detail: bool,
) -> ApiResult<Json<Value>> {
    ctx.authorize(state, "quota_set:show")?;
    authorize_project(ctx, project_id)?;
    let scope = params.scope(state, ctx).await?;
    let share_type = scope.is_share_type();
    if detail {
        let quotas = core_quotas::scope_quotas(&state.core, project_id, scope.scope()).await?;
        Ok(Json(detail_view(ctx, project_id, share_type, &quotas)))
    } else {
        let limits = core_quotas::scope_limits(&state.core, project_id, scope.scope()).await?;
        Ok(Json(limits_view(
            ctx,
            Some(project_id),
            share_type,
            &limits,
        )))
    }
}

/// `GET /v2/quota-sets/{project_id}` (≥2.7).
pub async fn show_quota_set(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(project_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    ctx.require_version((2, 7), None)?;
    let params = ScopeParams::from_query(&query);
    params.ensure_share_type_absent(&ctx)?;
    show(&state, &ctx, &project_id, &params, false).await
}

/// `GET /v2/quota-sets/{project_id}/detail` (≥2.25): `{in_use, limit, reserved}` per key.
pub async fn show_quota_set_detail(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(project_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    ctx.require_version((2, 25), None)?;
    let params = ScopeParams::from_query(&query);
    params.ensure_share_type_absent(&ctx)?;
    show(&state, &ctx, &project_id, &params, true).await
}

/// `_defaults`: the configured defaults, for any project id.
fn defaults(state: &ApiState, ctx: &RequestContext, project_id: &str) -> ApiResult<Json<Value>> {
    ctx.authorize(state, "quota_set:show")?;
    let limits = core_quotas::defaults(&state.core);
    Ok(Json(limits_view(ctx, Some(project_id), false, &limits)))
}

/// `GET /v2/quota-sets/{project_id}/defaults` (≥2.7).
pub async fn show_quota_set_defaults(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(project_id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.require_version((2, 7), None)?;
    defaults(&state, &ctx, &project_id)
}

/// `_ensure_specific_microversion_args_are_absent` for every versioned key: a truthy value
/// of a key newer than the request is 400.
fn ensure_versioned_keys_absent(ctx: &RequestContext, body: &Map<String, Value>) -> ApiResult<()> {
    // Manila looks into `quota_set` if present, else at the top level.
    let fields = match body.get("quota_set") {
        Some(Value::Object(fields)) => fields,
        Some(_) => return Err(ApiError::bad_request(GENERIC_400)),
        None => body,
    };
    for (keys, (major, minor)) in VERSIONED_KEYS {
        if ctx.at_least(*major, *minor) {
            continue;
        }
        for key in *keys {
            if fields
                .get(*key)
                .is_some_and(shoal_core::share_access::truthy)
            {
                return Err(ApiError::bad_request(format!(
                    "'{key}' key is not supported by this microversion. Use {major}.{minor} or greater microversion to be able to use '{key}' quotas."
                )));
            }
        }
    }
    Ok(())
}

/// `_update`, after the version checks.
async fn update(
    state: &ApiState,
    ctx: &RequestContext,
    project_id: &str,
    params: &ScopeParams,
    body: Map<String, Value>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(state, "quota_set:update")?;
    let fields = match body.get("quota_set") {
        None => Map::new(),
        Some(Value::Object(fields)) => fields.clone(),
        Some(_) => return Err(ApiError::bad_request(GENERIC_400)),
    };
    let resources = core_quotas::resources(&state.core);
    if !resources
        .iter()
        .any(|r| fields.get(*r).is_some_and(|v| !v.is_null()))
    {
        return Err(ApiError::bad_request(
            "Must supply at least one quota field to update.",
        ));
    }
    params.ensure_exclusive()?;
    let scope = params.scope(state, ctx).await?;
    if scope.is_share_type()
        && fields
            .get("share_groups")
            .or_else(|| fields.get("share_group_snapshots"))
            .is_some_and(shoal_core::share_access::truthy)
    {
        return Err(ApiError::bad_request(
            "Share type quotas cannot constrain share groups and share group snapshots.",
        ));
    }
    let limits =
        core_quotas::update_quotas(&state.core, project_id, scope.scope(), &fields).await?;
    // Manila's update view carries no `id`.
    Ok(Json(limits_view(ctx, None, scope.is_share_type(), &limits)))
}

fn body_object(body: JsonBody) -> ApiResult<Map<String, Value>> {
    match body.0 {
        Some(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::bad_request(GENERIC_400)),
    }
}

/// `PUT /v2/quota-sets/{project_id}` (≥2.7, admin) → 200 with the new limits.
pub async fn update_quota_set(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(project_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    ctx.require_version((2, 7), None)?;
    let params = ScopeParams::from_query(&query);
    params.ensure_share_type_absent(&ctx)?;
    let body = body_object(body)?;
    ensure_versioned_keys_absent(&ctx, &body)?;
    update(&state, &ctx, &project_id, &params, body).await
}

/// `_delete`: back to the defaults → 202.
async fn delete(
    state: &ApiState,
    ctx: &RequestContext,
    project_id: &str,
    params: &ScopeParams,
) -> ApiResult<Response> {
    ctx.authorize(state, "quota_set:delete")?;
    params.ensure_exclusive()?;
    authorize_project(ctx, project_id)?;
    let scope = params.scope(state, ctx).await?;
    core_quotas::reset_scope_quotas(&state.core, project_id, scope.scope()).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `DELETE /v2/quota-sets/{project_id}` (≥2.7, admin) → 202.
pub async fn delete_quota_set(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(project_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    ctx.require_version((2, 7), None)?;
    let params = ScopeParams::from_query(&query);
    params.ensure_share_type_absent(&ctx)?;
    delete(&state, &ctx, &project_id, &params).await
}

/// `GET /v2/os-quota-sets/{project_id}` (2.0–2.6).
pub async fn legacy_show_quota_set(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(project_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    ctx.require_version((2, 0), Some((2, 6)))?;
    let params = ScopeParams::from_query(&query);
    params.ensure_share_type_absent(&ctx)?;
    show(&state, &ctx, &project_id, &params, false).await
}

/// `GET /v2/os-quota-sets/{project_id}/defaults` (2.0–2.6).
pub async fn legacy_show_quota_set_defaults(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(project_id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.require_version((2, 0), Some((2, 6)))?;
    defaults(&state, &ctx, &project_id)
}

/// `PUT /v2/os-quota-sets/{project_id}` (2.0–2.6, admin).
pub async fn legacy_update_quota_set(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(project_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    ctx.require_version((2, 0), Some((2, 6)))?;
    let params = ScopeParams::from_query(&query);
    params.ensure_share_type_absent(&ctx)?;
    let body = body_object(body)?;
    ensure_versioned_keys_absent(&ctx, &body)?;
    update(&state, &ctx, &project_id, &params, body).await
}

/// `DELETE /v2/os-quota-sets/{project_id}` (2.0–2.6, admin) → 202.
pub async fn legacy_delete_quota_set(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(project_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    ctx.require_version((2, 0), Some((2, 6)))?;
    let params = ScopeParams::from_query(&query);
    params.ensure_share_type_absent(&ctx)?;
    delete(&state, &ctx, &project_id, &params).await
}
