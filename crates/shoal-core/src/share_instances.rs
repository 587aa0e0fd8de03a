//! Share instances as an admin resource: Manila's `v2/share_instances.py` and
//! `v2/share_instance_export_locations.py` (list with Manila's filters, show, the instances
//! of one share, an instance's export locations, and the admin actions `reset_status` and
//! `force_delete`).
//!
//! Nothing new is persisted here: an instance is the `share_instances` row the share and
//! replica pipelines already keep. A forced delete goes through the same durable pipeline
//! as a share or replica delete: a compare-and-set to `deleting` that enqueues the delete
//! operation of the instance's back end (`delete_share_replica` for an instance with a
//! `replica_state`, so its access mappings and replica data go the replica way, else
//! `delete_share_instance`); an instance no back end holds yet is removed at once with its
//! quota. When the last instance of a share goes, the share goes with it (Manila's
//! `share_instance_delete`).

use shoal_store::{ExportLocationRow, ShareInstanceFilter, ShareInstanceRow, ShareRow, StoreError};
use uuid::Uuid;

use crate::shares::{self, GENERIC_NOT_FOUND, STATUS_DELETING};
use crate::{Core, CoreError, CoreResult, ops};
use serde_json::json;
use shoal_store::ShareInstanceUpdate;

/// The list filters a request asked for, already cut down to what its microversion passes
/// on (the API decides that). Strings are as sent.
#[derive(Debug, Clone, Default)]
pub struct InstanceListFilters {
    /// `export_location_id` (2.35+).
    pub export_location_id: Option<String>,
    /// `export_location_path` (2.35+).
    pub export_location_path: Option<String>,
    /// `host`: the host exactly or any of its pools.
    pub host: Option<String>,
    /// `status`.
    pub status: Option<String>,
    /// `share_server_id`.
    pub share_server_id: Option<String>,
    /// Only instances of soft-deleted shares (`is_soft_deleted`); otherwise those are hidden,
    /// as Manila's `share_instance_get_all` joins on the share's flag either way.
    pub soft_deleted_only: bool,
    /// `encryption_key_ref`: no shoal instance has one, so a non-empty value matches nothing.
    pub encryption_key_ref: Option<String>,
}

/// Manila tests each filter for truthiness, so an empty value is no filter.
fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// `GET /v2/share_instances`: every instance matching `filters`, in creation order. A
/// filter on an id that is not a UUID matches nothing (Manila compares it as a string).
pub async fn list_instances(
    core: &Core,
    filters: &InstanceListFilters,
) -> CoreResult<Vec<ShareInstanceRow>> {
    if non_empty(&filters.encryption_key_ref).is_some() {
        return Ok(Vec::new());
    }
    let parse = |value: Option<&str>| -> Result<Option<Uuid>, ()> {
        match value {
            None => Ok(None),
            Some(text) => Uuid::parse_str(text).map(Some).map_err(|_| ()),
        }
    };
    let (Ok(export_location_id), Ok(share_server_id)) = (
        parse(non_empty(&filters.export_location_id)),
        parse(non_empty(&filters.share_server_id)),
    ) else {
        return Ok(Vec::new());
    };
    let filter = ShareInstanceFilter {
        export_location_id,
        export_location_path: non_empty(&filters.export_location_path).map(str::to_owned),
        host: non_empty(&filters.host).map(str::to_owned),
        status: non_empty(&filters.status).map(str::to_owned),
        share_server_id,
    };
    let instances = core.store.list_all_share_instances(filter).await?;
    let mut soft_deleted: std::collections::HashMap<Uuid, bool> = Default::default();
    let mut out = Vec::with_capacity(instances.len());
    for instance in instances {
        let flag = match soft_deleted.get(&instance.share_id) {
            Some(flag) => *flag,
            None => {
                let flag = match core.store.get_share(instance.share_id).await {
                    Ok(share) => share.is_soft_deleted,
                    // Deleted between the two reads: gone from either answer.
                    Err(StoreError::NotFound(_)) => continue,
                    Err(other) => return Err(other.into()),
                };
                soft_deleted.insert(instance.share_id, flag);
                flag
            }
        };
        if flag == filters.soft_deleted_only {
            out.push(instance);
        }
    }
    Ok(out)
}

/// One instance with its share; `None` when `id` is not a UUID or names no instance
/// (each endpoint words its own 404).
pub async fn find_instance(
    core: &Core,
    id: &str,
) -> CoreResult<Option<(ShareInstanceRow, ShareRow)>> {
    let Ok(uuid) = Uuid::parse_str(id) else {
        return Ok(None);
    };
    let instance = match core.store.get_share_instance(uuid).await {
        Ok(instance) => instance,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(other) => return Err(other.into()),
    };
    match core.store.get_share(instance.share_id).await {
        Ok(share) => Ok(Some((instance, share))),
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(other) => Err(other.into()),
    }
}

/// Export locations of each instance in `instances` (views below 2.9 embed the paths), in
/// the order they were last reported.
pub async fn export_locations_of(
    core: &Core,
    instances: &[ShareInstanceRow],
) -> CoreResult<Vec<Vec<ExportLocationRow>>> {
    let mut out = Vec::with_capacity(instances.len());
    for instance in instances {
        let mut locations = core.store.list_export_locations(instance.id).await?;
        locations.sort_by_key(|el| el.updated_at);
        out.push(locations);
    }
    Ok(out)
}

