//! Share snapshots, the API side (Manila's `share/api.py` snapshot methods): create with its
//! quota charge and instances (one per replica of a replicated share), update, delete and
//! force delete, admin resets, revert, manage and unmanage, snapshot access rules, and the
//! derived views (a snapshot's status is its instances' aggregate, as Manila's
//! `ShareSnapshot.aggregate_status`). The back-end work is done by
//! [`crate::workers::snapshot_manager`]; every state change here is a compare-and-set written
//! in the same transaction as the operation that carries it out.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use shoal_store::{
    NewSnapshot, NewSnapshotAccessRule, NewSnapshotInstance, QuotaRequest, ShareInstanceCas,
    ShareInstanceRow, ShareInstanceUpdate, SnapshotAccessRuleRow, SnapshotInstanceCas,
    SnapshotInstanceRow, SnapshotInstanceUpdate, SnapshotListFilter, SnapshotRow, SnapshotUpdate,
    StoreError,
};
use uuid::Uuid;

use crate::ops;
use crate::quotas;
use crate::share_access::same_access_to;
use crate::shares::{self, Share};
use crate::{Core, CoreError, CoreResult};

/// A snapshot instance is being created.
pub const STATUS_CREATING: &str = "creating";
/// A snapshot instance is complete.
pub const STATUS_AVAILABLE: &str = "available";
/// A snapshot instance failed.
pub const STATUS_ERROR: &str = "error";
/// A snapshot instance is being deleted.
pub const STATUS_DELETING: &str = "deleting";
/// Deleting a snapshot instance failed.
pub const STATUS_ERROR_DELETING: &str = "error_deleting";
/// The share is being reverted to this snapshot.
pub const STATUS_RESTORING: &str = "restoring";
/// Managing an existing snapshot is under way.
pub const STATUS_MANAGE_STARTING: &str = "manage_starting";
/// Managing an existing snapshot failed.
pub const STATUS_MANAGE_ERROR: &str = "manage_error";
/// Unmanaging is under way.
pub const STATUS_UNMANAGE_STARTING: &str = "unmanage_starting";
/// Unmanaging failed.
pub const STATUS_UNMANAGE_ERROR: &str = "unmanage_error";
/// A share being reverted.
pub const SHARE_STATUS_REVERTING: &str = "reverting";
/// A failed revert leaves the share here.
pub const SHARE_STATUS_REVERTING_ERROR: &str = "reverting_error";

/// Statuses an admin may set with `reset_status` (Manila's `SHARE_SNAPSHOT_STATUSES`).
pub const RESET_STATUSES: [&str; 11] = [
    STATUS_CREATING,
    STATUS_DELETING,
    STATUS_AVAILABLE,
    STATUS_ERROR,
    STATUS_ERROR_DELETING,
    STATUS_RESTORING,
    STATUS_MANAGE_STARTING,
    STATUS_MANAGE_ERROR,
    STATUS_UNMANAGE_STARTING,
    STATUS_UNMANAGE_ERROR,
    "deferred_deleting",
];

/// Manila's `TRANSITIONAL_STATUSES` as far as snapshots reach them.
pub const TRANSITIONAL_STATUSES: [&str; 6] = [
    STATUS_CREATING,
    STATUS_DELETING,
    STATUS_RESTORING,
    STATUS_MANAGE_STARTING,
    STATUS_UNMANAGE_STARTING,
    "extending",
];

/// Manila's `ShareSnapshotNotFound` text.
pub fn not_found(id: &str) -> CoreError {
    CoreError::not_found(format!("Snapshot {id} could not be found."))
}

/// A snapshot with the share instances its instances are of (for the derived fields).
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The stored snapshot with metadata and instances.
    pub row: SnapshotRow,
    /// The share instances its instances are of (missing ones are left out).
    pub share_instances: Vec<ShareInstanceRow>,
}

impl Snapshot {
    fn share_instance(&self, instance: &SnapshotInstanceRow) -> Option<&ShareInstanceRow> {
        self.share_instances
            .iter()
            .find(|s| s.id == instance.share_instance_id)
    }

    /// Manila's `ShareSnapshot.instance`: the instance on the active replica, else the
    /// first.
    pub fn instance(&self) -> Option<&SnapshotInstanceRow> {
        self.row
            .instances
            .iter()
            .find(|i| {
                self.share_instance(i)
                    .is_some_and(|s| s.replica_state.as_deref() == Some("active"))
            })
            .or_else(|| self.row.instances.first())
    }

    /// The status of [`Self::instance`] (Manila's `status` proxy).
    pub fn instance_status(&self) -> &str {
        self.instance().map_or("", |i| i.status.as_str())
    }

