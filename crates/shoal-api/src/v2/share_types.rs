//! Share types, their extra specs and project access: Manila's `share_types.py`,
//! `share_types_extra_specs.py` and `views/types.py`.
//!
//! Every handler checks policy first (after the microversion gate of `update`), then the
//! body's shape, then hands over to [`shoal_core::share_types`]. Views follow the
//! microversion: `os-share-type-access:is_public` below 2.7, `share_type_access:is_public`
//! from 2.7, `description` from 2.41, `is_default` from 2.46; non-admins see only
//! tenant-visible extra specs and, from 2.24, `false` for unset snapshot capabilities.
//! `/v2/types/detail` is routed by Manila but has no handler, hence a 404.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use shoal_core::share_types::{
    self as core_types, Caller, CreateShareType, INFERRED_FALSE_EXTRA_SPECS,
    SNAPSHOT_INHERIT_SHARE_ACCESS_SUPPORT, ShareType, ShareTypeQuery, UpdateShareType,
};

use crate::ApiState;
use crate::body::JsonBody;
use crate::context::RequestContext;
use crate::error::{ApiError, ApiResult, GENERIC_400};
use crate::routes::Routes;

/// Routes of this resource.
pub fn router() -> Routes<ApiState> {
    Routes::new()
        .get("/v2/types", list_share_types)
        .post("/v2/types", create_share_type)
        // `default` and `detail` are collection routes in Manila; other methods on them fall
        // through to the member routes with that literal id.
        .get("/v2/types/default", show_default_share_type)
        .put("/v2/types/default", |s, c, b| {
            update_share_type(s, c, Path("default".to_owned()), b)
        })
        .delete("/v2/types/default", |s, c| {
            delete_share_type(s, c, Path("default".to_owned()))
        })
        .get("/v2/types/detail", detail_not_implemented)
        .put("/v2/types/detail", |s, c, b| {
            update_share_type(s, c, Path("detail".to_owned()), b)
        })
        .delete("/v2/types/detail", |s, c| {
            delete_share_type(s, c, Path("detail".to_owned()))
        })
        .get("/v2/types/{id}", show_share_type)
        .put("/v2/types/{id}", update_share_type)
        .delete("/v2/types/{id}", delete_share_type)
        .post("/v2/types/{id}/action", share_type_action)
        .get("/v2/types/{id}/extra_specs", list_extra_specs)
        .post("/v2/types/{id}/extra_specs", create_extra_specs)
        .get("/v2/types/{id}/extra_specs/{key}", show_extra_spec)
        .put("/v2/types/{id}/extra_specs/{key}", update_extra_spec)
        .delete("/v2/types/{id}/extra_specs/{key}", delete_extra_spec)
        .get("/v2/types/{id}/share_type_access", list_share_type_access)
        .get(
            "/v2/types/{id}/os-share-type-access",
            list_share_type_access,
        )
}

fn caller(ctx: &RequestContext) -> Caller<'_> {
    Caller {
        project_id: ctx.project_id(),
        is_admin: ctx.is_admin,
    }
}

