//! Share replicas (Manila's `share_replicas` API, `share/api.py::*_share_replica`): a replica
//! is a share instance with a `replica_state`. The first instance of a share whose type has
//! `replication_type` becomes its `active` replica when created; secondaries are added here.
//!
//! This module owns the API-side rules of every replica endpoint: the checks in Manila's
//! order with Manila's texts (spec `replication.md` §5), and the synchronous state changes.
//! Persisted through the store, always in one call so that a refused request writes
//! nothing and an accepted one always has its work queued:
//!
//! * create: the new instance (`creating`, stored `replica_state` `out_of_sync`, no host),
//!   its metadata, the quota charge (`share_replicas`, `replica_gigabytes` of the share's
//!   project) and a scheduling operation;
//! * delete: `deleting` plus a delete operation for the replica's back end, or, for a
//!   replica never placed, removal of its rows with the quota released;
//! * promote: `available` → `replication_change` (compare-and-set) plus the promote
//!   operation; resync: only an update operation;
//! * admin resets and replica metadata: plain updates.
//!
//! Derived, never stored: the `replica_state: null` of the create answer (Manila quirk
//! §17.2), and whether a caller sees a replica. Visibility follows Manila's list and show:
//! admins see the replicas of every project without `all_tenants`; others only those of
//! their project's shares; anything else is a 404 (each endpoint with its own text).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use shoal_store::{
    ExportLocationRow, NewShareInstance, QuotaRequest, ReplicationRecord, ShareInstanceRow,
    ShareInstanceUpdate, ShareRow, StoreError,
};
use uuid::Uuid;

use crate::quotas::{self, Purpose};
use crate::shares::{
    self, GENERIC_NOT_FOUND, MALFORMED_BODY, REPLICA_STATE_ACTIVE, STATUS_AVAILABLE,
    STATUS_CREATING, STATUS_DELETING, STATUS_REPLICATION_CHANGE,
};
use crate::{Core, CoreError, CoreResult, ops, share_types};

/// `replica_state` of a secondary that has not caught up (and of a new one).
pub const REPLICA_STATE_OUT_OF_SYNC: &str = "out_of_sync";
/// `replica_state` of a replica whose last update failed.
pub const REPLICA_STATE_ERROR: &str = "error";
/// The replication type whose secondaries get every rule as read-only.
pub const REPLICATION_TYPE_READABLE: &str = "readable";

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
    match find_replica(core, requester, id).await? {
        Some((replica, _share)) => Ok(replica),
        None => Err(CoreError::not_found(format!("Replica {id} not found."))),
    }
}

/// The replica `id` with its share, when `id` names an instance with a `replica_state` that
/// the requester may see; `None` otherwise (each endpoint words its own 404).
async fn find_replica(
    core: &Core,
    requester: Requester<'_>,
    id: &str,
) -> CoreResult<Option<(ShareInstanceRow, ShareRow)>> {
    let Ok(uuid) = Uuid::parse_str(id) else {
        return Ok(None);
    };
    let instance = match core.store.get_share_instance(uuid).await {
        Ok(instance) if instance.replica_state.is_some() => instance,
        Ok(_) | Err(StoreError::NotFound(_)) => return Ok(None),
        Err(other) => return Err(other.into()),
    };
    let share = match core.store.get_share(instance.share_id).await {
        Ok(share) => share,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(other) => return Err(other.into()),
    };
    if !requester.is_admin && share.project_id != requester.project_id {
        return Ok(None);
    }
    Ok(Some((instance, share)))
}

/// `No replica exists with ID <id>.` (delete, promote, resync).
fn no_replica_exists(id: &str) -> CoreError {
    CoreError::not_found(format!("No replica exists with ID {id}."))
}

/// Manila's `ReplicationException` as the client sees it.
fn replication_error(reason: impl std::fmt::Display) -> CoreError {
    CoreError::bad_request(format!("Unable to perform a replication action: {reason}"))
}

/// Python's truthiness of a JSON-decoded value (`if value:`).
fn py_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

// ---------------------------------------------------------------------------------------
// Create
// ---------------------------------------------------------------------------------------

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

/// Validates `scheduler_hints` (Manila accepts only `{"only_host": ...}`) and returns the
/// `only_host` pool or back end to pass to the scheduler. A falsy value means no hints; a
/// null or empty `only_host` means no hint, as Manila's `OnlyHostFilter` reads it.
fn parse_scheduler_hints(hints: Option<&Value>) -> CoreResult<Option<String>> {
    let Some(hints) = hints.filter(|h| py_truthy(h)) else {
        return Ok(None);
    };
    let only_host = match hints {
        Value::Object(map) if map.len() == 1 => map.get("only_host"),
        // Manila fails on a non-dict with a 500; refusing it as a bad hint is kinder.
        _ => None,
    };
    let Some(only_host) = only_host else {
        return Err(shares::invalid_input(
            "Arg 'scheduler_hints' supports only 'only_host' key",
        ));
    };
    Ok(match only_host {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        other => Some(share_types::py_str(other)),
    })
}

/// Replica metadata as sent at create (≥2.95): absent or falsy means none; an object is
/// checked with share metadata's rules; anything else is a malformed body.
fn parse_create_metadata(metadata: Option<&Value>) -> CoreResult<BTreeMap<String, String>> {
    match metadata {
        None => Ok(BTreeMap::new()),
        Some(value) if !py_truthy(value) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => shares::validate_metadata(map),
        Some(_) => Err(CoreError::bad_request(MALFORMED_BODY)),
    }
}

/// The first replica quota over its limit, in Manila's order (`share_replicas`, then
/// `replica_gigabytes`): the store refuses on whichever it meets first, so this pre-check
/// picks Manila's message, and runs at Manila's place in the order of checks (before the
/// zone lookup).
async fn check_replica_quota(core: &Core, req: &QuotaRequest) -> CoreResult<()> {
    let usages = core.store.get_quota_usages(&req.project_id).await?;
    for resource in quotas::REPLICA_RESOURCES {
        let delta = req.deltas.get(resource).copied().unwrap_or(0);
        let limit = req.limits.get(resource).copied().unwrap_or(-1);
        if delta <= 0 {
            continue;
        }
        let (in_use, reserved) = usages
            .get(resource)
            .map_or((0, 0), |u| (u.in_use, u.reserved));
        if crate::quotas::exceeds(in_use, reserved, delta, limit) {
            let over = StoreError::QuotaExceeded {
                resource: resource.to_owned(),
                requested: delta,
                in_use,
                reserved,
                limit,
            };
            return Err(quotas::quota_error(over, Purpose::CreateReplica));
        }
    }
    Ok(())
}