    /// Manila's `aggregate_status`: over the instances on `active` and `in_sync` replicas,
    /// the first of deleting, creating, error, available (then any other) that occurs; the
    /// shown instance's status when there are no such instances.
    pub fn status(&self) -> &str {
        let qualified: Vec<&SnapshotInstanceRow> = self
            .row
            .instances
            .iter()
            .filter(|i| {
                self.share_instance(i).is_some_and(|s| {
                    matches!(s.replica_state.as_deref(), Some("active" | "in_sync"))
                })
            })
            .collect();
        if qualified.is_empty() {
            return self.instance_status();
        }
        const ORDER: [&str; 4] = [
            STATUS_DELETING,
            STATUS_CREATING,
            STATUS_ERROR,
            STATUS_AVAILABLE,
        ];
        qualified
            .iter()
            .min_by_key(|i| {
                ORDER
                    .iter()
                    .position(|s| *s == i.status)
                    .unwrap_or(ORDER.len())
            })
            .map_or("", |i| i.status.as_str())
    }

    /// Progress of the shown instance.
    pub fn progress(&self) -> Option<&str> {
        self.instance().and_then(|i| i.progress.as_deref())
    }

    /// Provider location of the shown instance.
    pub fn provider_location(&self) -> Option<&str> {
        self.instance().and_then(|i| i.provider_location.as_deref())
    }
}

/// Reads a snapshot with its share instances; `None` when `id` is not a UUID or missing.
pub async fn find_snapshot(core: &Core, id: &str) -> CoreResult<Option<Snapshot>> {
    let Ok(uuid) = Uuid::parse_str(id) else {
        return Ok(None);
    };
    let row = match core.store.get_snapshot(uuid).await {
        Ok(row) => row,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    Ok(Some(assemble(core, row).await?))
}

async fn assemble(core: &Core, row: SnapshotRow) -> CoreResult<Snapshot> {
    let share_instances = core.store.list_share_instances(row.share_id).await?;
    Ok(Snapshot {
        row,
        share_instances,
    })
}

/// Snapshots of `project_id` (every project's when `None`) and/or of one share, in creation
/// order; the API filters, sorts and paginates.
pub async fn list_snapshots(
    core: &Core,
    project_id: Option<&str>,
    share_id: Option<Uuid>,
) -> CoreResult<Vec<Snapshot>> {
    let rows = core
        .store
        .list_snapshots(SnapshotListFilter {
            project_id: project_id.map(str::to_owned),
            share_id,
        })
        .await?;
    let mut instances: BTreeMap<Uuid, Vec<ShareInstanceRow>> = BTreeMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let share_instances = match instances.get(&row.share_id) {
            Some(found) => found.clone(),
            None => {
                let found = core.store.list_share_instances(row.share_id).await?;
                instances.insert(row.share_id, found.clone());
                found
            }
        };
        out.push(Snapshot {
            row,
            share_instances,
        });
    }
    Ok(out)
}

/// A snapshot create request (`POST /v2/snapshots`, or manage).
#[derive(Debug, Clone, Default)]
pub struct CreateSnapshot {
    /// Project charged (the caller's).
    pub project_id: String,
    /// Creating user.
    pub user_id: String,
    /// Display name.
    pub name: Option<String>,
    /// Display description.
    pub description: Option<String>,
    /// Validated metadata (2.73+).
    pub metadata: BTreeMap<String, String>,
}

/// Manila's snapshot quota texts (a user's or share type's row is refused with its
/// resource's text).
fn snapshot_quota_error(err: StoreError) -> CoreError {
    match &err {
        StoreError::QuotaExceeded {
            resource, limit, ..
        } if quotas::base_resource(resource) == "snapshots" => CoreError::over_limit(format!(
            "SnapshotLimitExceeded: Maximum number of snapshots allowed ({limit}) exceeded"
        )),
        StoreError::QuotaExceeded { resource, .. }
            if quotas::base_resource(resource) == "snapshot_gigabytes" =>
        {
            CoreError::over_limit(
                "SnapshotSizeExceedsAvailableQuota: Requested snapshot exceeds allowed project/user or share type gigabytes quota.",
            )
        }
        _ => err.into(),
    }
}

/// The share instances a new snapshot gets instances on: every replica of a replicated
/// share (Manila creates one per replica), else the shown instance. The active (or only)
/// one comes first.
fn snapshot_targets(share: &Share) -> Vec<&ShareInstanceRow> {
    let Some(shown) = share.instance() else {
        return Vec::new();
    };
    let mut targets = vec![shown];
    if share.has_replicas() {
        targets.extend(share.replicas().filter(|r| r.id != shown.id));
    }
    targets
}

