//! `GET /v2/availability-zones` (≥2.7) and its legacy twin `/v2/os-availability-zone`
//! (2.0–2.6), Manila's `availability_zones.py`. Unknown query parameters are ignored.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use shoal_types::time::{manila_timestamp, manila_timestamp_opt};

use crate::ApiState;
use crate::context::RequestContext;
use crate::error::ApiResult;
use crate::routes::Routes;

/// Routes of this resource.
pub fn router() -> Routes<ApiState> {
    Routes::new()
        .get("/v2/availability-zones", list_availability_zones)
        .get("/v2/os-availability-zone", list_availability_zones_legacy)
}

async fn index(state: &ApiState, ctx: &RequestContext) -> ApiResult<Json<Value>> {
    ctx.authorize(state, "availability_zone:index")?;
    let zones = shoal_core::availability_zones::list_availability_zones(&state.core).await?;
    let items: Vec<Value> = zones
        .iter()
        .map(|z| {
            json!({
                "id": z.id,
                "name": z.name,
                "created_at": manila_timestamp(z.created_at),
                "updated_at": manila_timestamp_opt(z.updated_at),
            })
        })
        .collect();
    Ok(Json(json!({ "availability_zones": items })))
}

/// `GET /v2/availability-zones`.
pub async fn list_availability_zones(
    State(state): State<ApiState>,
    ctx: RequestContext,
) -> ApiResult<Json<Value>> {
    ctx.require_version((2, 7), None)?;
    index(&state, &ctx).await
}

/// `GET /v2/os-availability-zone`, the name below 2.7.
pub async fn list_availability_zones_legacy(
    State(state): State<ApiState>,
    ctx: RequestContext,
) -> ApiResult<Json<Value>> {
    ctx.require_version((2, 0), Some((2, 6)))?;
    index(&state, &ctx).await
}