/// One share type at the request's microversion (`ViewBuilder.show(brief=True)`).
fn share_type_view(
    ctx: &RequestContext,
    default_name: Option<&str>,
    share_type: &ShareType,
) -> Value {
    let row = &share_type.row;
    let visible = |key: &str| ctx.is_admin || core_types::is_tenant_visible(key);
    let mut extra_specs: Map<String, Value> = row
        .extra_specs
        .iter()
        .filter(|(k, _)| visible(k))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let required_extra_specs: Map<String, Value> = share_type
        .required_extra_specs
        .iter()
        .filter(|(k, _)| visible(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !ctx.is_admin {
        // Tenants need the effective value of capabilities the admin left unset.
        let mut inferred: Vec<&str> = Vec::new();
        if ctx.at_least(2, 24) {
            inferred.extend(INFERRED_FALSE_EXTRA_SPECS);
        }
        if ctx.at_least(2, 99) {
            inferred.push(SNAPSHOT_INHERIT_SHARE_ACCESS_SUPPORT);
        }
        for key in inferred {
            extra_specs
                .entry(key.to_owned())
                .or_insert(Value::Bool(false));
        }
    }
    let mut view = json!({
        "id": row.id,
        "name": row.name,
        "extra_specs": extra_specs,
        "required_extra_specs": required_extra_specs,
    });
    if ctx.at_least(2, 7) {
        view["share_type_access:is_public"] = json!(row.is_public);
    } else {
        view["os-share-type-access:is_public"] = json!(row.is_public);
    }
    if ctx.at_least(2, 41) {
        view["description"] = json!(row.description);
    }
    if ctx.at_least(2, 46) {
        view["is_default"] = json!(default_name == Some(row.name.as_str()));
    }
    view
}

/// `{"share_type": T, "volume_type": T}`.
fn show_view(state: &ApiState, ctx: &RequestContext, share_type: &ShareType) -> Json<Value> {
    let view = share_type_view(
        ctx,
        state.core.config.api.default_share_type.as_deref(),
        share_type,
    );
    Json(json!({"share_type": view, "volume_type": view}))
}

/// The `share_type` (or legacy `volume_type`) object of a create or update body.
fn type_object(body: &JsonBody) -> ApiResult<&Map<String, Value>> {
    body.object("share_type")
        .or_else(|| body.object("volume_type"))
        .ok_or_else(|| ApiError::bad_request(GENERIC_400))
}

/// Python truthiness, for the places where Manila tests a value with `if value`.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// A visibility flag: JSON bool or a bool-like string (oslo `bool_from_string(strict=True)`).
fn parse_is_public(value: &Value) -> ApiResult<bool> {
    core_types::bool_from_string(value).ok_or_else(|| {
        ApiError::bad_request("share_type_access:is_public has a non-boolean value.")
    })
}

/// `POST /v2/types` → 200.
pub async fn create_share_type(
    State(state): State<ApiState>,
    ctx: RequestContext,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    ctx.authorize(&state, "share_type:create")?;
    let fields = type_object(&body)?;
    let invalid = || ApiError::bad_request("Type name or description is not valid.");
    let description = fields.get("description").filter(|d| !d.is_null());
    if description.is_some_and(truthy) && !ctx.at_least(2, 41) {
        return Err(ApiError::bad_request(
            "'description' key is not supported by this microversion. Use 2.41 or greater microversion to be able to use 'description' in share type.",
        ));
    }
    let name = match fields.get("name") {
        None | Some(Value::Null) => return Err(invalid()),
        Some(Value::String(name)) if name.is_empty() || name.chars().count() > 255 => {
            return Err(invalid());
        }
        Some(Value::String(name)) => name.clone(),
        Some(_) => return Err(ApiError::bad_request(GENERIC_400)),
    };
    let description = match description {
        None => None,
        Some(Value::String(d)) if d.chars().count() > 255 => return Err(invalid()),
        Some(Value::String(d)) => Some(d.clone()),
        Some(_) => return Err(ApiError::bad_request(GENERIC_400)),
    };
    // The extension-style key wins when both are sent, as in Manila.
    let is_public = match fields
        .get("os-share-type-access:is_public")
        .or_else(|| fields.get("share_type_access:is_public"))
    {
        None | Some(Value::Null) => true,
        Some(value) => parse_is_public(value)?,
    };
    let extra_specs = match fields.get("extra_specs") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(specs)) => specs.clone(),
        Some(_) => return Err(ApiError::bad_request(GENERIC_400)),
    };
    let request = CreateShareType {
        name,
        description,
        is_public,
        extra_specs,
        default_snapshot_support: !ctx.at_least(2, 24),
    };
    let created = core_types::create_share_type(&state.core, request).await?;
    Ok(show_view(&state, &ctx, &created))
}

/// `GET /v2/types`: `{"share_types": [...], "volume_types": [...]}`.
pub async fn list_share_types(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(&state, "share_type:index")?;
    let query = ShareTypeQuery {
        is_public: params.get("is_public").cloned(),
        extra_specs: params.get("extra_specs").cloned(),
        extra_specs_supported: ctx.at_least(2, 43),
    };
    let types = core_types::list_share_types(&state.core, caller(&ctx), &query).await?;
    let default_name = state.core.config.api.default_share_type.as_deref();
    let items: Vec<Value> = types
        .iter()
        .map(|t| share_type_view(&ctx, default_name, t))
        .collect();
    Ok(Json(json!({"share_types": items, "volume_types": items})))
}

/// `GET /v2/types/{id}`.
pub async fn show_share_type(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(&state, "share_type:show")?;
    let share_type = core_types::show_share_type(&state.core, caller(&ctx), &id).await?;
    Ok(show_view(&state, &ctx, &share_type))
}

/// `GET /v2/types/default`: the type named by `default_share_type`.
pub async fn show_default_share_type(
    State(state): State<ApiState>,
    ctx: RequestContext,
) -> ApiResult<Json<Value>> {
    ctx.authorize(&state, "share_type:default")?;
    let share_type = core_types::default_share_type(&state.core, caller(&ctx)).await?;
    Ok(show_view(&state, &ctx, &share_type))
}

/// `GET /v2/types/detail`: routed by Manila, but its controller has no such method.
async fn detail_not_implemented() -> ApiError {
    ApiError::generic_not_found()
}