/// `POST /v2/snapshots` after the API checked `snapshot_support`: status and busy checks,
/// then the snapshot, its instances (`creating`, `0%`), the quota charge and the create
/// operation for the share's (active) instance in one transaction.
pub async fn create_snapshot(
    core: &Core,
    share: &Share,
    req: CreateSnapshot,
) -> CoreResult<Snapshot> {
    if share.status() != Some(shares::STATUS_AVAILABLE) {
        return Err(CoreError::bad_request(shares::invalid_share_text(
            "Source share status must be available",
        )));
    }
    if share.is_busy() {
        return Err(CoreError::bad_request(format!(
            "Share is busy with an active task: Share {} is busy as part of an active task: {}",
            share.row.id,
            share.row.task_state.as_deref().unwrap_or_default()
        )));
    }
    let size = share.row.size_gb;
    let quota = snapshot_charge(core, share, &req.project_id, &req.user_id, size).await?;
    // Manila checks snapshot_gigabytes first.
    if let Some(over) = first_over(core, &quota, &["snapshot_gigabytes", "snapshots"]).await? {
        return Err(snapshot_quota_error(over));
    }
    let now = core.now();
    let id = Uuid::new_v4();
    let targets = snapshot_targets(share);
    let Some(primary) = targets.first() else {
        return Err(CoreError::bad_request(
            "Invalid share: Source share status must be available",
        ));
    };
    let instances: Vec<NewSnapshotInstance> = targets
        .iter()
        .map(|t| NewSnapshotInstance {
            id: Uuid::new_v4(),
            snapshot_id: id,
            share_instance_id: t.id,
            status: STATUS_CREATING.to_owned(),
            progress: Some("0%".to_owned()),
            provider_location: None,
        })
        .collect();
    // The secondaries' instances are created after the active's is available (the
    // manager enqueues them then).
    let operations: Vec<_> = ops::for_instance_host(
        ops::CREATE_SNAPSHOT,
        instances[0].id,
        &primary.host,
        json!({}),
        now,
    )
    .into_iter()
    .collect();
    let new = NewSnapshot {
        snapshot: SnapshotRow {
            id,
            share_id: share.row.id,
            project_id: req.project_id.clone(),
            user_id: req.user_id.clone(),
            name: req.name,
            description: req.description,
            size_gb: size,
            share_size: size,
            share_proto: share.row.share_proto.clone(),
            metadata: req.metadata,
            created_at: now,
            updated_at: None,
            instances: Vec::new(),
        },
        instances,
        quota,
        operations,
    };
    let row = core
        .store
        .create_snapshot(new)
        .await
        .map_err(snapshot_quota_error)?;
    core.wake_workers();
    tracing::info!(snapshot.id = %row.id, share.id = %share.row.id, "created snapshot {} of share {}", row.id, share.row.id);
    assemble(core, row).await
}

/// The share type a snapshot of a share instance counts against: the instance's (Manila's
/// `share['instance']['share_type_id']`), else the share's.
pub(crate) fn snapshot_share_type(
    share_instance: Option<&ShareInstanceRow>,
    share_type_id: Option<Uuid>,
) -> Option<Uuid> {
    share_instance
        .and_then(|i| i.share_type_id)
        .or(share_type_id)
}

/// A snapshot's charge: `snapshots` and `snapshot_gigabytes` to the project, the creating
/// user and the share's type, each against its own limit (Manila's `QUOTAS.reserve` on
/// snapshot create passes the share type; the user is the caller's).
async fn snapshot_charge(
    core: &Core,
    share: &Share,
    project_id: &str,
    user_id: &str,
    size: i64,
) -> CoreResult<QuotaRequest> {
    let owner = quotas::Owner {
        project_id,
        user_id,
        share_type_id: snapshot_share_type(share.instance(), share.row.share_type_id),
    };
    quotas::scoped_request(
        core,
        owner,
        &[("snapshots", 1), ("snapshot_gigabytes", size)],
    )
    .await
}

/// The first resource of `order` the request would take over its limit, in the project or
/// in a user's or share type's scope (the store refuses on whichever row it meets first;
/// this picks Manila's message).
async fn first_over(
    core: &Core,
    req: &QuotaRequest,
    order: &[&str],
) -> CoreResult<Option<StoreError>> {
    let usages = core.store.get_quota_usages(&req.project_id).await?;
    for resource in order {
        for (key, delta) in &req.deltas {
            if quotas::base_resource(key) != *resource {
                continue;
            }
            let delta = *delta;
            let limit = req.limits.get(key).copied().unwrap_or(-1);
            if delta <= 0 {
                continue;
            }
            let (in_use, reserved) = usages.get(key).map_or((0, 0), |u| (u.in_use, u.reserved));
            if crate::quotas::exceeds(in_use, reserved, delta, limit) {
                return Ok(Some(StoreError::QuotaExceeded {
                    resource: key.clone(),
                    requested: delta,
                    in_use,
                    reserved,
                    limit,
                }));
            }
        }
    }
    Ok(None)
}

