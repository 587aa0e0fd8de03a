//! The durable operations of the share pipeline: their kinds, payloads and how they are
//! enqueued. The API writes an operation in the same transaction as the state change that
//! needs it (a share in `creating`, an instance in `deleting`, ...); the scheduler and share
//! roles claim and run them ([`crate::workers`]). Every handler is idempotent: it first looks
//! at the current state and does nothing when the work is already done, because a crash
//! between a driver call and the state update makes an operation run twice.

use serde::{Deserialize, Serialize};
use shoal_store::NewOperation;
use uuid::Uuid;

/// Place an unplaced instance on a pool (scheduler; `host` is `None`).
pub const SCHEDULE_SHARE_INSTANCE: &str = "schedule_share_instance";
/// Create the instance on its back end (share node of `host@backend`).
pub const CREATE_SHARE_INSTANCE: &str = "create_share_instance";
/// Delete the instance from its back end, then its rows (and the share's after the last one).
pub const DELETE_SHARE_INSTANCE: &str = "delete_share_instance";
/// Grow the instance to `new_size`, then commit the quota reservations.
pub const EXTEND_SHARE_INSTANCE: &str = "extend_share_instance";
/// Shrink the instance to `new_size` unless that would lose data.
pub const SHRINK_SHARE_INSTANCE: &str = "shrink_share_instance";
/// Bring the instance's access rules to their wanted states (apply queued, remove denied).
pub const UPDATE_ACCESS: &str = "update_access";

/// Check that the pool named in a manage request passes the scheduler's filters for the
/// share type (Manila's `SchedulerManager.manage_share`, `host_passes_filters`), then
/// enqueue [`MANAGE_SHARE`]; scheduler, `host` is `None`, payload [`ManagePayload`].
pub const SCHEDULE_MANAGE_SHARE: &str = "schedule_manage_share";
/// Adopt an existing back-end path as the share instance (payload [`ManagePayload`]); runs
/// on the share service named in the request, once the scheduler let it through.
pub const MANAGE_SHARE: &str = "manage_share";
/// Forget the share instance on its back end, leaving the data, then remove its rows.
pub const UNMANAGE_SHARE: &str = "unmanage_share";

/// Create a scheduled secondary replica on its back end (initial sync).
pub const CREATE_SHARE_REPLICA: &str = "create_share_replica";
/// Delete a secondary replica (payload [`DeletePayload`]).
pub const DELETE_SHARE_REPLICA: &str = "delete_share_replica";
/// Promote a replica (payload [`PromotePayload`]); runs on the promoted replica's back end.
pub const PROMOTE_SHARE_REPLICA: &str = "promote_share_replica";
/// Sync a non-active replica and refresh its `replica_state` (payload [`UpdateReplicaPayload`]);
/// enqueued by `resync`, by the periodic task and after a promotion for the old active.
pub const UPDATE_SHARE_REPLICA: &str = "update_share_replica";

/// Create a snapshot instance on the share's (active) instance; target: snapshot instance.
/// Once it is available, the secondaries' instances get [`CREATE_REPLICA_SNAPSHOT`].
pub const CREATE_SNAPSHOT: &str = "create_snapshot";
/// Create a secondary replica's snapshot instance from the active's (target: snapshot
/// instance); also enqueued for a new replica's instances of existing snapshots.
pub const CREATE_REPLICA_SNAPSHOT: &str = "create_replica_snapshot";
/// Refresh a secondary's `creating` snapshot instance (`update_replica_snapshot`); enqueued
/// by the periodic replica update.
pub const UPDATE_REPLICA_SNAPSHOT: &str = "update_replica_snapshot";
/// Delete a snapshot instance, then its rows (and the snapshot's after the last one, with
/// its quota); payload [`DeletePayload`].
pub const DELETE_SNAPSHOT: &str = "delete_snapshot";
/// Revert a share instance to a snapshot (target: share instance; payload
/// [`RevertPayload`]).
pub const REVERT_TO_SNAPSHOT: &str = "revert_to_snapshot";
/// Adopt an existing snapshot (target: snapshot instance in `manage_starting`).
pub const MANAGE_SNAPSHOT: &str = "manage_snapshot";
/// Forget a snapshot instance, keeping its data (target: snapshot instance).
pub const UNMANAGE_SNAPSHOT: &str = "unmanage_snapshot";
/// Bring a snapshot instance's access rules to their wanted states.
pub const SNAPSHOT_UPDATE_ACCESS: &str = "snapshot_update_access";

