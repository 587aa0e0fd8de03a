//! Export locations of a share: Manila's `v2/share_export_locations.py` and
//! `views/export_locations.py` (≥2.9; below, the share views embed the paths instead).
//!
//! Views: `id`, `path`; `preferred` from 2.14; `metadata` (without `preferred`) from 2.87;
//! admins also get `share_instance_id` and `is_admin_only`; a show adds `created_at` and
//! `updated_at`. From 2.47 only the active replica's locations count
//! ([`shoal_core::export_locations`]). An unknown share is 404 `"Share '<id>' not found."`;
//! another project's private share is 403 (`share:get` on it), as in Manila.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use shoal_core::export_locations::{self as core_els, ExportLocationScope};
use shoal_core::shares::{self as core_shares, Share};
use shoal_store::ExportLocationRow;
use shoal_types::time::{manila_timestamp, manila_timestamp_opt};

use crate::ApiState;
use crate::context::RequestContext;
use crate::error::{ApiError, ApiResult};
use crate::routes::Routes;

/// Routes of this resource.
pub fn router() -> Routes<ApiState> {
    Routes::new()
        .get(
            "/v2/shares/{share_id}/export_locations",
            list_share_export_locations,
        )
        .get(
            "/v2/shares/{share_id}/export_locations/{export_location_id}",
            show_share_export_location,
        )
}

/// One export location at the request's version (`_get_export_location_view`).
fn export_location_view(ctx: &RequestContext, el: &ExportLocationRow, detail: bool) -> Value {
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

/// Which locations the caller gets.
fn scope(ctx: &RequestContext) -> ExportLocationScope {
    ExportLocationScope {
        include_admin_only: ctx.is_admin,
        ignore_secondary_replicas: ctx.at_least(2, 47),
    }
}

/// `_verify_share`: the share must exist (any project: Manila's `share_get` here is not
/// project-scoped) and, unless it is public, pass `share:get` for its project, so another
/// project's private share is 403, not 404.
async fn verify_share(state: &ApiState, ctx: &RequestContext, share_id: &str) -> ApiResult<Share> {
    let share = core_shares::find_share(&state.core, share_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Share '{share_id}' not found.")))?;
    if !share.row.is_public {
        ctx.authorize_target(state, "share:get", &share.row.project_id)?;
    }
    Ok(share)
}

/// `GET /v2/shares/{share_id}/export_locations` (≥2.9).
pub async fn list_share_export_locations(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(share_id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.require_version((2, 9), None)?;
    ctx.authorize(&state, "share_export_location:index")?;
    let share = verify_share(&state, &ctx, &share_id).await?;
    let locations = core_els::list_export_locations(&state.core, &share, scope(&ctx)).await?;
    let items: Vec<Value> = locations
        .iter()
        .map(|el| export_location_view(&ctx, el, false))
        .collect();
    Ok(Json(json!({ "export_locations": items })))
}

/// `GET /v2/shares/{share_id}/export_locations/{export_location_id}` (≥2.9).
pub async fn show_share_export_location(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path((share_id, export_location_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    ctx.require_version((2, 9), None)?;
    ctx.authorize(&state, "share_export_location:show")?;
    let share = verify_share(&state, &ctx, &share_id).await?;
    let location =
        core_els::get_export_location(&state.core, &share, &export_location_id, scope(&ctx))
            .await?;
    Ok(Json(
        json!({ "export_location": export_location_view(&ctx, &location, true) }),
    ))
}