/// `PUT /v2/snapshots/{id}`: name and description.
pub async fn update_snapshot(
    core: &Core,
    snapshot: &Snapshot,
    update: SnapshotUpdate,
) -> CoreResult<Snapshot> {
    let row = core
        .store
        .update_snapshot(snapshot.row.id, update, core.now())
        .await?;
    assemble(core, row).await
}

/// What a removed snapshot gives back: to the project, the snapshot's user and the share
/// type it was charged to (`snapshot_share_type`), as Manila's `_delete_snapshot_quota`.
pub fn snapshot_release(row: &SnapshotRow, share_type_id: Option<Uuid>) -> QuotaRequest {
    let release = QuotaRequest {
        project_id: row.project_id.clone(),
        deltas: BTreeMap::from([
            ("snapshots".to_owned(), -1),
            ("snapshot_gigabytes".to_owned(), -row.size_gb),
        ]),
        limits: BTreeMap::new(),
    };
    quotas::with_scopes(release, &row.user_id, share_type_id)
}

/// The host (`host@backend#pool`) of a snapshot instance's share instance.
fn instance_host<'a>(snapshot: &'a Snapshot, instance: &SnapshotInstanceRow) -> &'a str {
    snapshot
        .share_instance(instance)
        .map_or("", |s| s.host.as_str())
}

/// `DELETE /v2/snapshots/{id}` (`force`: admin `force_delete`): every instance goes to
/// `deleting` with a delete operation for its back end, in one transaction; instances on
/// unplaced share instances are removed at once.
pub async fn delete_snapshot(core: &Core, snapshot: &Snapshot, force: bool) -> CoreResult<()> {
    let status = snapshot.status();
    if !force && !matches!(status, STATUS_AVAILABLE | STATUS_ERROR) {
        return Err(CoreError::bad_request(
            "Invalid share snapshot: Share Snapshot status must be one of ('available', 'error').",
        ));
    }
    let now = core.now();
    let payload = json!(ops::DeletePayload {
        force,
        ..Default::default()
    });
    let mut updates = Vec::new();
    let mut operations = Vec::new();
    let mut orphans = Vec::new();
    for instance in &snapshot.row.instances {
        match ops::for_instance_host(
            ops::DELETE_SNAPSHOT,
            instance.id,
            instance_host(snapshot, instance),
            payload.clone(),
            now,
        ) {
            Some(op) => operations.push(op),
            None => orphans.push(instance.id),
        }
        updates.push(SnapshotInstanceCas {
            id: instance.id,
            // Without force, an instance that moved on since the read keeps its state.
            expected_statuses: if force {
                Vec::new()
            } else {
                vec![instance.status.clone()]
            },
            update: SnapshotInstanceUpdate {
                status: Some(STATUS_DELETING.to_owned()),
                ..Default::default()
            },
        });
    }
    match core
        .store
        .update_snapshot_instances_if(updates, operations, now)
        .await
    {
        Ok(_) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(CoreError::bad_request(
                "Invalid share snapshot: Share Snapshot status must be one of ('available', 'error').",
            ));
        }
        Err(StoreError::NotFound(_)) => return Err(not_found(&snapshot.row.id.to_string())),
        Err(err) => return Err(err.into()),
    }
    let share_type_id = snapshot
        .share_instances
        .iter()
        .find_map(|i| i.share_type_id);
    for id in orphans {
        core.store
            .delete_snapshot_instance(id, snapshot_release(&snapshot.row, share_type_id), now)
            .await?;
    }
    core.wake_workers();
    tracing::info!(snapshot.id = %snapshot.row.id, force, "deleting snapshot {}", snapshot.row.id);
    Ok(())
}

/// Admin `reset_status`: every instance gets `status` (Manila updates the snapshot's
/// instance; for a replicated snapshot shoal sets them all, so the aggregate shows it).
pub async fn reset_status(core: &Core, snapshot: &Snapshot, status: &str) -> CoreResult<()> {
    let updates = snapshot
        .row
        .instances
        .iter()
        .map(|i| SnapshotInstanceCas {
            id: i.id,
            expected_statuses: Vec::new(),
            update: SnapshotInstanceUpdate {
                status: Some(status.to_owned()),
                ..Default::default()
            },
        })
        .collect();
    core.store
        .update_snapshot_instances_if(updates, Vec::new(), core.now())
        .await?;
    Ok(())
}

