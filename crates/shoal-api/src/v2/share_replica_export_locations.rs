//! Export locations of one replica: Manila's `v2/share_replica_export_locations.py` with
//! the replica flavour of `views/export_locations.py` (spec replication.md §5.8). Served
//! from 2.47, behind the experimental header until 2.55.
//!
//! Items carry the owning replica's `replica_state` and `availability_zone`; admins also
//! get `share_instance_id` and `is_admin_only` and see admin-only locations, which others
//! never do. Deliberately stricter than Manila's show (quirk §17.8): the location must
//! belong to the replica in the URL and be one the caller could list, otherwise it is the
//! same 404 as an unknown uuid, so a non-admin cannot read admin-only paths through it.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use shoal_core::share_replicas;
use shoal_store::{ExportLocationRow, ShareInstanceRow};
use shoal_types::time::{manila_timestamp, manila_timestamp_opt};

use super::share_replicas::{GA_SINCE, requester};
use crate::ApiState;
use crate::context::RequestContext;
use crate::error::{ApiError, ApiResult};
use crate::routes::Routes;

/// Replica export locations exist from this version (experimental until [`GA_SINCE`]).
const EXPERIMENTAL_SINCE: (u32, u32) = (2, 47);

/// Routes of this resource.
pub fn router() -> Routes<ApiState> {
    Routes::new()
        .get(
            "/v2/share-replicas/{id}/export-locations",
            list_share_replica_export_locations,
        )
        .get(
            "/v2/share-replicas/{id}/export-locations/{export_location_id}",
            show_share_replica_export_location,
        )
}

/// One location of `replica` at the request's version; `detail` adds the timestamps.
fn export_location_view(
    ctx: &RequestContext,
    replica: &ShareInstanceRow,
    el: &ExportLocationRow,
    detail: bool,
) -> Value {
    // `preferred` exists since 2.14, always below this API's first version.
    let mut view = json!({"id": el.id, "path": el.path, "preferred": el.preferred});
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
    view["replica_state"] = json!(replica.replica_state);
    view["availability_zone"] = json!(replica.availability_zone);
    view
}

/// The replica and the locations the caller may see (404 "Share replica '<id>' not
/// found." from the core when the replica is not visible).
async fn visible_locations(
    state: &ApiState,
    ctx: &RequestContext,
    id: &str,
) -> ApiResult<(ShareInstanceRow, Vec<ExportLocationRow>)> {
    let (replica, locations) =
        share_replicas::replica_export_locations(&state.core, requester(ctx), id).await?;
    let locations = locations
        .into_iter()
        .filter(|el| ctx.is_admin || !el.is_admin_only)
        .collect();
    Ok((replica, locations))
}

/// `GET /v2/share-replicas/{id}/export-locations`.
pub async fn list_share_replica_export_locations(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.require_experimental(EXPERIMENTAL_SINCE, GA_SINCE)?;
    ctx.authorize(&state, "share_replica_export_location:index")?;
    let (replica, locations) = visible_locations(&state, &ctx, &id).await?;
    let items: Vec<Value> = locations
        .iter()
        .map(|el| export_location_view(&ctx, &replica, el, false))
        .collect();
    Ok(Json(json!({ "export_locations": items })))
}

/// `GET /v2/share-replicas/{id}/export-locations/{export_location_id}`.
pub async fn show_share_replica_export_location(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path((id, export_location_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    ctx.require_experimental(EXPERIMENTAL_SINCE, GA_SINCE)?;
    ctx.authorize(&state, "share_replica_export_location:show")?;
    let (replica, locations) = visible_locations(&state, &ctx, &id).await?;
    let location = locations
        .iter()
        .find(|el| el.id.to_string().eq_ignore_ascii_case(&export_location_id))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Export location {export_location_id} could not be found."
            ))
        })?;
    Ok(Json(
        json!({ "export_location": export_location_view(&ctx, &replica, location, true) }),
    ))
}