/// Payload of [`REVERT_TO_SNAPSHOT`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevertPayload {
    /// The snapshot instance (on the share instance reverted) to revert to.
    pub snapshot_instance_id: Uuid,
    /// Quota reservations of a size change, committed on success, rolled back otherwise.
    #[serde(default)]
    pub reservations: Vec<Uuid>,
}

/// Payload of [`CREATE_SHARE_INSTANCE`] for a share created from a snapshot.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateInstancePayload {
    /// The snapshot instance to copy (`create_share_from_snapshot`), if any.
    #[serde(default)]
    pub snapshot_instance_id: Option<Uuid>,
}

/// Payload of [`PROMOTE_SHARE_REPLICA`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PromotePayload {
    /// Manila's `quiesce_wait_time` in seconds (2.75+).
    #[serde(default)]
    pub quiesce_wait_time: Option<u64>,
}

/// Payload of [`UPDATE_SHARE_REPLICA`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateReplicaPayload {
    /// `periodic`, `resync`, `promote` or `changes` (recorded in `replication_history`).
    #[serde(default)]
    pub trigger: String,
}

/// Trigger of an admin's `resync`: its sync reads the whole source.
pub const TRIGGER_RESYNC: &str = "resync";

/// Payload of [`DELETE_SHARE_INSTANCE`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeletePayload {
    /// Force delete: back-end errors do not stop the rows from being removed.
    #[serde(default)]
    pub force: bool,
    /// The share's quota was never charged (its manage failed), so none is released.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_quota: bool,
}

/// Payload of [`MANAGE_SHARE`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ManagePayload {
    /// The path the administrator named (`export_path`).
    pub export_path: String,
    /// Driver-specific options of the request (`driver_options`), values as text.
    #[serde(default)]
    pub driver_options: std::collections::BTreeMap<String, String>,
}

/// Payload of [`EXTEND_SHARE_INSTANCE`] and [`SHRINK_SHARE_INSTANCE`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResizePayload {
    /// Target size in GiB.
    pub new_size: i64,
    /// Quota reservations to commit on success or roll back on failure.
    #[serde(default)]
    pub reservations: Vec<Uuid>,
    /// Replicas the `replica_gigabytes` reservation was made for, so the commit can correct
    /// it for replicas deleted (or added) in the meantime. `None` in operations queued
    /// before it was recorded: no correction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i64>,
}

/// `host@backend` of a `host@backend#pool`, the share service that must do the work; `None`
/// for an instance that was never placed.
pub fn service_host(instance_host: &str) -> Option<String> {
    let (service, _pool) = instance_host.split_once('#')?;
    (!service.is_empty()).then(|| service.to_owned())
}

/// Builds an operation on share instance `instance_id`.
pub fn operation(
    kind: &str,
    instance_id: Uuid,
    host: Option<String>,
    payload: serde_json::Value,
    now: chrono::DateTime<chrono::Utc>,
) -> NewOperation {
    NewOperation {
        kind: kind.to_owned(),
        target_id: instance_id.to_string(),
        host,
        payload,
        now,
    }
}

/// The scheduling operation of a new instance.
pub fn schedule(instance_id: Uuid, now: chrono::DateTime<chrono::Utc>) -> NewOperation {
    operation(
        SCHEDULE_SHARE_INSTANCE,
        instance_id,
        None,
        serde_json::json!({}),
        now,
    )
}

/// An operation for the share node that owns the instance's pool. `None` when the instance
/// has no host yet (the caller then acts on the rows directly, as Manila's API does).
pub fn for_instance_host(
    kind: &str,
    instance_id: Uuid,
    instance_host: &str,
    payload: serde_json::Value,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<NewOperation> {
    service_host(instance_host).map(|host| operation(kind, instance_id, Some(host), payload, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_host_of_pools() {
        assert_eq!(
            service_host("n1@local1#pool1").as_deref(),
            Some("n1@local1")
        );
        assert_eq!(service_host(""), None);
        assert_eq!(service_host("#p"), None);
    }
}