/// Admin `reset_status` of one snapshot instance (`/v2/snapshot-instances/{id}/action`).
pub async fn reset_instance_status(
    core: &Core,
    instance: &SnapshotInstanceRow,
    status: &str,
) -> CoreResult<SnapshotInstanceRow> {
    let cas = SnapshotInstanceCas {
        id: instance.id,
        expected_statuses: Vec::new(),
        update: SnapshotInstanceUpdate {
            status: Some(status.to_owned()),
            ..Default::default()
        },
    };
    let mut rows = core
        .store
        .update_snapshot_instances_if(vec![cas], Vec::new(), core.now())
        .await?;
    rows.pop()
        .ok_or_else(|| CoreError::Internal(anyhow::anyhow!("no row returned")))
}

/// `revert` (2.27+): the share is reverted to `snapshot`, which must be its latest; Manila's
/// `_revert` checks in its order, then the size-change reservation, the snapshot instance
/// on the (active) share instance → `restoring` and the share instance → `reverting` with
/// the revert operation.
pub async fn revert_to_snapshot(core: &Core, share: &Share, snapshot: &Snapshot) -> CoreResult<()> {
    let sid = snapshot.row.id;
    let share_id = share.row.id;
    if !share.capability(crate::share_types::REVERT_TO_SNAPSHOT_SUPPORT) {
        return Err(CoreError::bad_request(format!(
            "Share {share_id} may not be reverted to snapshot {sid}, because the share does not have that capability."
        )));
    }
    if snapshot.row.share_id != share_id {
        return Err(CoreError::bad_request(format!(
            "Snapshot {sid} is not associated with share {share_id}."
        )));
    }
    let status = share.status().unwrap_or_default();
    if status != shares::STATUS_AVAILABLE {
        return Err(CoreError::conflict(format!(
            "Share {share_id} is in '{status}' state, but it must be in 'available' state to be reverted to a snapshot."
        )));
    }
    let snapshot_status = snapshot.status();
    if snapshot_status != STATUS_AVAILABLE {
        return Err(CoreError::conflict(format!(
            "Snapshot {sid} is in '{snapshot_status}' state, but it must be in 'available' state to be restored."
        )));
    }
    if share.is_busy() {
        return Err(CoreError::conflict(format!(
            "Share {share_id} may not be reverted while it has an active task."
        )));
    }
    let snapshots = list_snapshots(core, None, Some(share_id)).await?;
    let Some(latest) = snapshots
        .iter()
        .max_by_key(|s| (s.row.created_at, s.row.id))
        .map(|s| s.row.id)
    else {
        return Err(CoreError::bad_request(format!(
            "Could not determine the latest snapshot for share {share_id}."
        )));
    };
    if latest != sid {
        return Err(CoreError::conflict(format!(
            "Snapshot {sid} may not be restored because it is not the most recent snapshot of share {share_id}. Currently the latest snapshot is {latest}."
        )));
    }
    if share
        .instances
        .iter()
        .any(|i| i.access_rules_status != "active")
    {
        return Err(CoreError::conflict(format!(
            "Snapshot {sid} belongs to a share {share_id} which has access rules that are not active."
        )));
    }
    // Manila's `ReplicationException` (a 500 there); shoal answers 409, as the state of
    // the share is what is wrong.
    let Some(active) = share.instance().filter(|a| {
        a.status == shares::STATUS_AVAILABLE
            && (!share.has_replicas() || a.replica_state.as_deref() == Some("active"))
    }) else {
        return Err(CoreError::conflict(format!(
            "Share {share_id} has no active replica in available state."
        )));
    };
    let Some(snapshot_instance) = snapshot
        .row
        .instances
        .iter()
        .find(|i| i.share_instance_id == active.id)
    else {
        return Err(CoreError::conflict(format!(
            "Share {share_id} has no snapshot {sid} associated with its active replica."
        )));
    };
    // A revert can grow the share (the snapshot was taken before a shrink): reserve it.
    let increase = snapshot.row.size_gb - share.row.size_gb;
    let mut reservations = Vec::new();
    if increase != 0 {
        // Manila reserves it for the share's owner and type too.
        let req = quotas::scoped_request(core, share.owner(), &[("gigabytes", increase)]).await?;
        let expire = core.now() + chrono::Duration::hours(24);
        reservations = core
            .store
            .reserve_quota(req, expire, core.now())
            .await
            .map_err(|e| match e {
                StoreError::QuotaExceeded { .. } => CoreError::over_limit(format!(
                    "ShareSizeExceedsAvailableQuota: Quota exceeded for {}. Reverting share {} to snapshot {sid} will increase the share's size by {increase}G.",
                    share.row.project_id, share.row.id
                )),
                other => other.into(),
            })?;
    }
    let now = core.now();
    let payload = json!(ops::RevertPayload {
        snapshot_instance_id: snapshot_instance.id,
        reservations: reservations.clone(),
    });
    let op = ops::for_instance_host(
        ops::REVERT_TO_SNAPSHOT,
        active.id,
        &active.host,
        payload,
        now,
    );
    // The share instance → `reverting` and its snapshot instance → `restoring` with the
    // operation, in one transaction.
    let reverting = ShareInstanceCas {
        id: active.id,
        expected_statuses: vec![shares::STATUS_AVAILABLE.to_owned()],
        expected_replica_state: None,
        update: ShareInstanceUpdate {
            status: Some(SHARE_STATUS_REVERTING.to_owned()),
            ..Default::default()
        },
    };
    let restoring = SnapshotInstanceCas {
        id: snapshot_instance.id,
        expected_statuses: vec![STATUS_AVAILABLE.to_owned()],
        update: SnapshotInstanceUpdate {
            status: Some(STATUS_RESTORING.to_owned()),
            ..Default::default()
        },
    };
    if let Err(err) = core
        .store
        .update_share_and_snapshot_instances_if(
            vec![reverting],
            vec![restoring],
            op.into_iter().collect(),
            now,
        )
        .await
    {
        core.store.rollback_reservations(&reservations, now).await?;
        return Err(match err {
            // Something moved since the checks above; Manila's answer for a share that is
            // not available.
            StoreError::Conflict(_) => CoreError::conflict(format!(
                "Share {share_id} is in '{status}' state, but it must be in 'available' state to be reverted to a snapshot."
            )),
            other => other.into(),
        });
    }
    core.wake_workers();
    Ok(())
}

