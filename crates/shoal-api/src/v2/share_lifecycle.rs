//! Manage, unmanage and the recycle bin: Manila's `ShareController.manage` (`POST
//! /v2/shares/manage`, 2.7+), the legacy `POST /v2/os-share-manage` and `POST
//! /v2/os-share-unmanage/{id}/unmanage` (2.0–2.6), and the share actions `unmanage` (2.7+),
//! `soft_delete` and `restore` (2.69+). Views are the shares controller's; the rules live in
//! [`shoal_core::share_lifecycle`].
//!
//! Each handler checks the policy first (Manila's `@authorize`), then the body in Manila's
//! order: 422 for a missing `share` object or a missing or empty required parameter, 400
//! for a `service_host` without a pool, the share service (404 unknown, 400 down), the share
//! type (404), the public-share policy, then the manage rules of the core.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use shoal_core::share_lifecycle::{self as core_lifecycle, ManageShare};
use shoal_core::share_types::py_str;

use super::shares::{LinkBase, authorize_share, load_share, public_share_policy, share_response};
use crate::ApiState;
use crate::body::JsonBody;
use crate::context::RequestContext;
use crate::error::{ApiError, ApiResult, GENERIC_400, GENERIC_404};
use crate::routes::Routes;

/// Routes of this module. `/v2/shares/manage` answers only `POST`; other methods reach the
/// share member routes with that literal id, as in Manila's router.
pub fn router() -> Routes<ApiState> {
    Routes::new()
        .post("/v2/shares/manage", manage_share)
        .get("/v2/shares/manage", |s, c, l| {
            super::shares::show_share(s, c, Path("manage".to_owned()), l)
        })
        .put("/v2/shares/manage", |s, c, l, b| {
            super::shares::update_share(s, c, Path("manage".to_owned()), l, b)
        })
        .delete("/v2/shares/manage", |s, c| {
            super::shares::delete_share(s, c, Path("manage".to_owned()))
        })
        .post("/v2/os-share-manage", manage_share_legacy)
        .post("/v2/os-share-unmanage/{id}/unmanage", unmanage_legacy)
}

/// `POST /v2/shares/manage` (2.7+) → 200 with the share (`manage_starting`).
pub async fn manage_share(
    State(state): State<ApiState>,
    ctx: RequestContext,
    links: LinkBase,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    ctx.require_version((2, 7), None)?;
    manage(&state, &ctx, &links, body).await
}

/// `POST /v2/os-share-manage` (2.0–2.6) → 200 with the share; `is_public` is ignored.
pub async fn manage_share_legacy(
    State(state): State<ApiState>,
    ctx: RequestContext,
    links: LinkBase,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    ctx.require_version((2, 0), Some((2, 6)))?;
    manage(&state, &ctx, &links, body).await
}

/// A required text parameter: 422 when missing or empty (Python-falsy).
fn required<'a>(fields: &'a serde_json::Map<String, Value>, key: &str) -> ApiResult<&'a Value> {
    let Some(value) = fields.get(key) else {
        return Err(ApiError::unprocessable(format!(
            "Required parameter {key} not found"
        )));
    };
    let empty = match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    };
    if empty {
        return Err(ApiError::unprocessable(format!(
            "Required parameter {key} is empty"
        )));
    }
    Ok(value)
}

/// An optional display text: a string, or absent/null.
fn optional_text(value: Option<&Value>) -> ApiResult<Option<String>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_request(GENERIC_400)),
    }
}

