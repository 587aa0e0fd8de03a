//! Share instances (admin): Manila's `v2/share_instances.py` with the view of
//! `views/share_instance.py`, from 2.3. `GET /v2/share_instances`,
//! `GET /v2/share_instances/{id}`, `GET /v2/shares/{share_id}/instances` and the admin
//! actions `reset_status` / `force_delete` (`os-` prefixed below 2.7). An instance's export
//! locations live in [`super::share_instance_export_locations`].
//!
//! Each handler checks in Manila's order: the method's microversion (404), the endpoint's
//! policy against the caller's project (403, before any lookup), the body, the lookup
//! (404), the policy against the resource, then hands over to
//! [`shoal_core::share_instances`].

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use shoal_core::share_instances::{self as core_instances, InstanceListFilters};
use shoal_core::shares::{RESET_STATUSES, STATUS_CREATING, STATUS_CREATING_FROM_SNAPSHOT};
use shoal_store::{ExportLocationRow, ShareInstanceRow};
use shoal_types::time::{manila_timestamp, manila_timestamp_opt};

use super::share_replicas::validated_state;
use super::shares::load_share;
use crate::ApiState;
use crate::body::JsonBody;
use crate::context::RequestContext;
use crate::error::{ApiError, ApiResult, GENERIC_404};
use crate::routes::Routes;

/// The share instances API exists from this version.
pub const SINCE: (u32, u32) = (2, 3);
/// Actions lose their `os-` prefix at this version.
const UNPREFIXED_ACTIONS_SINCE: (u32, u32) = (2, 7);
/// The list passes `export_location_id` / `export_location_path` (and any other query
/// key) on as filters from this version; before it, the list ignores its query.
const FILTERS_SINCE: (u32, u32) = (2, 35);
/// `is_soft_deleted` is parsed as a strict boolean from this version.
const SOFT_DELETED_BOOL_SINCE: (u32, u32) = (2, 69);
/// Every action name the controller registers (`wsgi.action`).
const ACTIONS: [&str; 4] = [
    "os-reset_status",
    "reset_status",
    "os-force_delete",
    "force_delete",
];

/// Routes of this resource.
pub fn router() -> Routes<ApiState> {
    Routes::new()
        .get("/v2/share_instances", list_share_instances)
        .get("/v2/share_instances/{id}", show_share_instance)
        .post("/v2/share_instances/{id}/action", share_instance_action)
        .get("/v2/shares/{share_id}/instances", list_instances_of_share)
}

/// A policy refused against a resource (`PolicyNotAuthorized` escaping the controller).
fn policy_not_allowed(rule: &str) -> ApiError {
    ApiError::forbidden(format!("Policy doesn't allow {rule} to be performed."))
}

/// Detail view of one instance at the request's version (`ViewBuilder.detail`);
/// `locations` are the instance's export locations, shown as paths below 2.9.
pub fn instance_view(
    ctx: &RequestContext,
    instance: &ShareInstanceRow,
    locations: &[ExportLocationRow],
) -> Value {
    let mut status = instance.status.as_str();
    if !ctx.at_least(2, 54) && status == STATUS_CREATING_FROM_SNAPSHOT {
        status = STATUS_CREATING;
    }
    let mut view = json!({
        "id": instance.id,
        "share_id": instance.share_id,
        "availability_zone": instance.availability_zone,
        "created_at": manila_timestamp(instance.created_at),
        // Manila stores no host until the scheduler placed the instance.
        "host": (!instance.host.is_empty()).then_some(&instance.host),
        "status": status,
        "share_network_id": instance.share_network_id,
        "share_server_id": instance.share_server_id,
    });
    if !ctx.at_least(2, 9) {
        let paths: Vec<&str> = locations.iter().map(|el| el.path.as_str()).collect();
        view["export_location"] = json!(paths.first());
        view["export_locations"] = json!(paths);
    }
    if ctx.at_least(2, 10) {
        view["access_rules_status"] = json!(instance.access_rules_status);
    }
    if ctx.at_least(2, 11) {
        view["replica_state"] = json!(instance.replica_state);
    }
    if ctx.at_least(2, 22) {
        view["share_type_id"] = json!(instance.share_type_id);
    }
    if ctx.at_least(2, 30) {
        view["cast_rules_to_readonly"] = json!(instance.cast_rules_to_readonly);
    }
    if ctx.at_least(2, 54) {
        view["progress"] = json!(instance.progress);
    }
    if ctx.at_least(2, 71) {
        view["updated_at"] = json!(manila_timestamp_opt(instance.updated_at));
    }
    view
}

/// `{"share_instances": [...]}`; export locations are read only where the view shows them.
async fn list_body(
    state: &ApiState,
    ctx: &RequestContext,
    instances: &[ShareInstanceRow],
) -> ApiResult<Json<Value>> {
    let locations = if ctx.at_least(2, 9) {
        vec![Vec::new(); instances.len()]
    } else {
        core_instances::export_locations_of(&state.core, instances).await?
    };
    let items: Vec<Value> = instances
        .iter()
        .zip(&locations)
        .map(|(instance, locations)| instance_view(ctx, instance, locations))
        .collect();
    Ok(Json(json!({ "share_instances": items })))
}