/// Validated manage request (`POST /v2/snapshots/manage`).
#[derive(Debug, Clone, Default)]
pub struct ManageSnapshot {
    /// Display name, description, metadata, project and user of the new snapshot.
    pub create: CreateSnapshot,
    /// What identifies the snapshot on the back end.
    pub provider_location: String,
    /// Driver-specific options.
    pub driver_options: BTreeMap<String, String>,
}

/// `POST /v2/snapshots/manage`: Manila's `manage_snapshot` checks (the share is
/// available and not replicated, no snapshot has the same provider location), then the
/// snapshot (`manage_starting`), its quota and the manage operation in one transaction.
pub async fn manage_snapshot(
    core: &Core,
    share: &Share,
    req: ManageSnapshot,
) -> CoreResult<Snapshot> {
    if share.status() != Some(shares::STATUS_AVAILABLE) {
        return Err(CoreError::conflict(format!(
            "Invalid share: Share {} status must be available, but current status is: {}.",
            share.row.id,
            share.status().unwrap_or_default()
        )));
    }
    if share.has_replicas() {
        return Err(CoreError::conflict(shares::invalid_share_text(format!(
            "Share {} has replicas. Snapshots of this share cannot currently be managed until all replicas are removed.",
            share.row.id
        ))));
    }
    let existing = list_snapshots(core, None, Some(share.row.id)).await?;
    if let Some(taken) = existing
        .iter()
        .find(|s| s.provider_location() == Some(req.provider_location.as_str()))
    {
        // `ManageInvalidShareSnapshot`, which names the snapshot already managed there.
        return Err(CoreError::conflict(format!(
            "Manage existing share snapshot failed due to invalid share snapshot: A share snapshot {} is already managed for provider location {}.",
            taken.row.id, req.provider_location
        )));
    }
    let Some(instance) = share.instance() else {
        return Err(CoreError::conflict("Invalid share: Share has no instance."));
    };
    let size = share.row.size_gb;
    let quota = snapshot_charge(
        core,
        share,
        &req.create.project_id,
        &req.create.user_id,
        size,
    )
    .await?;
    if let Some(over) = first_over(core, &quota, &["snapshot_gigabytes", "snapshots"]).await? {
        return Err(snapshot_quota_error(over));
    }
    let now = core.now();
    let id = Uuid::new_v4();
    let instance_id = Uuid::new_v4();
    let payload = json!({"driver_options": req.driver_options});
    let operations = ops::for_instance_host(
        ops::MANAGE_SNAPSHOT,
        instance_id,
        &instance.host,
        payload,
        now,
    )
    .into_iter()
    .collect();
    let new = NewSnapshot {
        snapshot: SnapshotRow {
            id,
            share_id: share.row.id,
            project_id: req.create.project_id,
            user_id: req.create.user_id,
            name: req.create.name,
            description: req.create.description,
            size_gb: size,
            share_size: size,
            share_proto: share.row.share_proto.clone(),
            metadata: req.create.metadata,
            created_at: now,
            updated_at: None,
            instances: Vec::new(),
        },
        instances: vec![NewSnapshotInstance {
            id: instance_id,
            snapshot_id: id,
            share_instance_id: instance.id,
            status: STATUS_MANAGE_STARTING.to_owned(),
            progress: Some("0%".to_owned()),
            provider_location: Some(req.provider_location),
        }],
        quota,
        operations,
    };
    let row = core
        .store
        .create_snapshot(new)
        .await
        .map_err(snapshot_quota_error)?;
    core.wake_workers();
    assemble(core, row).await
}