/// Creates a secondary replica (spec §5.1 checks 4–23 in order, quota, then the rows and a
/// scheduling operation in one transaction).
pub async fn create_replica(
    core: &Core,
    requester: Requester<'_>,
    req: CreateReplica,
) -> CoreResult<ReplicaWithMetadata> {
    let share_id = req.share_id.as_str();
    let no_share = || CoreError::not_found(format!("No share exists with ID {share_id}."));
    // 4, 4′: Manila 23.0.1 looks the share up "for modification": another project's
    // private share does not exist for the caller, its public one is a policy refusal.
    let share = shares::find_share(core, share_id)
        .await?
        .ok_or_else(no_share)?;
    if !requester.is_admin && share.row.project_id != requester.project_id {
        if share.row.is_public {
            return Err(CoreError::forbidden(
                "Policy doesn't allow share:get to be performed.",
            ));
        }
        return Err(no_share());
    }
    // 5: a share in the recycle bin gets no replica (6: shoal has no encrypted shares).
    if share.row.is_soft_deleted {
        return Err(CoreError::forbidden(format!(
            "Replica cannot be created for share '{share_id}' since it has been soft deleted."
        )));
    }

    // 7, 8: shoal has no share networks, so any network asked for is unknown; without
    // one, the parent's would be used, and a share never has one.
    if let Some(network) = req.share_network_id.as_ref().filter(|n| py_truthy(n)) {
        if !req.share_network_supported {
            return Err(CoreError::bad_request(
                "'share_network_id' option is not supported by this microversion. Use 2.72 or greater microversion to be able to use 'share_network_id'.",
            ));
        }
        return Err(CoreError::bad_request(format!(
            "No share network exists with ID {}.",
            share_types::py_str(network)
        )));
    }

    // share_api.create_share_replica
    let metadata = parse_create_metadata(req.metadata.as_ref())?;
    if share
        .row
        .replication_type
        .as_deref()
        .is_none_or(str::is_empty)
    {
        return Err(CoreError::bad_request(format!(
            "Replication not supported for share {}.",
            share.row.id
        )));
    }
    if share.row.share_group_id.is_some() {
        return Err(CoreError::bad_request(
            "Replication not supported for shares in a group.",
        ));
    }
    let only_host = parse_scheduler_hints(req.scheduler_hints.as_ref())?;
    if share.is_busy() {
        return Err(CoreError::bad_request(format!(
            "Share is busy with an active task: Share {} is busy as part of an active task: {}.",
            share.row.id,
            share.row.task_state.as_deref().unwrap_or_default()
        )));
    }
    let Some(active) = share.instances.iter().find(|i| {
        i.replica_state.as_deref() == Some(REPLICA_STATE_ACTIVE) && i.status == STATUS_AVAILABLE
    }) else {
        return Err(replication_error(format!(
            "Share {} does not have any active replica in available state.",
            share.row.id
        )));
    };

    // The type of the instance the share shows (Manila's `share.instance`).
    let share_type = &share.share_type;
    let requested_az = req.availability_zone.as_deref().filter(|az| !az.is_empty());
    if let (Some(az), Some(share_type)) = (requested_az, share_type.as_ref()) {
        let type_azs = share_type
            .extra_specs
            .get(share_types::AVAILABILITY_ZONES)
            .map(String::as_str)
            .unwrap_or_default();
        // Manila splits without trimming, and compares the zone as sent (name or id).
        if !type_azs.is_empty() && !type_azs.split(',').any(|t| t == az) {
            return Err(CoreError::bad_request(format!(
                "Share replica cannot be created since the share type {}(ID: {}) is not supported within the availability zone chosen {az}.",
                share_type.name, share_type.id
            )));
        }
    }
    if let Some(share_type) = share_type.as_ref()
        && share_type
            .extra_specs
            .get(share_types::DEFAULT_QOS_TYPE)
            .is_some_and(|v| !v.is_empty())
    {
        // shoal has no QoS types, so a named one never exists.
        return Err(shares::invalid_input(format!(
            "Share type {} extra-specs 'default_qos_type' specified qos_type does not exist",
            share_type.name
        )));
    }

    let size = share.row.size_gb;
    let quota = quotas::scoped_request(
        core,
        share.owner(),
        &[("share_replicas", 1), ("replica_gigabytes", size)],
    )
    .await?;
    check_replica_quota(core, &quota).await?;

    // 23: the zone is resolved after the quota check, as Manila does.
    let availability_zone = match requested_az {
        None => None,
        Some(az) => match core.store.get_availability_zone(az).await {
            Ok(row) => Some(row.name),
            Err(StoreError::NotFound(_)) => {
                return Err(CoreError::bad_request(format!(
                    "Availability zone {az} could not be found."
                )));
            }
            Err(other) => return Err(other.into()),
        },
    };

    let now = core.now();
    let replica_id = Uuid::new_v4();
    // The hint only matters for admins (`OnlyHostFilter` ignores it for others).
    let payload = match only_host.filter(|_| requester.is_admin) {
        Some(host) => json!({ "only_host": host }),
        None => json!({}),
    };
    let schedule = ops::operation(ops::SCHEDULE_SHARE_INSTANCE, replica_id, None, payload, now);
    let replication_type = share.row.replication_type.as_deref().unwrap_or_default();
    let instance = NewShareInstance {
        id: replica_id,
        status: STATUS_CREATING.to_owned(),
        // Manila stores `out_of_sync` right after building the answer; stored at once here.
        replica_state: Some(REPLICA_STATE_OUT_OF_SYNC.to_owned()),
        host: String::new(),
        availability_zone,
        share_type_id: active.share_type_id.or(share.row.share_type_id),
        share_network_id: None,
        share_server_id: None,
        cast_rules_to_readonly: replication_type == REPLICATION_TYPE_READABLE,
        access_rules_status: "active".to_owned(),
        progress: None,
        metadata: metadata.clone(),
    };
    let mut replica = match core
        .store
        .create_share_instance(share.row.id, instance, quota, vec![schedule], now)
        .await
    {
        Ok(row) => row,
        Err(StoreError::NotFound(_)) => return Err(no_share()),
        Err(err) => return Err(quotas::quota_error(err, Purpose::CreateReplica)),
    };
    core.wake_workers();
    tracing::info!(
        share.id = %share.row.id,
        share_instance.id = %replica.id,
        "created replica {} of share {}, waiting for scheduling",
        replica.id,
        share.row.id
    );
    // Manila quirk §17.2: the answer shows the state before `out_of_sync` was stored.
    replica.replica_state = None;
    Ok(ReplicaWithMetadata { replica, metadata })
}

// ---------------------------------------------------------------------------------------
// Delete
// ---------------------------------------------------------------------------------------

