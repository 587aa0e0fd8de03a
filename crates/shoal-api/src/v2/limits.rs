//! `GET /v2/limits` (Manila's `api/v2/limits.py` and `views/limits.py`): the caller's
//! project limits and usage under Nova-style names. No policy applies and the resource
//! exists at every version. `rate` is always empty: Manila's rate-limiting middleware is
//! not in its default pipeline, and shoal has none.

use axum::Json;
use axum::extract::State;
use serde_json::{Map, Value, json};
use shoal_core::quota_sets as core_quotas;

use crate::ApiState;
use crate::context::RequestContext;
use crate::error::ApiResult;
use crate::routes::Routes;

/// Routes of this resource.
pub fn router() -> Routes<ApiState> {
    Routes::new().get("/v2/limits", show_limits)
}

/// `(resource, limit name, usage name, since)` of every absolute limit.
const ABSOLUTE: &[(&str, &str, &str, (u32, u32))] = &[
    (
        "gigabytes",
        "maxTotalShareGigabytes",
        "totalShareGigabytesUsed",
        (2, 0),
    ),
    (
        "snapshot_gigabytes",
        "maxTotalSnapshotGigabytes",
        "totalSnapshotGigabytesUsed",
        (2, 0),
    ),
    ("shares", "maxTotalShares", "totalSharesUsed", (2, 0)),
    (
        "snapshots",
        "maxTotalShareSnapshots",
        "totalShareSnapshotsUsed",
        (2, 0),
    ),
    (
        "share_networks",
        "maxTotalShareNetworks",
        "totalShareNetworksUsed",
        (2, 0),
    ),
    (
        "share_replicas",
        "maxTotalShareReplicas",
        "totalShareReplicasUsed",
        (2, 53),
    ),
    (
        "replica_gigabytes",
        "maxTotalReplicaGigabytes",
        "totalReplicaGigabytesUsed",
        (2, 53),
    ),
    (
        "share_groups",
        "maxTotalShareGroups",
        "totalShareGroupsUsed",
        (2, 58),
    ),
    (
        "share_group_snapshots",
        "maxTotalShareGroupSnapshots",
        "totalShareGroupSnapshotsUsed",
        (2, 58),
    ),
    (
        "backups",
        "maxTotalShareBackups",
        "totalShareBackupsUsed",
        (2, 80),
    ),
    (
        "backup_gigabytes",
        "maxTotalBackupGigabytes",
        "totalBackupGigabytesUsed",
        (2, 80),
    ),
];

/// `GET /v2/limits` → `{"limits": {"rate": [], "absolute": {...}}}`.
pub async fn show_limits(
    State(state): State<ApiState>,
    ctx: RequestContext,
) -> ApiResult<Json<Value>> {
    let quotas = core_quotas::project_quotas(&state.core, ctx.project_id()).await?;
    let mut absolute = Map::new();
    for (resource, limit_name, used_name, (major, minor)) in ABSOLUTE {
        if !ctx.at_least(*major, *minor) {
            continue;
        }
        if let Some(detail) = quotas.get(*resource) {
            absolute.insert((*limit_name).to_owned(), json!(detail.limit));
            absolute.insert((*used_name).to_owned(), json!(detail.in_use));
        }
    }
    Ok(Json(json!({"limits": {"rate": [], "absolute": absolute}})))
}
