//! Share replicas (Manila's `share_replicas` API): a replica is a share instance with a
//! `replica_state`. The first instance of a share whose type has `replication_type` becomes
//! its `active` replica when created. This module holds the read side (list and show);
//! creating, promoting and resyncing secondaries arrive with the replication work.
//!
//! Visibility follows Manila: admins see the replicas of every project without
//! `all_tenants`; others only those of their project's shares; anything else is 404.

use shoal_store::{ShareInstanceRow, StoreError};
use uuid::Uuid;

use crate::{Core, CoreError, CoreResult};

/// Who asks.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    /// The caller's project.
    pub project_id: &'a str,
    /// Admins see every project's replicas.
    pub is_admin: bool,
}

/// Replicas visible to the requester, optionally of one share. An unknown or invisible
/// `share_id` gives an empty list, not a 404 (Manila quirk: spec replication.md §17.7).
pub async fn list_replicas(
    core: &Core,
    requester: Requester<'_>,
    share_id: Option<&str>,
) -> CoreResult<Vec<ShareInstanceRow>> {
    let share_id = match share_id {
        None => None,
        Some(text) => match Uuid::parse_str(text) {
            Ok(id) => Some(id),
            Err(_) => return Ok(Vec::new()),
        },
    };
    let project = (!requester.is_admin).then_some(requester.project_id);
    Ok(core.store.list_share_replicas(project, share_id).await?)
}

/// One replica, or 404 `Replica <id> not found.` when it does not exist, is not a replica,
/// or belongs to another project's share (for non-admins).
pub async fn get_replica(
    core: &Core,
    requester: Requester<'_>,
    id: &str,
) -> CoreResult<ShareInstanceRow> {
    let not_found = || CoreError::not_found(format!("Replica {id} not found."));
    let Ok(uuid) = Uuid::parse_str(id) else {
        return Err(not_found());
    };
    let instance = match core.store.get_share_instance(uuid).await {
        Ok(instance) if instance.replica_state.is_some() => instance,
        Ok(_) | Err(StoreError::NotFound(_)) => return Err(not_found()),
        Err(other) => return Err(other.into()),
    };
    if !requester.is_admin {
        let share = match core.store.get_share(instance.share_id).await {
            Ok(share) => share,
            Err(StoreError::NotFound(_)) => return Err(not_found()),
            Err(other) => return Err(other.into()),
        };
        if share.project_id != requester.project_id {
            return Err(not_found());
        }
    }
    Ok(instance)
}