/// `unmanage` (2.12+): Manila's checks, then every instance → `unmanage_starting` with an
/// unmanage operation.
pub async fn unmanage_snapshot(core: &Core, share: &Share, snapshot: &Snapshot) -> CoreResult<()> {
    if share.has_replicas() {
        return Err(CoreError::conflict(format!(
            "Share {} has replicas. Snapshots of this share cannot currently be unmanaged until all replicas are removed.",
            share.row.id
        )));
    }
    let status = snapshot.status();
    if TRANSITIONAL_STATUSES.contains(&status) {
        return Err(CoreError::forbidden(format!(
            "Snapshot with transitional state cannot be unmanaged. Snapshot '{}' is in '{status}' state.",
            snapshot.row.id
        )));
    }
    let now = core.now();
    let mut updates = Vec::new();
    let mut operations = Vec::new();
    for instance in &snapshot.row.instances {
        operations.extend(ops::for_instance_host(
            ops::UNMANAGE_SNAPSHOT,
            instance.id,
            instance_host(snapshot, instance),
            json!({}),
            now,
        ));
        updates.push(SnapshotInstanceCas {
            id: instance.id,
            expected_statuses: vec![instance.status.clone()],
            update: SnapshotInstanceUpdate {
                status: Some(STATUS_UNMANAGE_STARTING.to_owned()),
                ..Default::default()
            },
        });
    }
    core.store
        .update_snapshot_instances_if(updates, operations, now)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => CoreError::forbidden(format!(
                "Snapshot with transitional state cannot be unmanaged. Snapshot '{}' is in '{status}' state.",
                snapshot.row.id
            )),
            other => other.into(),
        })?;
    core.wake_workers();
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Access rules of mountable snapshots
// ---------------------------------------------------------------------------------------

/// A rule's state as Manila shows it: the worst of its instances' states.
pub fn access_state(rule: &SnapshotAccessRuleRow) -> &'static str {
    let states: Vec<&str> = rule.instance_states.values().map(String::as_str).collect();
    if states.contains(&"error") {
        "error"
    } else if states
        .iter()
        .any(|s| matches!(*s, "queued_to_deny" | "denying"))
    {
        "denying"
    } else if states
        .iter()
        .any(|s| matches!(*s, "queued_to_apply" | "applying"))
    {
        "applying"
    } else {
        "active"
    }
}

/// `allow_access` on a snapshot: the rule with a `queued_to_apply` mapping per instance and
/// an update operation per instance's back end.
pub async fn allow_access(
    core: &Core,
    snapshot: &Snapshot,
    access_type: &str,
    access_to: &str,
) -> CoreResult<SnapshotAccessRuleRow> {
    let existing = core
        .store
        .list_snapshot_access_rules(snapshot.row.id)
        .await?;
    // Every rule still stored counts, including one being denied: Manila's
    // `share_snapshot_check_for_existing_access` sees a rule until its last instance
    // mapping is gone, and the rule leaves the access list at the same moment.
    if existing.iter().any(|r| {
        r.access_type == access_type && same_access_to(access_type, &r.access_to, access_to)
    }) {
        return Err(CoreError::bad_request(format!(
            "Share snapshot access exists: Share snapshot access {access_type}:{access_to} exists."
        )));
    }
    let now = core.now();
    let operations = snapshot
        .row
        .instances
        .iter()
        .filter_map(|i| {
            ops::for_instance_host(
                ops::SNAPSHOT_UPDATE_ACCESS,
                i.id,
                instance_host(snapshot, i),
                json!({}),
                now,
            )
        })
        .collect();
    let new = NewSnapshotAccessRule {
        id: Uuid::new_v4(),
        snapshot_id: snapshot.row.id,
        access_type: access_type.to_owned(),
        access_to: access_to.to_owned(),
        instance_ids: snapshot.row.instances.iter().map(|i| i.id).collect(),
        operations,
        now,
    };
    let rule = core
        .store
        .insert_snapshot_access_rule(new)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => CoreError::bad_request(format!(
                "Share snapshot access exists: Share snapshot access {access_type}:{access_to} exists."
            )),
            other => other.into(),
        })?;
    core.wake_workers();
    Ok(rule)
}