/// `GET /v2/share_instances/{id}/export_locations`: the instance, its share and every
/// location (admin-only ones included, as Manila); 404 `Share instance '<id>' not found.`.
pub async fn instance_export_locations(
    core: &Core,
    id: &str,
) -> CoreResult<(ShareInstanceRow, ShareRow, Vec<ExportLocationRow>)> {
    let Some((instance, share)) = find_instance(core, id).await? else {
        return Err(CoreError::not_found(format!(
            "Share instance '{id}' not found."
        )));
    };
    let mut locations = core.store.list_export_locations(instance.id).await?;
    // Manila orders by `updated_at`; stable, so one report keeps the driver's order.
    locations.sort_by_key(|el| el.updated_at);
    Ok((instance, share, locations))
}

/// Admin `reset_status` with an already validated status: a plain update, whatever the
/// current status (Manila's `share_instance_update`). 404 generic when the instance went.
pub async fn reset_instance_status(
    core: &Core,
    instance: &ShareInstanceRow,
    status: &str,
) -> CoreResult<()> {
    let update = ShareInstanceUpdate {
        status: Some(status.to_owned()),
        ..Default::default()
    };
    match core
        .store
        .update_share_instance_if(instance.id, &[], update, Vec::new(), core.now())
        .await
    {
        Ok(_) => {
            tracing::info!(share_instance.id = %instance.id, "reset status of share instance {} to {status}", instance.id);
            Ok(())
        }
        Err(StoreError::NotFound(_)) => Err(CoreError::not_found(GENERIC_NOT_FOUND)),
        Err(other) => Err(other.into()),
    }
}

/// The delete operation kind of an instance: replicas are deleted the replica way.
fn delete_kind(instance: &ShareInstanceRow) -> &'static str {
    if instance.replica_state.is_some() {
        ops::DELETE_SHARE_REPLICA
    } else {
        ops::DELETE_SHARE_INSTANCE
    }
}

/// Admin `force_delete` (Manila's `share_api.delete_instance(force=True)`): from any
/// status, the instance goes to `deleting` with its back end's delete operation (which
/// ignores back-end failures because of `force`), or, unplaced, is removed at once with
/// its quota. Deleting the share's last instance removes the share.
///
/// The last instance of a share with snapshots is refused, as deleting the share is:
/// Manila soft-deletes the share under its snapshots and leaves them orphaned, which our
/// schema cannot hold (the share row could never be removed and the delete operation
/// would fail on every retry).
pub async fn force_delete_instance(
    core: &Core,
    instance: &ShareInstanceRow,
    share: &ShareRow,
) -> CoreResult<()> {
    let siblings = core.store.list_share_instances(share.id).await?;
    if siblings.iter().all(|s| s.id == instance.id) {
        let snapshots = shares::dependent_snapshots(core, share.id).await?;
        if snapshots > 0 {
            return Err(CoreError::bad_request(format!(
                "Invalid share instance: Share still has {snapshots} dependent snapshots."
            )));
        }
    }
    let now = core.now();
    let kind = delete_kind(instance);
    // A share whose manage failed never held quota, so its deletion releases none.
    let no_quota = instance.status == crate::share_lifecycle::STATUS_MANAGE_ERROR;
    let payload = json!(ops::DeletePayload {
        force: true,
        no_quota
    });
    let update = ShareInstanceUpdate {
        status: Some(STATUS_DELETING.to_owned()),
        terminated_at: Some(now),
        ..Default::default()
    };
    let op = ops::for_instance_host(kind, instance.id, &instance.host, payload.clone(), now);
    let placed = op.is_some();
    let updated = match core
        .store
        .update_share_instance_if(instance.id, &[], update, op.into_iter().collect(), now)
        .await
    {
        Ok(row) => row,
        // Deleted meanwhile: what was asked is done.
        Err(StoreError::NotFound(_)) => return Ok(()),
        Err(other) => return Err(other.into()),
    };
    if placed {
        core.wake_workers();
    } else if let Some(op) = ops::for_instance_host(kind, updated.id, &updated.host, payload, now) {
        // The scheduler placed it between our read and our update: its back end deletes it.
        core.store.insert_operation(op).await?;
        core.wake_workers();
    } else {
        let siblings = core.store.list_share_instances(share.id).await?;
        let is_last = siblings.iter().all(|s| s.id == updated.id);
        let release = shares::instance_release(share, &updated, is_last);
        core.store
            .delete_share_instance_and_maybe_share(updated.id, release, now)
            .await?;
    }
    tracing::info!(
        share.id = %share.id,
        share_instance.id = %instance.id,
        "force deleting share instance {} of share {}",
        instance.id,
        share.id
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(replica_state: Option<&str>) -> ShareInstanceRow {
        ShareInstanceRow {
            id: Uuid::new_v4(),
            share_id: Uuid::new_v4(),
            status: "available".to_owned(),
            replica_state: replica_state.map(str::to_owned),
            host: "h@b#p".to_owned(),
            availability_zone: None,
            share_type_id: None,
            share_network_id: None,
            share_server_id: None,
            cast_rules_to_readonly: false,
            access_rules_status: "active".to_owned(),
            progress: None,
            created_at: chrono::Utc::now(),
            updated_at: None,
            scheduled_at: None,
            launched_at: None,
            terminated_at: None,
            replica_epoch: 0,
        }
    }

    #[test]
    fn replicas_are_deleted_the_replica_way() {
        assert_eq!(delete_kind(&instance(None)), ops::DELETE_SHARE_INSTANCE);
        assert_eq!(
            delete_kind(&instance(Some("active"))),
            ops::DELETE_SHARE_REPLICA
        );
        assert_eq!(
            delete_kind(&instance(Some("out_of_sync"))),
            ops::DELETE_SHARE_REPLICA
        );
    }

    #[test]
    fn empty_filters_are_no_filters() {
        assert_eq!(non_empty(&Some(String::new())), None);
        assert_eq!(non_empty(&None), None);
        assert_eq!(non_empty(&Some("x".to_owned())), Some("x"));
    }
}
