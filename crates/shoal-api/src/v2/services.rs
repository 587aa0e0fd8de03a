//! `GET /v2/services` and `PUT /v2/services/{enable|disable}` (≥2.7; `os-services` below),
//! Manila's `services.py`. Admin only by default policy. `state` (up/down) is derived from
//! the last heartbeat.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};
use shoal_core::services::{ServiceQuery, ServiceView};
use shoal_types::time::manila_timestamp;

use crate::ApiState;
use crate::body::JsonBody;
use crate::context::RequestContext;
use crate::error::{ApiError, ApiResult};
use crate::routes::Routes;

/// Routes of this resource.
pub fn router() -> Routes<ApiState> {
    Routes::new()
        .get("/v2/services", list_services)
        .get("/v2/os-services", list_services_legacy)
        .put("/v2/services/{action}", update_service)
        .put("/v2/os-services/{action}", update_service_legacy)
}

fn view(ctx: &RequestContext, service: &ServiceView) -> Value {
    let row = &service.row;
    let mut item = json!({
        "id": row.id,
        "binary": row.binary,
        "host": row.host,
        "zone": row.availability_zone,
        "status": if row.disabled { "disabled" } else { "enabled" },
        "state": if service.up { "up" } else { "down" },
        "updated_at": manila_timestamp(row.updated_at),
    });
    if ctx.at_least(2, 83) {
        item["disabled_reason"] = json!(row.disabled_reason);
    }
    if ctx.at_least(2, 86) {
        // shoal runs no "ensure shares" pass, so a service is never ensuring.
        item["ensuring"] = json!(false);
    }
    item
}

async fn index(
    state: &ApiState,
    ctx: &RequestContext,
    params: HashMap<String, String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(state, "service:index")?;
    // Manila answers an empty list, not an error, for an unknown status value.
    if let Some(status) = params.get("status")
        && !matches!(status.as_str(), "enabled" | "disabled")
    {
        return Ok(Json(json!({"services": []})));
    }
    let query = ServiceQuery {
        host: params.get("host").cloned(),
        binary: params.get("binary").cloned(),
        zone: params.get("zone").cloned(),
        state: params.get("state").cloned(),
        status: params.get("status").cloned(),
    };
    let services = shoal_core::services::list_services(&state.core, &query).await?;
    let items: Vec<Value> = services.iter().map(|s| view(ctx, s)).collect();
    Ok(Json(json!({ "services": items })))
}

/// `GET /v2/services`.
pub async fn list_services(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    ctx.require_version((2, 7), None)?;
    index(&state, &ctx, params).await
}

/// `GET /v2/os-services` (2.0–2.6).
pub async fn list_services_legacy(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    ctx.require_version((2, 0), Some((2, 6)))?;
    index(&state, &ctx, params).await
}

async fn update(
    state: &ApiState,
    ctx: &RequestContext,
    action: &str,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    ctx.authorize(state, "service:update")?;
    let disabled = match action {
        "enable" => false,
        "disable" => true,
        other => return Err(ApiError::not_found(format!("Unknown action '{other}'"))),
    };
    let fields = body
        .0
        .as_ref()
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::bad_request(crate::error::GENERIC_400))?;
    let text = |key: &str| fields.get(key).and_then(Value::as_str).map(str::to_owned);
    let (Some(host), Some(binary)) = (text("host"), text("binary")) else {
        return Err(ApiError::bad_request(crate::error::GENERIC_400));
    };
    let supports_reason = ctx.at_least(2, 83);
    let mut reason = None;
    if disabled && let Some(given) = fields.get("disabled_reason").filter(|v| !v.is_null()) {
        if !supports_reason {
            return Err(ApiError::bad_request(
                "'disabled_reason' option is not supported by this microversion. Use 2.83 or greater microversion to be able to set 'disabled_reason'.",
            ));
        }
        let trimmed = given.as_str().map(str::trim).unwrap_or_default();
        if trimmed.is_empty() || trimmed.chars().count() > 255 {
            return Err(ApiError::bad_request(
                "Disabled reason contains invalid characters or is too long",
            ));
        }
        reason = Some(trimmed.to_owned());
    }
    let row = shoal_core::services::set_service_disabled(
        &state.core,
        &host,
        &binary,
        disabled,
        reason.as_deref(),
    )
    .await?;
    let mut answer = json!({
        "host": row.host,
        "binary": row.binary,
        "status": if disabled { "disabled" } else { "enabled" },
    });
    if supports_reason {
        answer["disabled_reason"] = json!(row.disabled_reason);
    }
    // Manila's summary view keeps the `disabled` flag below 2.83.
    if !supports_reason {
        answer["disabled"] = json!(disabled);
    }
    Ok(Json(answer))
}

/// `PUT /v2/services/{enable|disable}`.
pub async fn update_service(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(action): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    ctx.require_version((2, 7), None)?;
    update(&state, &ctx, &action, body).await
}

/// `PUT /v2/os-services/{enable|disable}` (2.0–2.6).
pub async fn update_service_legacy(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(action): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    ctx.require_version((2, 0), Some((2, 6)))?;
    update(&state, &ctx, &action, body).await
}