/// `deny_access` on a snapshot.
pub async fn deny_access(core: &Core, snapshot: &Snapshot, access_id: &str) -> CoreResult<()> {
    let rule = match Uuid::parse_str(access_id) {
        Ok(id) => match core.store.get_snapshot_access_rule(id).await {
            Ok(rule) => Some(rule),
            Err(StoreError::NotFound(_)) => None,
            Err(err) => return Err(err.into()),
        },
        Err(_) => None,
    };
    let Some(rule) = rule else {
        return Err(CoreError::not_found(format!(
            "Share snapshot access {access_id} could not be found."
        )));
    };
    if rule.snapshot_id != snapshot.row.id {
        return Err(CoreError::bad_request(
            "Access rule provided is not associated with given snapshot.",
        ));
    }
    let now = core.now();
    let operations = snapshot
        .row
        .instances
        .iter()
        .filter(|i| rule.instance_states.contains_key(&i.id))
        .filter_map(|i| {
            ops::for_instance_host(
                ops::SNAPSHOT_UPDATE_ACCESS,
                i.id,
                instance_host(snapshot, i),
                json!({}),
                now,
            )
        })
        .collect();
    core.store
        .mark_snapshot_access_rule_for_deny(rule.id, operations, now)
        .await?;
    core.wake_workers();
    Ok(())
}

/// Metadata of a request body as a validated map (the share rules apply).
pub fn validate_metadata(value: Option<&Value>) -> CoreResult<BTreeMap<String, String>> {
    match value {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => shares::validate_metadata(map),
        Some(_) => Err(CoreError::bad_request(shares::MALFORMED_BODY)),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn share_instance(id: Uuid, replica_state: Option<&str>) -> ShareInstanceRow {
        ShareInstanceRow {
            id,
            share_id: Uuid::nil(),
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
            created_at: Utc::now(),
            updated_at: None,
            scheduled_at: None,
            launched_at: None,
            terminated_at: None,
            replica_epoch: 0,
        }
    }

    fn snapshot(instances: &[(Option<&str>, &str)]) -> Snapshot {
        let mut share_instances = Vec::new();
        let mut rows = Vec::new();
        for (replica_state, status) in instances {
            let si = Uuid::new_v4();
            share_instances.push(share_instance(si, *replica_state));
            rows.push(SnapshotInstanceRow {
                id: Uuid::new_v4(),
                snapshot_id: Uuid::nil(),
                share_instance_id: si,
                status: (*status).to_owned(),
                progress: Some(format!("{status}%")),
                provider_location: None,
                created_at: Utc::now(),
                updated_at: None,
            });
        }
        Snapshot {
            row: SnapshotRow {
                id: Uuid::new_v4(),
                share_id: Uuid::nil(),
                project_id: "p".to_owned(),
                user_id: "u".to_owned(),
                name: None,
                description: None,
                size_gb: 1,
                share_size: 1,
                share_proto: "NFS".to_owned(),
                metadata: BTreeMap::new(),
                created_at: Utc::now(),
                updated_at: None,
                instances: rows,
            },
            share_instances,
        }
    }

    #[test]
    fn plain_snapshot_shows_its_instance() {
        let snap = snapshot(&[(None, "creating")]);
        assert_eq!(snap.status(), "creating");
        assert_eq!(snap.progress(), Some("creating%"));
    }

    #[test]
    fn replicated_status_aggregates_active_and_in_sync_instances() {
        // The out_of_sync replica's error does not count; the in_sync one's creating does.
        let snap = snapshot(&[
            (Some("out_of_sync"), "error"),
            (Some("active"), "available"),
            (Some("in_sync"), "creating"),
        ]);
        assert_eq!(snap.status(), "creating");
        assert_eq!(
            snap.instance_status(),
            "available",
            "the active's instance is shown"
        );
        let snap = snapshot(&[(Some("active"), "available"), (Some("in_sync"), "error")]);
        assert_eq!(snap.status(), "error");
        let snap = snapshot(&[
            (Some("active"), "available"),
            (Some("out_of_sync"), "creating"),
        ]);
        assert_eq!(snap.status(), "available");
        let snap = snapshot(&[(Some("active"), "deleting"), (Some("in_sync"), "error")]);
        assert_eq!(snap.status(), "deleting");
    }

    #[test]
    fn access_state_is_the_worst() {
        let rule = |states: &[&str]| SnapshotAccessRuleRow {
            id: Uuid::nil(),
            snapshot_id: Uuid::nil(),
            access_type: "ip".to_owned(),
            access_to: "1.1.1.1".to_owned(),
            created_at: Utc::now(),
            updated_at: None,
            instance_states: states
                .iter()
                .map(|s| (Uuid::new_v4(), (*s).to_owned()))
                .collect(),
        };
        assert_eq!(
            access_state(&rule(&["active", "queued_to_apply"])),
            "applying"
        );
        assert_eq!(access_state(&rule(&["active", "error"])), "error");
        assert_eq!(access_state(&rule(&["active"])), "active");
        assert_eq!(access_state(&rule(&["denying"])), "denying");
    }
}