/// The list filters of a query at the request's version (Manila's three `index` methods).
fn list_filters(
    ctx: &RequestContext,
    params: &HashMap<String, String>,
) -> ApiResult<InstanceListFilters> {
    if !ctx.at_least(FILTERS_SINCE.0, FILTERS_SINCE.1) {
        return Ok(InstanceListFilters::default());
    }
    let get = |key: &str| params.get(key).cloned();
    let soft_deleted_only = match params.get("is_soft_deleted") {
        None => false,
        Some(value) if ctx.at_least(SOFT_DELETED_BOOL_SINCE.0, SOFT_DELETED_BOOL_SINCE.1) => {
            shoal_core::share_types::bool_from_string(&Value::String(value.clone())).ok_or_else(
                || {
                    ApiError::bad_request(format!(
                        "Invalid value {value} for is_soft_deleted. Expecting a boolean."
                    ))
                },
            )?
        }
        // Before 2.69 Manila passes the raw string on and tests it for truthiness.
        Some(value) => !value.is_empty(),
    };
    Ok(InstanceListFilters {
        export_location_id: get("export_location_id"),
        export_location_path: get("export_location_path"),
        host: get("host"),
        status: get("status"),
        share_server_id: get("share_server_id"),
        soft_deleted_only,
        encryption_key_ref: get("encryption_key_ref"),
    })
}

/// `GET /v2/share_instances` (admin).
pub async fn list_share_instances(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    ctx.require_version(SINCE, None)?;
    ctx.authorize(&state, "share_instance:index")?;
    let filters = list_filters(&ctx, &params)?;
    let instances = core_instances::list_instances(&state.core, &filters).await?;
    list_body(&state, &ctx, &instances).await
}

/// `GET /v2/share_instances/{id}` (admin); 404 with webob's generic text.
pub async fn show_share_instance(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.require_version(SINCE, None)?;
    ctx.authorize(&state, "share_instance:show")?;
    let Some((instance, _share)) = core_instances::find_instance(&state.core, &id).await? else {
        return Err(ApiError::not_found(GENERIC_404));
    };
    let locations = if ctx.at_least(2, 9) {
        Vec::new()
    } else {
        core_instances::export_locations_of(&state.core, std::slice::from_ref(&instance))
            .await?
            .pop()
            .unwrap_or_default()
    };
    Ok(Json(
        json!({ "share_instance": instance_view(&ctx, &instance, &locations) }),
    ))
}

/// `GET /v2/shares/{share_id}/instances` (policy `share_instance:index`); 404 generic
/// when the share is unknown or not visible (`share_api.get`).
pub async fn list_instances_of_share(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(share_id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.require_version(SINCE, None)?;
    ctx.authorize(&state, "share_instance:index")?;
    let share = load_share(&state, &ctx, &share_id, GENERIC_404).await?;
    list_body(&state, &ctx, &share.instances).await
}

/// `POST /v2/share_instances/{id}/action`: `reset_status` / `force_delete` from 2.7,
/// `os-reset_status` / `os-force_delete` in 2.3–2.6. An action name the controller does
/// not register is a 400 at every version; a registered one outside its versions a 404.
pub async fn share_instance_action(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Response> {
    let (action, value) = body.action()?;
    if !ACTIONS.contains(&action.as_str()) {
        return Err(ApiError::bad_request(format!(
            "There is no such action: {action}"
        )));
    }
    let (name, range) = match action.strip_prefix("os-") {
        Some(name) => (name, (SINCE, Some((2, 6)))),
        None => (action.as_str(), (UNPREFIXED_ACTIONS_SINCE, None)),
    };
    ctx.require_version(range.0, range.1)?;
    if name == "reset_status" {
        reset_status(&state, &ctx, &id, &value).await
    } else {
        force_delete(&state, &ctx, &id).await
    }
}

/// `reset_status` `{"status": "<s>"}` → 202 (`AdminActionsMixin._reset_status`).
async fn reset_status(
    state: &ApiState,
    ctx: &RequestContext,
    id: &str,
    value: &Value,
) -> ApiResult<Response> {
    ctx.authorize(state, "share_instance:reset_status")?;
    let status = validated_state(value, "status", &RESET_STATUSES)?;
    let Some((instance, share)) = core_instances::find_instance(&state.core, id).await? else {
        return Err(ApiError::not_found(GENERIC_404));
    };
    // Manila re-raises this refusal as a bare 403 (webob's default text).
    ctx.authorize_target(state, "share_instance:reset_status", &share.project_id)?;
    core_instances::reset_instance_status(&state.core, &instance, status).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `force_delete` → 202 (`AdminActionsMixin._force_delete` and
/// `share_api.delete_instance(force=True)`, which also checks `share:delete`).
async fn force_delete(state: &ApiState, ctx: &RequestContext, id: &str) -> ApiResult<Response> {
    ctx.authorize(state, "share_instance:force_delete")?;
    let Some((instance, share)) = core_instances::find_instance(&state.core, id).await? else {
        return Err(ApiError::not_found(GENERIC_404));
    };
    ctx.authorize_target(state, "share_instance:force_delete", &share.project_id)
        .map_err(|_| policy_not_allowed("share_instance:force_delete"))?;
    // `delete_instance` checks `share:delete` without a target: the caller's project.
    ctx.authorize(state, "share:delete")
        .map_err(|_| policy_not_allowed("share:delete"))?;
    core_instances::force_delete_instance(&state.core, &instance, &share).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