/// `DELETE /v2/types/{id}` → 202.
pub async fn delete_share_type(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    ctx.authorize(&state, "share_type:delete")?;
    core_types::delete_share_type(&state.core, caller(&ctx), &id).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `PUT /v2/types/{id}` (≥2.50): name, description and visibility.
pub async fn update_share_type(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    ctx.require_version((2, 50), None)?;
    ctx.authorize(&state, "share_type:update")?;
    let fields = type_object(&body)?;
    // Only the core-API key is read here, as in Manila.
    let is_public = match fields.get("share_type_access:is_public") {
        None | Some(Value::Null) => None,
        Some(value) => Some(parse_is_public(value)?),
    };
    let text = |key: &str| match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_request(GENERIC_400)),
    };
    let request = UpdateShareType {
        name: text("name")?,
        description: text("description")?,
        is_public,
    };
    let updated = core_types::update_share_type(&state.core, &id, request).await?;
    Ok(show_view(&state, &ctx, &updated))
}

/// `POST /v2/types/{id}/action`: `addProjectAccess` / `removeProjectAccess` → 202.
pub async fn share_type_action(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Response> {
    let (action, value) = body.action()?;
    let add = match action.as_str() {
        "addProjectAccess" => true,
        "removeProjectAccess" => false,
        other => {
            return Err(ApiError::bad_request(format!(
                "There is no such action: {other}"
            )));
        }
    };
    let rule = if add {
        "share_type:add_project_access"
    } else {
        "share_type:remove_project_access"
    };
    ctx.authorize(&state, rule)?;
    let access = value
        .as_object()
        .ok_or_else(|| ApiError::bad_request(GENERIC_400))?;
    let project = core_types::parse_project_id(access.get("project"))?;
    if add {
        core_types::add_share_type_access(&state.core, caller(&ctx), &id, &project).await?;
    } else {
        core_types::remove_share_type_access(&state.core, caller(&ctx), &id, &project).await?;
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `GET /v2/types/{id}/share_type_access` (also `os-share-type-access`): private types only.
pub async fn list_share_type_access(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(&state, "share_type:list_project_access")?;
    let access = core_types::list_share_type_access(&state.core, caller(&ctx), &id).await?;
    let items: Vec<Value> = access
        .projects
        .iter()
        .map(|project| json!({"share_type_id": access.share_type_id, "project_id": project}))
        .collect();
    Ok(Json(json!({"share_type_access": items})))
}

/// `GET /v2/types/{id}/extra_specs`.
pub async fn list_extra_specs(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(&state, "share_types_extra_spec:index")?;
    let specs = core_types::list_extra_specs(&state.core, caller(&ctx), &id).await?;
    Ok(Json(json!({"extra_specs": specs})))
}

/// `POST /v2/types/{id}/extra_specs` → 200, echoing the request body.
pub async fn create_extra_specs(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    ctx.authorize(&state, "share_types_extra_spec:create")?;
    let specs = body
        .object("extra_specs")
        .cloned()
        .ok_or_else(|| ApiError::bad_request(GENERIC_400))?;
    let stored = core_types::set_extra_specs(&state.core, caller(&ctx), &id, specs).await?;
    // Manila returns the body it received, whose specs it normalised in place.
    let mut echo = body.0.unwrap_or_else(|| json!({}));
    echo["extra_specs"] = Value::Object(stored);
    Ok(Json(echo))
}

/// `GET /v2/types/{id}/extra_specs/{key}` → `{key: value}`.
pub async fn show_extra_spec(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(&state, "share_types_extra_spec:show")?;
    let value = core_types::show_extra_spec(&state.core, caller(&ctx), &id, &key).await?;
    let mut answer = Map::new();
    answer.insert(key, Value::String(value));
    Ok(Json(Value::Object(answer)))
}

/// `PUT /v2/types/{id}/extra_specs/{key}` with `{key: value}` → 200 `{key: value}`.
pub async fn update_extra_spec(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path((id, key)): Path<(String, String)>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    ctx.authorize(&state, "share_types_extra_spec:update")?;
    let spec = match body.0 {
        Some(Value::Object(map)) => map,
        // Manila tests `if not body`: every falsy body is "empty".
        Some(other) if truthy(&other) => return Err(ApiError::bad_request(GENERIC_400)),
        _ => Map::new(),
    };
    let stored = core_types::update_extra_spec(&state.core, caller(&ctx), &id, &key, spec).await?;
    Ok(Json(Value::Object(stored)))
}

/// `DELETE /v2/types/{id}/extra_specs/{key}` → 202.
pub async fn delete_extra_spec(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Response> {
    ctx.authorize(&state, "share_types_extra_spec:delete")?;
    // Below 2.24 `snapshot_support` was effectively required and could not be removed.
    let protect_snapshot_support = !ctx.at_least(2, 24);
    core_types::delete_extra_spec(
        &state.core,
        caller(&ctx),
        &id,
        &key,
        protect_snapshot_support,
    )
    .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
