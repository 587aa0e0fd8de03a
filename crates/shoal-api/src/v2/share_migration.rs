//! Share migration actions on `POST /v2/shares/{id}/action` (Manila's
//! `api/v2/shares.py::migration_start`, `migration_complete`, `migration_cancel`,
//! `migration_get_progress`; experimental, admin-only by policy). Body checks are Manila's;
//! what shoal does with a valid request is in [`shoal_core::share_migration`].

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use shoal_core::share_migration::{self as core_migration, MigrationStart};
use shoal_core::share_types::{bool_from_string, is_uuid_like, py_str};
use shoal_store::StoreError;
use uuid::Uuid;

use super::shares::load_share;
use crate::ApiState;
use crate::context::RequestContext;
use crate::error::{ApiError, ApiResult};

/// The flags a driver-assisted migration honours; mandatory from 2.29, with `host`.
const DRIVER_ASSISTED_PARAMS: [&str; 4] = [
    "preserve_metadata",
    "writable",
    "nondisruptive",
    "preserve_snapshots",
];
/// Manila never took the migration APIs out of experimental.
const NEVER_GA: (u32, u32) = (2, 96);

/// Whether `action` is one of the migration actions this module serves.
pub fn is_migration_action(action: &str) -> bool {
    matches!(
        action,
        "migration_start" | "migration_complete" | "migration_cancel" | "migration_get_progress"
    )
}

/// Dispatches a migration action (names without `os-`: they date from 2.22).
pub async fn migration_action(
    state: &ApiState,
    ctx: &RequestContext,
    id: &str,
    action: &str,
    value: Value,
) -> ApiResult<Response> {
    match action {
        "migration_start" => migration_start(state, ctx, id, value).await,
        "migration_complete" => {
            let share = load(state, ctx, id, (2, 22), "share:migration_complete").await?;
            core_migration::migration_complete(&share)?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "migration_cancel" => {
            let share = load(state, ctx, id, (2, 22), "share:migration_cancel").await?;
            core_migration::migration_cancel(&share)?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        _ => {
            let share = load(state, ctx, id, (2, 22), "share:migration_get_progress").await?;
            let total = core_migration::migration_get_progress(&share)?;
            let mut body = json!({
                "total_progress": total,
                "task_state": share.row.task_state,
            });
            if ctx.at_least(2, 59) {
                body["details"] = json!({});
            }
            Ok((StatusCode::OK, Json(body)).into_response())
        }
    }
}

/// Version, policy (without target, as `Controller.authorize`) and the share lookup.
async fn load(
    state: &ApiState,
    ctx: &RequestContext,
    id: &str,
    min: (u32, u32),
    policy: &str,
) -> ApiResult<shoal_core::shares::Share> {
    ctx.require_experimental(min, NEVER_GA)?;
    ctx.authorize(state, policy)?;
    load_share(state, ctx, id, &format!("Share {id} not found.")).await
}

/// `migration_start` (2.29+) → 202 in Manila; here 200 when there is nothing to do, else
/// Manila's refusals and then the one for an unsupported migration.
async fn migration_start(
    state: &ApiState,
    ctx: &RequestContext,
    id: &str,
    value: Value,
) -> ApiResult<Response> {
    let share = load(state, ctx, id, (2, 29), "share:migration_start").await?;
    if share.row.is_soft_deleted {
        return Err(ApiError::bad_request(format!(
            "Invalid share: Migration cannot start for share '{id}' since it has been soft deleted."
        )));
    }
    let params = match &value {
        Value::Object(map) if !map.is_empty() => map,
        _ => return Err(ApiError::bad_request("Request is missing body.")),
    };
    let mandatory = DRIVER_ASSISTED_PARAMS.iter().chain(&["host"]);
    if mandatory.clone().any(|k| !params.contains_key(*k)) {
        let names: Vec<&str> = mandatory.copied().collect();
        return Err(ApiError::bad_request(format!(
            "Must specify all mandatory parameters: ['{}']",
            names.join("', '")
        )));
    }
    let flag = |key: &str| -> ApiResult<bool> {
        match params.get(key) {
            None => Ok(false),
            Some(v) => bool_from_string(v).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Value '{}' for '{key}' is not a boolean.",
                    py_str(v)
                ))
            }),
        }
    };
    let mut flags = [false; 4];
    for (slot, key) in flags.iter_mut().zip(DRIVER_ASSISTED_PARAMS) {
        *slot = flag(key)?;
    }
    let force_host_assisted_migration = flag("force_host_assisted_migration")?;
    if let Some(network) = non_null(params, "new_share_network_id") {
        // shoal has no share networks, so no id names one.
        return Err(ApiError::bad_request(format!(
            "Share network {} not found.",
            py_str(network)
        )));
    }
    let new_share_type = match non_null(params, "new_share_type_id") {
        None => None,
        Some(type_id) => Some(find_share_type(state, type_id).await?),
    };
    let host = match params.get("host") {
        Some(Value::String(h)) => h.clone(),
        Some(other) => py_str(other),
        None => String::new(),
    };
    let req = MigrationStart {
        host,
        preserve_metadata: flags[0],
        writable: flags[1],
        nondisruptive: flags[2],
        preserve_snapshots: flags[3],
        force_host_assisted_migration,
        new_share_type,
    };
    core_migration::migration_start(&state.core, &share, &req).await?;
    Ok(StatusCode::OK.into_response())
}

/// A parameter that is present and not `null` (Manila's `params.get(key)` truthiness for ids).
fn non_null<'a>(params: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    params
        .get(key)
        .filter(|v| !v.is_null() && v.as_str() != Some(""))
}

/// `db.share_type_get` by id; a miss is Manila's 400.
async fn find_share_type(
    state: &ApiState,
    type_id: &Value,
) -> ApiResult<shoal_store::ShareTypeRow> {
    let text = py_str(type_id);
    let not_found = || ApiError::bad_request(format!("Share type {text} not found."));
    if !is_uuid_like(&text) {
        return Err(not_found());
    }
    let uuid = Uuid::parse_str(&text).map_err(|_| not_found())?;
    match state.core.store.get_share_type(uuid).await {
        Ok(row) => Ok(row),
        Err(StoreError::NotFound(_)) => Err(not_found()),
        Err(other) => Err(shoal_core::CoreError::from(other).into()),
    }
}
