//! Export locations of one share instance (admin): Manila's
//! `v2/share_instance_export_locations.py` with the plain flavour of
//! `views/export_locations.py`, from 2.9. Every location of the instance is listed,
//! admin-only ones included (the endpoint is admin by default).
//!
//! As for replicas (quirk §17.8), the show is stricter than Manila's, which looks the uuid
//! up among all locations: the location must belong to the instance in the URL, otherwise
//! it is the same 404 as an unknown uuid.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use shoal_core::share_instances as core_instances;
use shoal_store::{ExportLocationRow, ShareInstanceRow};
use shoal_types::time::{manila_timestamp, manila_timestamp_opt};

use crate::ApiState;
use crate::context::RequestContext;
use crate::error::{ApiError, ApiResult};
use crate::routes::Routes;

/// Instance export locations exist from this version.
const SINCE: (u32, u32) = (2, 9);

/// Routes of this resource.
pub fn router() -> Routes<ApiState> {
    Routes::new()
        .get(
            "/v2/share_instances/{id}/export_locations",
            list_share_instance_export_locations,
        )
        .get(
            "/v2/share_instances/{id}/export_locations/{export_location_id}",
            show_share_instance_export_location,
        )
}

/// One location at the request's version; `detail` adds the timestamps.
pub fn export_location_view(ctx: &RequestContext, el: &ExportLocationRow, detail: bool) -> Value {
    let mut view = json!({"id": el.id, "path": el.path});
    if ctx.at_least(2, 14) {
        view["preferred"] = json!(el.preferred);
    }
    if ctx.at_least(2, 87) {
        let mut metadata = el.metadata.clone();
        metadata.remove("preferred");
        view["metadata"] = json!(metadata);
    }
    if ctx.is_admin {
        view["share_instance_id"] = json!(el.share_instance_id);
        view["is_admin_only"] = json!(el.is_admin_only);
    }
    if detail {
        view["created_at"] = json!(manila_timestamp(el.created_at));
        view["updated_at"] = json!(manila_timestamp_opt(el.updated_at));
    }
    view
}

/// `_verify_share_instance`: the instance (404 `Share instance '<id>' not found.`) and,
/// when its share is not public, `share_instance:show` against the share's project (a
/// refusal escapes as `PolicyNotAuthorized`).
async fn verified_instance(
    state: &ApiState,
    ctx: &RequestContext,
    id: &str,
) -> ApiResult<(ShareInstanceRow, Vec<ExportLocationRow>)> {
    let (instance, share, locations) =
        core_instances::instance_export_locations(&state.core, id).await?;
    if !share.is_public {
        ctx.authorize_target(state, "share_instance:show", &share.project_id)
            .map_err(|_| {
                ApiError::forbidden("Policy doesn't allow share_instance:show to be performed.")
            })?;
    }
    Ok((instance, locations))
}

/// `GET /v2/share_instances/{id}/export_locations`.
pub async fn list_share_instance_export_locations(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.require_version(SINCE, None)?;
    ctx.authorize(&state, "share_instance_export_location:index")?;
    let (_instance, locations) = verified_instance(&state, &ctx, &id).await?;
    let items: Vec<Value> = locations
        .iter()
        .map(|el| export_location_view(&ctx, el, false))
        .collect();
    Ok(Json(json!({ "export_locations": items })))
}

/// `GET /v2/share_instances/{id}/export_locations/{export_location_id}`.
pub async fn show_share_instance_export_location(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path((id, export_location_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    ctx.require_version(SINCE, None)?;
    ctx.authorize(&state, "share_instance_export_location:show")?;
    let (_instance, locations) = verified_instance(&state, &ctx, &id).await?;
    let location = locations
        .iter()
        .find(|el| el.id.to_string().eq_ignore_ascii_case(&export_location_id))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Export location {export_location_id} could not be found."
            ))
        })?;
    Ok(Json(
        json!({ "export_location": export_location_view(&ctx, location, true) }),
    ))
}