/// `DELETE /v2/share-replicas/{id}` (`force` = the `force_delete` action). 404 `No replica
/// exists with ID <id>.` (delete) or the generic text (`force_delete`); 400 for the last
/// active replica.
pub async fn delete_replica(
    core: &Core,
    requester: Requester<'_>,
    id: &str,
    force: bool,
) -> CoreResult<()> {
    let Some((replica, share)) = find_replica(core, requester, id).await? else {
        return Err(if force {
            CoreError::not_found(GENERIC_NOT_FOUND)
        } else {
            no_replica_exists(id)
        });
    };
    let instances = core.store.list_share_instances(share.id).await?;
    let is_active = |i: &ShareInstanceRow| i.replica_state.as_deref() == Some(REPLICA_STATE_ACTIVE);
    // Even forced: a share never loses its last active replica this way.
    if is_active(&replica) && instances.iter().filter(|i| is_active(i)).count() == 1 {
        return Err(replication_error("Cannot delete last active replica."));
    }

    let now = core.now();
    let payload = json!(ops::DeletePayload {
        force,
        ..Default::default()
    });
    let update = ShareInstanceUpdate {
        status: Some(STATUS_DELETING.to_owned()),
        terminated_at: Some(now),
        ..Default::default()
    };
    let op = ops::for_instance_host(
        ops::DELETE_SHARE_REPLICA,
        replica.id,
        &replica.host,
        payload.clone(),
        now,
    );
    let placed = op.is_some();
    // No status precondition (Manila deletes from any status). For an unplaced replica,
    // `deleting` also stops the scheduler from placing it while its rows go.
    let updated = match core
        .store
        .update_share_instance_if(replica.id, &[], update, op.into_iter().collect(), now)
        .await
    {
        Ok(row) => row,
        Err(StoreError::NotFound(_)) => return Ok(()), // deleted concurrently
        Err(other) => return Err(other.into()),
    };
    if placed {
        core.wake_workers();
    } else if let Some(op) = ops::for_instance_host(
        ops::DELETE_SHARE_REPLICA,
        updated.id,
        &updated.host,
        payload,
        now,
    ) {
        // The scheduler placed it between our read and our update: its back end deletes it.
        core.store.insert_operation(op).await?;
        core.wake_workers();
    } else {
        let is_last = instances.len() == 1;
        let release = shares::instance_release(&share, &updated, is_last);
        core.store
            .delete_share_instance_and_maybe_share(updated.id, release, now)
            .await?;
    }
    tracing::info!(
        share.id = %share.id,
        share_instance.id = %replica.id,
        force,
        "deleting replica {} of share {} (force: {force})",
        replica.id,
        share.id
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Promote, resync
// ---------------------------------------------------------------------------------------

/// Result of `promote` and `resync`.
#[derive(Debug, Clone)]
pub enum ActionOutcome {
    /// The replica is active: nothing to do (200, empty body).
    NoOp,
    /// Work was queued (202); for promote, the replica re-read after the update.
    Accepted(Option<Box<ReplicaWithMetadata>>),
}

/// Manila's `quiesce_wait_time` rule: falsy values (`0`, `null`, `""`, `false`) mean
/// absent; otherwise an integer or a string of one (oslo `is_int_like`: `str(int(v)) ==
/// str(v)`, so no sign, padding or fraction) greater than 0.
fn parse_quiesce_wait_time(value: Option<&Value>) -> CoreResult<Option<u64>> {
    let Some(value) = value.filter(|v| py_truthy(v)) else {
        return Ok(None);
    };
    let parsed = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse::<u64>().ok().filter(|n| n.to_string() == *s),
        _ => None,
    };
    parsed.filter(|n| *n > 0).map(Some).ok_or_else(|| {
        CoreError::bad_request("quiesce_wait_time must be an integer and greater than 0.")
    })
}

/// `promote`. `quiesce_wait_time` is the raw value (≥ 2.75; `None` below or absent).
pub async fn promote_replica(
    core: &Core,
    requester: Requester<'_>,
    id: &str,
    quiesce_wait_time: Option<Value>,
) -> CoreResult<ActionOutcome> {
    let Some((replica, share)) = find_replica(core, requester, id).await? else {
        return Err(no_replica_exists(id));
    };
    if replica.replica_state.as_deref() == Some(REPLICA_STATE_ACTIVE) {
        return Ok(ActionOutcome::NoOp);
    }
    let quiesce_wait_time = parse_quiesce_wait_time(quiesce_wait_time.as_ref())?;
    let not_available = || {
        replication_error(format!(
            "Replica {} must be in available state to be promoted.",
            replica.id
        ))
    };
    if replica.status != STATUS_AVAILABLE {
        return Err(not_available());
    }
    if matches!(
        replica.replica_state.as_deref(),
        Some(REPLICA_STATE_OUT_OF_SYNC | REPLICA_STATE_ERROR)
    ) && !requester.is_admin
    {
        // Manila shows the exception's class template, not its detailed text.
        return Err(CoreError::forbidden("User does not have admin privileges."));
    }
    let now = core.now();
    let payload = json!(ops::PromotePayload { quiesce_wait_time });
    let Some(op) = ops::for_instance_host(
        ops::PROMOTE_SHARE_REPLICA,
        replica.id,
        &replica.host,
        payload,
        now,
    ) else {
        // An available replica always has a host; refuse rather than promote nowhere.
        return Err(CoreError::bad_request(
            "Invalid host: Share replica does not have a valid host.",
        ));
    };
    let update = ShareInstanceUpdate {
        status: Some(STATUS_REPLICATION_CHANGE.to_owned()),
        ..Default::default()
    };
    let updated = match core
        .store
        .update_share_instance_if(replica.id, &[STATUS_AVAILABLE], update, vec![op], now)
        .await
    {
        Ok(row) => row,
        // Its status changed since we read it: the same refusal as if we had seen it.
        Err(StoreError::Conflict(_)) => return Err(not_available()),
        Err(StoreError::NotFound(_)) => return Err(no_replica_exists(id)),
        Err(other) => return Err(other.into()),
    };
    core.wake_workers();
    tracing::info!(
        share.id = %share.id,
        share_instance.id = %replica.id,
        "promoting replica {} of share {}",
        replica.id,
        share.id
    );
    let metadata = core.store.get_share_instance_metadata(updated.id).await?;
    Ok(ActionOutcome::Accepted(Some(Box::new(
        ReplicaWithMetadata {
            replica: updated,
            metadata,
        },
    ))))
}

/// `resync` (admin).
pub async fn resync_replica(
    core: &Core,
    requester: Requester<'_>,
    id: &str,
) -> CoreResult<ActionOutcome> {
    let Some((replica, share)) = find_replica(core, requester, id).await? else {
        return Err(no_replica_exists(id));
    };
    if replica.replica_state.as_deref() == Some(REPLICA_STATE_ACTIVE) {
        return Ok(ActionOutcome::NoOp);
    }
    let payload = json!(ops::UpdateReplicaPayload {
        trigger: ops::TRIGGER_RESYNC.to_owned()
    });
    let Some(op) = ops::for_instance_host(
        ops::UPDATE_SHARE_REPLICA,
        replica.id,
        &replica.host,
        payload,
        core.now(),
    ) else {
        return Err(CoreError::bad_request(
            "Invalid host: Share replica does not have a valid host.",
        ));
    };
    // The status is not touched: the update runs like the periodic one (spec §5.6).
    core.store.insert_operation(op).await?;
    core.wake_workers();
    tracing::info!(
        share.id = %share.id,
        share_instance.id = %replica.id,
        "resync of replica {} of share {} queued",
        replica.id,
        share.id
    );
    Ok(ActionOutcome::Accepted(None))
}

// ---------------------------------------------------------------------------------------
// Admin resets
// ---------------------------------------------------------------------------------------

/// Applies a plain update to a replica (admin resets); 404 generic when it is gone.
async fn update_replica(core: &Core, id: Uuid, update: ShareInstanceUpdate) -> CoreResult<()> {
    match core
        .store
        .update_share_instance_if(id, &[], update, Vec::new(), core.now())
        .await
    {
        Ok(_) => Ok(()),
        Err(StoreError::NotFound(_)) => Err(CoreError::not_found(GENERIC_NOT_FOUND)),
        Err(other) => Err(other.into()),
    }
}

/// `reset_status` with an already validated status. 404 generic when not found.
pub async fn reset_replica_status(
    core: &Core,
    requester: Requester<'_>,
    id: &str,
    status: &str,
) -> CoreResult<()> {
    let Some((replica, _share)) = find_replica(core, requester, id).await? else {
        return Err(CoreError::not_found(GENERIC_NOT_FOUND));
    };
    // No state-machine guard, as Manila: an admin may set any of the allowed statuses.
    let update = ShareInstanceUpdate {
        status: Some(status.to_owned()),
        ..Default::default()
    };
    update_replica(core, replica.id, update).await?;
    tracing::info!(share_instance.id = %replica.id, "reset status of replica {} to {status}", replica.id);
    Ok(())
}

/// `reset_replica_state` with an already validated state. 404 generic when not found; 400
/// "Cannot reset replica_state of an active replica".
pub async fn reset_replica_state(
    core: &Core,
    requester: Requester<'_>,
    id: &str,
    replica_state: &str,
) -> CoreResult<()> {
    let Some((replica, _share)) = find_replica(core, requester, id).await? else {
        return Err(CoreError::not_found(GENERIC_NOT_FOUND));
    };
    if replica.replica_state.as_deref() == Some(REPLICA_STATE_ACTIVE) {
        return Err(CoreError::bad_request(
            "Cannot reset replica_state of an active replica",
        ));
    }
    // Setting a secondary to `active` is allowed (Manila), even if that makes two.
    let update = ShareInstanceUpdate {
        replica_state: Some(Some(replica_state.to_owned())),
        ..Default::default()
    };
    update_replica(core, replica.id, update).await?;
    tracing::info!(share_instance.id = %replica.id, "reset replica_state of replica {} to {replica_state}", replica.id);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Metadata
// ---------------------------------------------------------------------------------------

/// "Share_replica not found." (every metadata call; note the underscore).
fn replica_for_metadata_not_found() -> CoreError {
    CoreError::not_found("Share_replica not found.")
}

/// Replica with metadata for a detail view (2.95).
pub async fn replica_metadata_of(
    core: &Core,
    replicas: &[ShareInstanceRow],
) -> CoreResult<BTreeMap<uuid::Uuid, BTreeMap<String, String>>> {
    if replicas.is_empty() {
        return Ok(BTreeMap::new());
    }
    let ids: Vec<Uuid> = replicas.iter().map(|r| r.id).collect();
    let mut found = core.store.list_share_instance_metadata(&ids).await?;
    // Every replica gets an entry, so views need not tell "none" from "not asked".
    for id in ids {
        found.entry(id).or_default();
    }
    Ok(found)
}

/// The replica addressed by a metadata call: 404 "Share_replica not found." otherwise.
pub async fn get_replica_for_metadata(
    core: &Core,
    requester: Requester<'_>,
    id: &str,
) -> CoreResult<ReplicaWithMetadata> {
    let Some((replica, _share)) = find_replica(core, requester, id).await? else {
        return Err(replica_for_metadata_not_found());
    };
    let metadata = core.store.get_share_instance_metadata(replica.id).await?;
    Ok(ReplicaWithMetadata { replica, metadata })
}

/// Validates and sets replica metadata (POST merge / PUT replace). Returns the keys sent.
pub async fn set_replica_metadata(
    core: &Core,
    replica: &ShareInstanceRow,
    metadata: &BTreeMap<String, String>,
    replace_all: bool,
) -> CoreResult<BTreeMap<String, String>> {
    // One set of rules and texts with share metadata.
    let as_json: Map<String, Value> = metadata
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let valid = shares::validate_metadata(&as_json)?;
    match core
        .store
        .set_share_instance_metadata(replica.id, &valid, replace_all, core.now())
        .await
    {
        // Manila answers with what was sent, not with the resulting set.
        Ok(_) => Ok(valid),
        Err(StoreError::NotFound(_)) => Err(replica_for_metadata_not_found()),
        Err(other) => Err(other.into()),
    }
}

/// Deletes one replica metadata key; 404 "MetadataItemNotFound: Metadata item is not found."
pub async fn delete_replica_metadata_key(
    core: &Core,
    replica: &ShareInstanceRow,
    key: &str,
) -> CoreResult<()> {
    match core
        .store
        .delete_share_instance_metadata_key(replica.id, key)
        .await
    {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound(_)) => Err(CoreError::not_found(
            "MetadataItemNotFound: Metadata item is not found.",
        )),
        Err(other) => Err(other.into()),
    }
}

// ---------------------------------------------------------------------------------------
// Export locations, replication history
// ---------------------------------------------------------------------------------------

/// Export locations of a replica (404 `Share replica '<id>' not found.`).
pub async fn replica_export_locations(
    core: &Core,
    requester: Requester<'_>,
    id: &str,
) -> CoreResult<(ShareInstanceRow, Vec<ExportLocationRow>)> {
    let Some((replica, _share)) = find_replica(core, requester, id).await? else {
        return Err(CoreError::not_found(format!(
            "Share replica '{id}' not found."
        )));
    };
    let mut locations = core.store.list_export_locations(replica.id).await?;
    // Manila orders by `updated_at` (nulls first); stable, so one report keeps its order.
    locations.sort_by_key(|el| el.updated_at);
    Ok((replica, locations))
}

/// Sync records of a replica, newest first (shoal extension, admin only).
pub async fn replication_history(
    core: &Core,
    requester: Requester<'_>,
    id: &str,
    limit: i64,
) -> CoreResult<Vec<ReplicationRecord>> {
    let replica = get_replica(core, requester, id).await?;
    Ok(core
        .store
        .list_replication_history(replica.id, limit)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiesce(value: Value) -> CoreResult<Option<u64>> {
        parse_quiesce_wait_time(Some(&value))
    }

    #[test]
    fn quiesce_wait_time_follows_manila() {
        assert_eq!(parse_quiesce_wait_time(None).ok(), Some(None));
        for falsy in [json!(0), json!(null), json!(""), json!(false), json!(0.0)] {
            assert_eq!(quiesce(falsy.clone()).ok(), Some(None), "{falsy}");
        }
        assert_eq!(quiesce(json!(10)).ok(), Some(Some(10)));
        assert_eq!(quiesce(json!("10")).ok(), Some(Some(10)));
        for bad in [
            json!("0"),
            json!(-1),
            json!("-1"),
            json!(1.5),
            json!(10.0),
            json!("abc"),
            json!(true),
            json!(" 10"),
            json!("+5"),
            json!("010"),
            json!([1]),
            json!({"a": 1}),
        ] {
            let err = quiesce(bad.clone()).expect_err("refused");
            assert_eq!(err.kind(), crate::ErrorKind::BadRequest, "{bad}");
            assert_eq!(
                err.to_string(),
                "quiesce_wait_time must be an integer and greater than 0."
            );
        }
    }

    #[test]
    fn scheduler_hints_accept_only_only_host() {
        let parse = |v: Value| parse_scheduler_hints(Some(&v));
        assert_eq!(parse_scheduler_hints(None).ok(), Some(None));
        assert_eq!(parse(json!({})).ok(), Some(None));
        assert_eq!(parse(json!(null)).ok(), Some(None));
        assert_eq!(
            parse(json!({"only_host": "h@b#p"})).ok(),
            Some(Some("h@b#p".to_owned()))
        );
        assert_eq!(parse(json!({"only_host": null})).ok(), Some(None));
        for bad in [
            json!({"other": "x"}),
            json!({"only_host": "h@b#p", "other": "x"}),
            json!(["only_host"]),
            json!("only_host"),
        ] {
            let err = parse(bad.clone()).expect_err("refused");
            assert_eq!(
                err.to_string(),
                "Invalid input received: Arg 'scheduler_hints' supports only 'only_host' key.",
                "{bad}"
            );
        }
    }

    #[test]
    fn create_metadata_rules() {
        let parse = |v: Value| parse_create_metadata(Some(&v));
        assert_eq!(parse_create_metadata(None).ok(), Some(BTreeMap::new()));
        assert_eq!(parse(json!(null)).ok(), Some(BTreeMap::new()));
        assert_eq!(parse(json!({})).ok(), Some(BTreeMap::new()));
        assert_eq!(
            parse(json!({"k": "v"})).ok(),
            Some(BTreeMap::from([("k".to_owned(), "v".to_owned())]))
        );
        let text = |v: Value| parse(v).expect_err("refused").to_string();
        assert_eq!(text(json!({"": "v"})), "Metadata property key is blank.");
        assert_eq!(text(json!({"k": ""})), "Metadata property value is blank.");
        assert_eq!(
            text(Value::Object(Map::from_iter([(
                "k".repeat(256),
                json!("v")
            )]))),
            "Metadata property key is greater than 255 characters."
        );
        assert_eq!(
            text(json!({"k": "v".repeat(1024)})),
            "Metadata property value is greater than 1023 characters."
        );
        assert_eq!(text(json!(["k"])), MALFORMED_BODY);
        assert_eq!(text(json!("k=v")), MALFORMED_BODY);
    }

    #[test]
    fn replication_errors_carry_manila_prefix() {
        assert_eq!(
            replication_error("Cannot delete last active replica.").to_string(),
            "Unable to perform a replication action: Cannot delete last active replica."
        );
    }

    /// The write side against a real store, two `dummy` back ends and the real scheduler.
    mod with_store {
        use std::sync::Arc;

        use chrono::Utc;
        use shoal_store::testing::{TestDb, fresh_store_from_env};
        use shoal_store::{NewShare, OperationRow, OperationState, ShareUpdate, Store, StoreError};

        use super::*;
        use crate::config::{BackendConfig, PoolConfig};
        use crate::drivers::build_backends;
        use crate::reporter::Reporter;
        use crate::workers::OperationHandler;
        use crate::workers::scheduler::SchedulerHandler;
        use crate::{Config, ErrorKind};

        const PROJECT: &str = "p1";
        const OWNER: Requester<'static> = Requester {
            project_id: PROJECT,
            is_admin: false,
        };
        const ADMIN: Requester<'static> = Requester {
            project_id: "admin",
            is_admin: true,
        };

        struct Fixture {
            core: Arc<Core>,
            db: TestDb<dyn Store>,
            share: ShareRow,
            active: ShareInstanceRow,
        }

        fn backend_config(name: &str, az: &str) -> BackendConfig {
            BackendConfig {
                name: name.to_owned(),
                driver: "dummy".to_owned(),
                availability_zone: az.to_owned(),
                replication_domain: Some("shoal".to_owned()),
                replication_type: Some("readable".to_owned()),
                pools: vec![PoolConfig {
                    name: "pool1".to_owned(),
                    path: None,
                    total_capacity_gb: Some(100),
                    reserved_percentage: 0,
                }],
                dummy: None,
                local: None,
            }
        }

        fn quota(deltas: &[(&str, i64)]) -> QuotaRequest {
            QuotaRequest {
                project_id: PROJECT.to_owned(),
                deltas: deltas.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
                limits: BTreeMap::new(),
            }
        }

        /// A share of `PROJECT` with its active replica available on `dummy1` (az1), and
        /// both back ends reported (pools, services, zones).
        async fn fixture(replication_type: Option<&str>) -> Fixture {
            let db = fresh_store_from_env().await;
            let mut config = Config {
                host: "testhost".to_owned(),
                ..Config::default()
            };
            config.backends = vec![
                backend_config("dummy1", "az1"),
                backend_config("dummy2", "az2"),
            ];
            let backends = build_backends(&config, None, None);
            let core = Arc::new(Core::new(Arc::new(config), db.store().clone()));
            Reporter::new(core.clone(), backends)
                .run_once()
                .await
                .expect("report");
            let now = Utc::now();
            let share = ShareRow {
                id: Uuid::new_v4(),
                project_id: PROJECT.to_owned(),
                user_id: "u1".to_owned(),
                name: None,
                description: None,
                size_gb: 2,
                share_proto: "NFS".to_owned(),
                share_type_id: None,
                is_public: false,
                replication_type: replication_type.map(str::to_owned),
                snapshot_id: None,
                share_group_id: None,
                task_state: None,
                metadata: BTreeMap::new(),
                created_at: now,
                updated_at: None,
                is_soft_deleted: false,
                scheduled_to_be_deleted_at: None,
            };
            let (share, active) = core
                .store
                .create_share(NewShare {
                    share,
                    instance: NewShareInstance {
                        id: Uuid::new_v4(),
                        status: "available".to_owned(),
                        replica_state: replication_type.map(|_| "active".to_owned()),
                        host: "testhost@dummy1#pool1".to_owned(),
                        availability_zone: Some("az1".to_owned()),
                        share_type_id: None,
                        share_network_id: None,
                        share_server_id: None,
                        cast_rules_to_readonly: false,
                        access_rules_status: "active".to_owned(),
                        progress: Some("100%".to_owned()),
                        metadata: BTreeMap::new(),
                    },
                    quota: quota(&[
                        ("shares", 1),
                        ("gigabytes", 2),
                        ("share_replicas", 1),
                        ("replica_gigabytes", 2),
                    ]),
                    operations: Vec::new(),
                })
                .await
                .expect("share");
            Fixture {
                core,
                db,
                share,
                active,
            }
        }

        fn create(share_id: Uuid) -> CreateReplica {
            CreateReplica {
                share_id: share_id.to_string(),
                share_network_supported: true,
                ..Default::default()
            }
        }

        impl Fixture {
            async fn instances(&self) -> Vec<ShareInstanceRow> {
                self.core
                    .store
                    .list_share_instances(self.share.id)
                    .await
                    .expect("instances")
            }

            async fn pending(&self) -> Vec<OperationRow> {
                self.core
                    .store
                    .list_operations(Some(OperationState::Pending))
                    .await
                    .expect("operations")
            }

            async fn usage(&self, resource: &str) -> i64 {
                let usages = self
                    .core
                    .store
                    .get_quota_usages(PROJECT)
                    .await
                    .expect("usages");
                usages.get(resource).map_or(0, |u| u.in_use)
            }

            async fn set(&self, id: Uuid, update: ShareInstanceUpdate) {
                self.core
                    .store
                    .update_share_instance_if(id, &[], update, Vec::new(), Utc::now())
                    .await
                    .expect("update");
            }

            /// Runs every pending scheduler operation (they stay pending: no claim here).
            async fn schedule_all(&self) {
                let scheduler = SchedulerHandler::new(self.core.clone());
                for op in self.pending().await {
                    if op.kind == ops::SCHEDULE_SHARE_INSTANCE {
                        // Idempotent: a placed instance is left alone on a rerun.
                        scheduler.handle(&op).await.expect("schedule");
                    }
                }
            }
        }

        fn refused(result: CoreResult<ReplicaWithMetadata>, kind: ErrorKind, text: &str) {
            let err = result.expect_err("refused");
            assert_eq!((err.kind(), err.to_string().as_str()), (kind, text));
        }

        #[tokio::test]
        async fn create_writes_replica_quota_and_scheduling_in_one_go() {
            let f = fixture(Some("readable")).await;
            let mut req = create(f.share.id);
            req.availability_zone = Some("az2".to_owned());
            req.metadata = Some(json!({"k": "v"}));
            req.scheduler_hints = Some(json!({"only_host": "testhost@dummy2#pool1"}));
            let created = create_replica(&f.core, OWNER, req).await.expect("created");
            let replica = &created.replica;
            assert_eq!(
                replica.replica_state, None,
                "Manila quirk: null in the answer"
            );
            assert_eq!(replica.status, "creating");
            assert_eq!(replica.host, "");
            assert_eq!(replica.availability_zone.as_deref(), Some("az2"));
            assert!(replica.cast_rules_to_readonly);
            assert_eq!(created.metadata["k"], "v");

            let stored = f
                .core
                .store
                .get_share_instance(replica.id)
                .await
                .expect("stored");
            assert_eq!(stored.replica_state.as_deref(), Some("out_of_sync"));
            let metadata = f
                .core
                .store
                .get_share_instance_metadata(replica.id)
                .await
                .expect("metadata");
            assert_eq!(metadata, created.metadata);
            assert_eq!(f.usage("share_replicas").await, 2);
            assert_eq!(f.usage("replica_gigabytes").await, 4);
            let pending = f.pending().await;
            assert_eq!(pending.len(), 1);
            assert_eq!(pending[0].kind, ops::SCHEDULE_SHARE_INSTANCE);
            assert_eq!(pending[0].target_id, replica.id.to_string());
            // Not an admin: the hint is dropped.
            assert_eq!(pending[0].payload, json!({}));

            // An admin's hint travels with the scheduling operation.
            let mut req = create(f.share.id);
            req.scheduler_hints = Some(json!({"only_host": "testhost@dummy2"}));
            let second = create_replica(&f.core, ADMIN, req).await.expect("created");
            let op = f
                .pending()
                .await
                .into_iter()
                .find(|op| op.target_id == second.replica.id.to_string())
                .expect("scheduling op");
            assert_eq!(op.payload, json!({"only_host": "testhost@dummy2"}));
            f.db.finish().await;
        }

        #[tokio::test]
        async fn create_refusals_in_order_write_nothing() {
            let f = fixture(Some("readable")).await;
            let id = f.share.id;
            let bad = ErrorKind::BadRequest;

            let unknown = Uuid::new_v4();
            refused(
                create_replica(&f.core, OWNER, create(unknown)).await,
                ErrorKind::NotFound,
                &format!("No share exists with ID {unknown}."),
            );
            let stranger = Requester {
                project_id: "p2",
                is_admin: false,
            };
            refused(
                create_replica(&f.core, stranger, create(id)).await,
                ErrorKind::NotFound,
                &format!("No share exists with ID {id}."),
            );
            f.core
                .store
                .update_share(
                    id,
                    ShareUpdate {
                        is_public: Some(true),
                        ..Default::default()
                    },
                    Utc::now(),
                )
                .await
                .expect("public");
            refused(
                create_replica(&f.core, stranger, create(id)).await,
                ErrorKind::Forbidden,
                "Policy doesn't allow share:get to be performed.",
            );

            let mut req = create(id);
            req.share_network_id = Some(json!("net"));
            req.share_network_supported = false;
            refused(
                create_replica(&f.core, OWNER, req.clone()).await,
                bad,
                "'share_network_id' option is not supported by this microversion. Use 2.72 or greater microversion to be able to use 'share_network_id'.",
            );
            req.share_network_supported = true;
            refused(
                create_replica(&f.core, OWNER, req).await,
                bad,
                "No share network exists with ID net.",
            );

            let mut req = create(id);
            req.metadata = Some(json!({"k": ""}));
            req.scheduler_hints = Some(json!({"bad": 1}));
            refused(
                create_replica(&f.core, OWNER, req.clone()).await,
                bad,
                "Metadata property value is blank.",
            );
            req.metadata = None;
            refused(
                create_replica(&f.core, OWNER, req).await,
                bad,
                "Invalid input received: Arg 'scheduler_hints' supports only 'only_host' key.",
            );

            f.core
                .store
                .update_share(
                    id,
                    ShareUpdate {
                        task_state: Some(Some("migration_in_progress".to_owned())),
                        ..Default::default()
                    },
                    Utc::now(),
                )
                .await
                .expect("busy");
            refused(
                create_replica(&f.core, OWNER, create(id)).await,
                bad,
                &format!(
                    "Share is busy with an active task: Share {id} is busy as part of an active task: migration_in_progress."
                ),
            );
            f.core
                .store
                .update_share(
                    id,
                    ShareUpdate {
                        task_state: Some(None),
                        ..Default::default()
                    },
                    Utc::now(),
                )
                .await
                .expect("not busy");

            f.set(
                f.active.id,
                ShareInstanceUpdate {
                    status: Some("error".to_owned()),
                    ..Default::default()
                },
            )
            .await;
            refused(
                create_replica(&f.core, OWNER, create(id)).await,
                bad,
                &format!(
                    "Unable to perform a replication action: Share {id} does not have any active replica in available state."
                ),
            );
            f.set(
                f.active.id,
                ShareInstanceUpdate {
                    status: Some("available".to_owned()),
                    ..Default::default()
                },
            )
            .await;

            f.core
                .store
                .set_quota_overrides(
                    PROJECT,
                    &BTreeMap::from([("share_replicas".to_owned(), 1)]),
                    Utc::now(),
                )
                .await
                .expect("override");
            let mut req = create(id);
            req.availability_zone = Some("nowhere".to_owned());
            refused(
                create_replica(&f.core, OWNER, req.clone()).await,
                ErrorKind::OverLimit,
                "ShareReplicasLimitExceeded: Maximum number of allowed share-replicas is exceeded.",
            );
            f.core
                .store
                .delete_quota_overrides(PROJECT)
                .await
                .expect("overrides");
            refused(
                create_replica(&f.core, OWNER, req).await,
                bad,
                "Availability zone nowhere could not be found.",
            );

            assert_eq!(f.instances().await.len(), 1);
            assert!(f.pending().await.is_empty());
            assert_eq!(f.usage("share_replicas").await, 1);
            f.db.finish().await;
        }

        #[tokio::test]
        async fn create_needs_a_replicated_share() {
            let f = fixture(None).await;
            let id = f.share.id;
            refused(
                create_replica(&f.core, OWNER, create(id)).await,
                ErrorKind::BadRequest,
                &format!("Replication not supported for share {id}."),
            );
            f.db.finish().await;
        }

        #[tokio::test]
        async fn scheduler_places_one_replica_per_pool() {
            let f = fixture(Some("readable")).await;
            // Asking for the active replica's zone: no other pool there (spec §8).
            let mut req = create(f.share.id);
            req.availability_zone = Some("az1".to_owned());
            let same_az = create_replica(&f.core, OWNER, req).await.expect("created");
            let first = create_replica(&f.core, OWNER, create(f.share.id))
                .await
                .expect("created");
            f.schedule_all().await;

            let failed = f
                .core
                .store
                .get_share_instance(same_az.replica.id)
                .await
                .expect("replica");
            assert_eq!(failed.status, "error");
            assert_eq!(failed.replica_state.as_deref(), Some("error"));
            let placed = f
                .core
                .store
                .get_share_instance(first.replica.id)
                .await
                .expect("replica");
            assert_eq!(placed.host, "testhost@dummy2#pool1");
            assert_eq!(placed.availability_zone.as_deref(), Some("az2"));
            let create_op = f
                .pending()
                .await
                .into_iter()
                .find(|op| {
                    op.target_id == placed.id.to_string() && op.kind != ops::SCHEDULE_SHARE_INSTANCE
                })
                .expect("create op");
            assert_eq!(create_op.kind, ops::CREATE_SHARE_REPLICA);
            assert_eq!(create_op.host.as_deref(), Some("testhost@dummy2"));

            let messages = f
                .core
                .store
                .list_messages(Some(PROJECT))
                .await
                .expect("messages");
            assert_eq!(messages.len(), 1);
            assert_eq!(messages[0].resource_type, "SHARE_REPLICA");
            assert_eq!(
                messages[0].resource_id.as_deref(),
                Some(same_az.replica.id.to_string().as_str())
            );
            assert_eq!(messages[0].action_id, "001");
            // az1 keeps only the active replica's pool, which ShareReplication removes.
            assert_eq!(messages[0].detail_id, "014");

            // Every pool of the domain now holds an instance (the errored one never had
            // a pool): a third replica fails on the ShareReplication filter.
            let third = create_replica(&f.core, OWNER, create(f.share.id))
                .await
                .expect("created");
            f.schedule_all().await;
            let third = f
                .core
                .store
                .get_share_instance(third.replica.id)
                .await
                .expect("replica");
            assert_eq!(
                (third.status.as_str(), third.replica_state.as_deref()),
                ("error", Some("error"))
            );
            let messages = f
                .core
                .store
                .list_messages(Some(PROJECT))
                .await
                .expect("messages");
            assert_eq!(messages.len(), 2);
            assert!(messages.iter().all(|m| m.detail_id == "014"));
            f.db.finish().await;
        }

        #[tokio::test]
        async fn delete_rules() {
            let f = fixture(Some("readable")).await;
            let active = f.active.id.to_string();
            let err = delete_replica(&f.core, OWNER, &active, false)
                .await
                .expect_err("last active");
            assert_eq!(
                err.to_string(),
                "Unable to perform a replication action: Cannot delete last active replica."
            );
            let err = delete_replica(&f.core, ADMIN, &Uuid::new_v4().to_string(), true)
                .await
                .expect_err("missing");
            assert_eq!(err.to_string(), GENERIC_NOT_FOUND);
            let missing = Uuid::new_v4().to_string();
            let err = delete_replica(&f.core, OWNER, &missing, false)
                .await
                .expect_err("missing");
            assert_eq!(
                err.to_string(),
                format!("No replica exists with ID {missing}.")
            );

            // Never placed: removed at once, quota given back.
            let unplaced = create_replica(&f.core, OWNER, create(f.share.id))
                .await
                .expect("created");
            assert_eq!(f.usage("share_replicas").await, 2);
            delete_replica(&f.core, OWNER, &unplaced.replica.id.to_string(), false)
                .await
                .expect("deleted");
            assert_eq!(f.instances().await.len(), 1);
            assert_eq!(f.usage("share_replicas").await, 1);
            assert_eq!(f.usage("replica_gigabytes").await, 2);

            // Placed: `deleting` with the back end's delete operation (any status).
            let placed = create_replica(&f.core, OWNER, create(f.share.id))
                .await
                .expect("created");
            f.schedule_all().await;
            delete_replica(&f.core, ADMIN, &placed.replica.id.to_string(), true)
                .await
                .expect("deleting");
            let row = f
                .core
                .store
                .get_share_instance(placed.replica.id)
                .await
                .expect("still there");
            assert_eq!(row.status, "deleting");
            assert!(row.terminated_at.is_some());
            let op = f
                .pending()
                .await
                .into_iter()
                .find(|op| op.kind == ops::DELETE_SHARE_REPLICA)
                .expect("delete op");
            assert_eq!(op.host.as_deref(), Some("testhost@dummy2"));
            assert_eq!(op.payload, json!({"force": true}));
            f.db.finish().await;
        }

        #[tokio::test]
        async fn promote_and_resync() {
            let f = fixture(Some("readable")).await;
            let active = f.active.id.to_string();
            assert!(matches!(
                promote_replica(&f.core, OWNER, &active, Some(json!("x"))).await,
                Ok(ActionOutcome::NoOp)
            ));
            assert!(matches!(
                resync_replica(&f.core, ADMIN, &active).await,
                Ok(ActionOutcome::NoOp)
            ));

            let created = create_replica(&f.core, OWNER, create(f.share.id))
                .await
                .expect("created");
            let id = created.replica.id.to_string();
            let err = resync_replica(&f.core, ADMIN, &id)
                .await
                .expect_err("unplaced");
            assert_eq!(
                err.to_string(),
                "Invalid host: Share replica does not have a valid host."
            );
            let err = promote_replica(&f.core, OWNER, &id, Some(json!(0)))
                .await
                .expect_err("creating");
            assert_eq!(
                err.to_string(),
                format!(
                    "Unable to perform a replication action: Replica {id} must be in available state to be promoted."
                )
            );
            f.schedule_all().await;
            f.set(
                created.replica.id,
                ShareInstanceUpdate {
                    status: Some("available".to_owned()),
                    ..Default::default()
                },
            )
            .await;
            let err = promote_replica(&f.core, OWNER, &id, Some(json!(-1)))
                .await
                .expect_err("bad wait");
            assert_eq!(err.kind(), ErrorKind::BadRequest);
            let err = promote_replica(&f.core, OWNER, &id, None)
                .await
                .expect_err("out of sync");
            assert_eq!(
                (err.kind(), err.to_string().as_str()),
                (ErrorKind::Forbidden, "User does not have admin privileges.")
            );

            match resync_replica(&f.core, ADMIN, &id).await {
                Ok(ActionOutcome::Accepted(None)) => {}
                other => panic!("resync: {other:?}"),
            }
            assert!(f.pending().await.iter().any(|op| {
                op.kind == ops::UPDATE_SHARE_REPLICA
                    && op.payload == json!({"trigger": "resync"})
                    && op.host.as_deref() == Some("testhost@dummy2")
            }));

            let promoted = match promote_replica(&f.core, ADMIN, &id, Some(json!("5"))).await {
                Ok(ActionOutcome::Accepted(Some(replica))) => replica,
                other => panic!("promote: {other:?}"),
            };
            assert_eq!(promoted.replica.status, "replication_change");
            assert_eq!(
                promoted.replica.replica_state.as_deref(),
                Some("out_of_sync")
            );
            let op = f
                .pending()
                .await
                .into_iter()
                .find(|op| op.kind == ops::PROMOTE_SHARE_REPLICA)
                .expect("promote op");
            assert_eq!(op.payload, json!({"quiesce_wait_time": 5}));
            assert_eq!(op.host.as_deref(), Some("testhost@dummy2"));
            // A second promote sees `replication_change`.
            assert!(promote_replica(&f.core, ADMIN, &id, None).await.is_err());
            f.db.finish().await;
        }

        #[tokio::test]
        async fn resets_metadata_and_visibility() {
            let f = fixture(Some("readable")).await;
            let active = f.active.id.to_string();
            let err = reset_replica_state(&f.core, ADMIN, &active, "error")
                .await
                .expect_err("active");
            assert_eq!(
                err.to_string(),
                "Cannot reset replica_state of an active replica"
            );
            let created = create_replica(&f.core, OWNER, create(f.share.id))
                .await
                .expect("created");
            let id = created.replica.id.to_string();
            reset_replica_state(&f.core, ADMIN, &id, "active")
                .await
                .expect("reset");
            reset_replica_status(&f.core, ADMIN, &id, "error")
                .await
                .expect("reset");
            let row = f
                .core
                .store
                .get_share_instance(created.replica.id)
                .await
                .expect("row");
            assert_eq!(
                (row.status.as_str(), row.replica_state.as_deref()),
                ("error", Some("active"))
            );
            let err = reset_replica_status(&f.core, ADMIN, &Uuid::new_v4().to_string(), "error")
                .await
                .expect_err("missing");
            assert_eq!(err.to_string(), GENERIC_NOT_FOUND);

            // Metadata: merge answers what was sent; replace drops the rest.
            let replica = get_replica_for_metadata(&f.core, OWNER, &id)
                .await
                .expect("visible");
            let sent = BTreeMap::from([("a".to_owned(), "1".to_owned())]);
            assert_eq!(
                set_replica_metadata(&f.core, &replica.replica, &sent, false)
                    .await
                    .expect("set"),
                sent
            );
            let all = replica_metadata_of(&f.core, &[replica.replica.clone(), f.active.clone()])
                .await
                .expect("batch");
            assert_eq!(all[&replica.replica.id]["a"], "1");
            assert_eq!(all[&f.active.id], BTreeMap::new());
            let err = delete_replica_metadata_key(&f.core, &replica.replica, "nope")
                .await
                .expect_err("missing key");
            assert_eq!(
                err.to_string(),
                "MetadataItemNotFound: Metadata item is not found."
            );
            delete_replica_metadata_key(&f.core, &replica.replica, "a")
                .await
                .expect("deleted");
            let blank = BTreeMap::from([("k".to_owned(), String::new())]);
            assert!(
                set_replica_metadata(&f.core, &replica.replica, &blank, true)
                    .await
                    .is_err()
            );

            // Another project sees none of it.
            let stranger = Requester {
                project_id: "p2",
                is_admin: false,
            };
            let err = get_replica_for_metadata(&f.core, stranger, &id)
                .await
                .expect_err("hidden");
            assert_eq!(err.to_string(), "Share_replica not found.");
            let err = replica_export_locations(&f.core, stranger, &id)
                .await
                .expect_err("hidden");
            assert_eq!(err.to_string(), format!("Share replica '{id}' not found."));
            let err = promote_replica(&f.core, stranger, &id, None)
                .await
                .expect_err("hidden");
            assert_eq!(err.to_string(), format!("No replica exists with ID {id}."));
            let (row, locations) = replica_export_locations(&f.core, OWNER, &id)
                .await
                .expect("visible");
            assert_eq!(row.id, created.replica.id);
            assert!(locations.is_empty());
            assert!(matches!(
                f.core.store.get_share_instance(Uuid::new_v4()).await,
                Err(StoreError::NotFound(_))
            ));
            f.db.finish().await;
        }
    }
}
