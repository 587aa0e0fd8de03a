//! Export locations of a share (Manila's `share_export_locations.py` controller and
//! `export_location_get_all_by_share_id` / `export_location_get_by_uuid`).
//!
//! Persisted: one row per path per share instance, written by the share workers from the
//! driver's answer. Derived here: which of them a share shows. Migration destinations never
//! count; from API 2.47 only the active replica's (or a non-replicated instance's) locations
//! do; non-admins never see admin-only locations (a list omits them, a show is refused).

use shoal_store::{ExportLocationRow, NewExportLocation, StoreError};
use uuid::Uuid;

use crate::shares::{REPLICA_STATE_ACTIVE, STATUS_MIGRATING_TO, Share};
use crate::{Core, CoreError, CoreResult};

/// Manila's 403 for an admin-only location asked by a non-admin (webob's default text).
pub const ADMIN_ONLY_DENIED: &str = "Access was denied to this resource.";

/// Which locations a caller gets.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportLocationScope {
    /// Admin callers also get admin-only locations.
    pub include_admin_only: bool,
    /// ≥2.47: only instances whose `replica_state` is null or `active`.
    pub ignore_secondary_replicas: bool,
}

/// Ids of the share's instances whose locations count for `scope`.
fn instance_ids(share: &Share, scope: ExportLocationScope) -> Vec<Uuid> {
    share
        .instances
        .iter()
        .filter(|i| i.status != STATUS_MIGRATING_TO)
        .filter(|i| {
            !scope.ignore_secondary_replicas
                || i.replica_state.is_none()
                || i.replica_state.as_deref() == Some(REPLICA_STATE_ACTIVE)
        })
        .map(|i| i.id)
        .collect()
}

/// `GET /v2/shares/{id}/export_locations`: the locations of the counted instances, in
/// instance order and then in the order the driver reported them.
pub async fn list_export_locations(
    core: &Core,
    share: &Share,
    scope: ExportLocationScope,
) -> CoreResult<Vec<ExportLocationRow>> {
    let mut locations = Vec::new();
    for id in instance_ids(share, scope) {
        locations.extend(
            core.store
                .list_export_locations(id)
                .await?
                .into_iter()
                .filter(|el| scope.include_admin_only || !el.is_admin_only),
        );
    }
    Ok(locations)
}

/// `GET /v2/shares/{id}/export_locations/{el}`: 404 `"Export location '<id>' not found."`
/// when it does not exist or belongs to another share or to a non-counted instance; 403
/// for an admin-only location asked by a non-admin.
pub async fn get_export_location(
    core: &Core,
    share: &Share,
    export_location_id: &str,
    scope: ExportLocationScope,
) -> CoreResult<ExportLocationRow> {
    let not_found =
        || CoreError::not_found(format!("Export location '{export_location_id}' not found."));
    let Ok(uuid) = Uuid::parse_str(export_location_id) else {
        return Err(not_found());
    };
    let location = match core.store.get_export_location(uuid).await {
        Ok(row) => row,
        Err(StoreError::NotFound(_)) => return Err(not_found()),
        Err(other) => return Err(other.into()),
    };
    // Show does not skip migration destinations, only secondary replicas (≥2.47).
    let counted = share.instances.iter().any(|i| {
        i.id == location.share_instance_id
            && (!scope.ignore_secondary_replicas
                || i.replica_state.is_none()
                || i.replica_state.as_deref() == Some(REPLICA_STATE_ACTIVE))
    });
    if !counted {
        return Err(not_found());
    }
    if location.is_admin_only && !scope.include_admin_only {
        return Err(CoreError::forbidden(ADMIN_ONLY_DENIED));
    }
    Ok(location)
}

/// Export locations a driver reported, as the store keeps them.
pub(crate) fn from_driver(locations: Vec<shoal_driver::ExportLocation>) -> Vec<NewExportLocation> {
    locations
        .into_iter()
        .map(|l| NewExportLocation {
            path: l.path,
            is_admin_only: l.is_admin_only,
            preferred: l.preferred,
            metadata: l.metadata,
        })
        .collect()
}
