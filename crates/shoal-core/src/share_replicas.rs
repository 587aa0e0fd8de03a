//! Share replicas (Manila's `share_replicas` API): a replica is a share instance with a
//! `replica_state`. The first instance of a share whose type has `replication_type` becomes
//! its `active` replica when created. This module holds the read side (list and show);
//! creating, promoting and resyncing secondaries arrive with the replication work.
//!
//! Visibility follows Manila: admins see the replicas of every project without
//! `all_tenants`; others only those of their project's shares; anything else is 404.

use std::collections::BTreeMap;

use serde_json::Value;
use shoal_store::{ExportLocationRow, ReplicationRecord, ShareInstanceRow, StoreError};
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

// ---- CONTRACT STUBS (write side): signatures fixed, bodies filled in by the core work ----

/// A replica with its metadata (2.95 views).
#[derive(Debug, Clone)]
pub struct ReplicaWithMetadata {
    /// The instance row. In the create answer `replica_state` is `None` (Manila quirk
    /// §17.2) although `out_of_sync` is stored.
    pub replica: ShareInstanceRow,
    /// Replica metadata (`{}` when none).
    pub metadata: BTreeMap<String, String>,
}

/// `POST /v2/share-replicas`, after the API checked policy, the body shape (422) and a
/// non-empty `share_id` (400), and dropped keys the microversion ignores.
#[derive(Debug, Clone, Default)]
pub struct CreateReplica {
    /// Parent share id (non-empty).
    pub share_id: String,
    /// Requested AZ name or id.
    pub availability_zone: Option<String>,
    /// Raw `share_network_id` as sent (any JSON); `None` when absent.
    pub share_network_id: Option<Value>,
    /// Whether the microversion accepts `share_network_id` (≥ 2.72); below, a truthy value
    /// is 400 (check #7, after the share lookup).
    pub share_network_supported: bool,
    /// Raw `scheduler_hints` (≥ 2.67; `None` below or absent).
    pub scheduler_hints: Option<Value>,
    /// Raw `metadata` (≥ 2.95; `None` below or absent).
    pub metadata: Option<Value>,
}

/// Creates a secondary replica (spec §5.1 checks 4–23 in order, quota, then the rows and a
/// scheduling operation in one transaction).
pub async fn create_replica(
    core: &Core,
    requester: Requester<'_>,
    req: CreateReplica,
) -> CoreResult<ReplicaWithMetadata> {
    let _ = (core, requester, req);
    unimplemented!("core contract stub")
}

/// `DELETE /v2/share-replicas/{id}` (`force` = the `force_delete` action). 404 "No replica
/// exists with ID <id>." (delete) or the generic text (force_delete); 400 for the last
/// active replica.
pub async fn delete_replica(
    core: &Core,
    requester: Requester<'_>,
    id: &str,
    force: bool,
) -> CoreResult<()> {
    let _ = (core, requester, id, force);
    unimplemented!("core contract stub")
}

/// Result of `promote` and `resync`.
#[derive(Debug, Clone)]
pub enum ActionOutcome {
    /// The replica is active: nothing to do (200, empty body).
    NoOp,
    /// Work was queued (202); for promote, the replica re-read after the update.
    Accepted(Option<Box<ReplicaWithMetadata>>),
}

/// `promote`. `quiesce_wait_time` is the raw value (≥ 2.75; `None` below or absent).
pub async fn promote_replica(
    core: &Core,
    requester: Requester<'_>,
    id: &str,
    quiesce_wait_time: Option<Value>,
) -> CoreResult<ActionOutcome> {
    let _ = (core, requester, id, quiesce_wait_time);
    unimplemented!("core contract stub")
}

/// `resync` (admin).
pub async fn resync_replica(
    core: &Core,
    requester: Requester<'_>,
    id: &str,
) -> CoreResult<ActionOutcome> {
    let _ = (core, requester, id);
    unimplemented!("core contract stub")
}

/// `reset_status` with an already validated status. 404 generic when not found.
pub async fn reset_replica_status(
    core: &Core,
    requester: Requester<'_>,
    id: &str,
    status: &str,
) -> CoreResult<()> {
    let _ = (core, requester, id, status);
    unimplemented!("core contract stub")
}

/// `reset_replica_state` with an already validated state. 404 generic when not found; 400
/// "Cannot reset replica_state of an active replica".
pub async fn reset_replica_state(
    core: &Core,
    requester: Requester<'_>,
    id: &str,
    replica_state: &str,
) -> CoreResult<()> {
    let _ = (core, requester, id, replica_state);
    unimplemented!("core contract stub")
}

/// Replica with metadata for a detail view (2.95).
pub async fn replica_metadata_of(
    core: &Core,
    replicas: &[ShareInstanceRow],
) -> CoreResult<BTreeMap<uuid::Uuid, BTreeMap<String, String>>> {
    let _ = (core, replicas);
    unimplemented!("core contract stub")
}

/// The replica addressed by a metadata call: 404 "Share_replica not found." otherwise.
pub async fn get_replica_for_metadata(
    core: &Core,
    requester: Requester<'_>,
    id: &str,
) -> CoreResult<ReplicaWithMetadata> {
    let _ = (core, requester, id);
    unimplemented!("core contract stub")
}

/// Validates and sets replica metadata (POST merge / PUT replace). Returns the keys sent.
pub async fn set_replica_metadata(
    core: &Core,
    replica: &ShareInstanceRow,
    metadata: &BTreeMap<String, String>,
    replace_all: bool,
) -> CoreResult<BTreeMap<String, String>> {
    let _ = (core, replica, metadata, replace_all);
    unimplemented!("core contract stub")
}

/// Deletes one replica metadata key; 404 "MetadataItemNotFound: Metadata item is not found."
pub async fn delete_replica_metadata_key(
    core: &Core,
    replica: &ShareInstanceRow,
    key: &str,
) -> CoreResult<()> {
    let _ = (core, replica, key);
    unimplemented!("core contract stub")
}

/// Export locations of a replica (404 "Share replica '<id>' not found.").
pub async fn replica_export_locations(
    core: &Core,
    requester: Requester<'_>,
    id: &str,
) -> CoreResult<(ShareInstanceRow, Vec<ExportLocationRow>)> {
    let _ = (core, requester, id);
    unimplemented!("core contract stub")
}

/// Sync records of a replica, newest first (shoal extension, admin only).
pub async fn replication_history(
    core: &Core,
    requester: Requester<'_>,
    id: &str,
    limit: i64,
) -> CoreResult<Vec<ReplicationRecord>> {
    let _ = (core, requester, id, limit);
    unimplemented!("core contract stub")
}