async fn manage(
    state: &ApiState,
    ctx: &RequestContext,
    links: &LinkBase,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    ctx.authorize(state, "share:manage")?;
    let Some(fields) = body.object("share") else {
        return Err(ApiError::unprocessable(
            "Share entity not found in request body",
        ));
    };
    let export_path = required(fields, "export_path")?;
    let service_host = required(fields, "service_host")?;
    let protocol = required(fields, "protocol")?;
    let export_path = match export_path {
        Value::Object(map) => match map.get("path") {
            Some(Value::String(path)) => path.clone(),
            Some(other) => py_str(other),
            None => {
                return Err(ApiError::unprocessable(
                    "Export path must be a string, or a dictionary with a 'path' item",
                ));
            }
        },
        Value::String(path) => path.clone(),
        other => py_str(other),
    };
    let Value::String(service_host) = service_host else {
        return Err(ApiError::bad_request(GENERIC_400));
    };
    let Some((service, pool)) = service_host.split_once('#') else {
        return Err(ApiError::bad_request(
            "service_host parameter should contain pool.",
        ));
    };
    if pool.is_empty() {
        return Err(ApiError::bad_request(
            "service_host parameter should contain pool.",
        ));
    }
    let service_row = core_lifecycle::validate_service_host(&state.core, service).await?;
    let share_type_name = match fields.get("share_type") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(t.clone()),
        Some(_) => return Err(ApiError::bad_request(GENERIC_400)),
    };
    let share_type =
        core_lifecycle::manage_share_type(&state.core, share_type_name.as_deref()).await?;
    // Below 2.8 `is_public` is dropped from the body.
    let is_public = match fields.get("is_public") {
        Some(value) if ctx.at_least(2, 8) => {
            public_share_policy(state, ctx, value, "share:create_public_share")?
        }
        _ => false,
    };
    let Value::String(protocol) = protocol else {
        return Err(ApiError::bad_request(GENERIC_400));
    };
    let name = match fields.get("display_name") {
        Some(value) => optional_text(Some(value))?,
        None => optional_text(fields.get("name"))?,
    };
    let description = match fields.get("display_description") {
        Some(value) => optional_text(Some(value))?,
        None => optional_text(fields.get("description"))?,
    };
    let driver_options: BTreeMap<String, String> = match fields.get("driver_options") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => py_str(other),
                };
                (k.clone(), text)
            })
            .collect(),
        Some(_) => return Err(ApiError::bad_request(GENERIC_400)),
    };
    let share_server_id = if ctx.at_least(2, 49) {
        match fields.get("share_server_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(other) => Some(py_str(other)),
        }
    } else {
        None
    };
    let request = ManageShare {
        project_id: ctx.project_id().to_owned(),
        user_id: ctx.identity.user_id.clone(),
        service_host: service_host.clone(),
        service: service_row,
        export_path,
        share_proto: protocol.to_uppercase(),
        share_type,
        name,
        description,
        is_public,
        driver_options,
        share_server_id,
    };
    if ctx.at_least(2, 92) && fields.get("mount_point_name").is_some_and(|v| !v.is_null()) {
        return Err(ApiError::bad_request(format!(
            "Setting a mount point name is not supported by the share type used: {}.",
            request.share_type.id
        )));
    }
    let share = core_lifecycle::manage_share(&state.core, request).await?;
    share_response(state, ctx, links, &share).await
}

/// The `unmanage` action (2.7+; 2.49+ also for shares on share servers) → 202.
pub async fn unmanage_action(
    state: &ApiState,
    ctx: &RequestContext,
    id: &str,
) -> ApiResult<Response> {
    unmanage(state, ctx, id, ctx.at_least(2, 49)).await
}

/// `POST /v2/os-share-unmanage/{id}/unmanage` (2.0–2.6) → 202.
pub async fn unmanage_legacy(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    ctx.require_version((2, 0), Some((2, 6)))?;
    unmanage(&state, &ctx, &id, false).await
}

async fn unmanage(
    state: &ApiState,
    ctx: &RequestContext,
    id: &str,
    allow_share_server: bool,
) -> ApiResult<Response> {
    ctx.authorize(state, "share:unmanage")?;
    let share = load_share(state, ctx, id, GENERIC_404).await?;
    core_lifecycle::unmanage_share(&state.core, &share, allow_share_server).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `soft_delete` (2.69+) → 202: the share moves to the recycle bin.
pub async fn soft_delete(state: &ApiState, ctx: &RequestContext, id: &str) -> ApiResult<Response> {
    ctx.require_version((2, 69), None)?;
    ctx.authorize(state, "share:soft_delete")?;
    let share = load_share(state, ctx, id, GENERIC_404).await?;
    authorize_share(state, ctx, "share:soft_delete", &share)?;
    core_lifecycle::soft_delete_share(&state.core, &share).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `restore` (2.69+) → 202, or 200 when the share is not in the recycle bin.
pub async fn restore(state: &ApiState, ctx: &RequestContext, id: &str) -> ApiResult<Response> {
    ctx.require_version((2, 69), None)?;
    ctx.authorize(state, "share:restore")?;
    let share = load_share(state, ctx, id, &format!("No share exists with ID {id}.")).await?;
    let status = if core_lifecycle::restore_share(&state.core, &share).await? {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok(status.into_response())
}
