//! The share role's snapshot work (Manila's `ShareManager.create_snapshot`,
//! `create_replicated_snapshot`, `delete_snapshot`, `revert_to_snapshot`,
//! `manage_snapshot`, `unmanage_snapshot`, `update_snapshot_access` and the periodic
//! `_update_replica_snapshot`): the handlers of the snapshot operations queued for one back
//! end, dispatched by [`super::share_manager`].
//!
//! Every handler reads the snapshot instance first and does nothing unless it is in the
//! state its operation expects (`creating`, `deleting`, `restoring`, `manage_starting`,
//! `unmanage_starting`), so a re-run after a crash is harmless; state changes are
//! compare-and-set on that state. Operations on snapshots of replicated shares run under the
//! share's replica lock, so they never interleave with a promotion or a replica deletion.
//! Driver failures become `error` states and user messages; only "could not decide"
//! failures are returned as `Err` and retried.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use shoal_driver::{
    AccessRule, AccessRuleResult, ExportLocation, ReplicaContext, ReplicaRef, SnapshotProgress,
    SnapshotRef, SnapshotResult,
};
use shoal_store::{
    NewOperation, NewSnapshotExportLocation, OperationRow, ShareInstanceCas, ShareInstanceRow,
    ShareInstanceUpdate, ShareRow, ShareUpdate, SnapshotInstanceCas, SnapshotInstanceFilter,
    SnapshotInstanceRow, SnapshotInstanceUpdate, SnapshotRow, SnapshotUpdate, StoreError,
};
use tracing::{info, warn};
use uuid::Uuid;

use super::share_manager::ShareManagerHandler;
use crate::drivers::Backend;
use crate::ops::{self, DeletePayload, RevertPayload};
use crate::snapshots::{self, snapshot_release};
use crate::{Core, CoreResult, messages, replica_locks};

/// Runs the snapshot operations of one back end.
pub struct SnapshotManager {
    core: Arc<Core>,
    backend: Backend,
}

/// A snapshot instance with everything a driver call needs.
struct Loaded {
    instance: SnapshotInstanceRow,
    snapshot: SnapshotRow,
    share_instance: ShareInstanceRow,
    share: ShareRow,
}

/// Payload of [`ops::MANAGE_SNAPSHOT`].
#[derive(Debug, Default, Deserialize)]
struct ManagePayload {
    #[serde(default)]
    driver_options: BTreeMap<String, String>,
}

fn set_status(id: Uuid, from: &[&str], status: &str) -> SnapshotInstanceCas {
    SnapshotInstanceCas {
        id,
        expected_statuses: from.iter().map(|s| (*s).to_owned()).collect(),
        update: SnapshotInstanceUpdate {
            status: Some(status.to_owned()),
            ..Default::default()
        },
    }
}

/// The stored form of a snapshot's export locations.
fn snapshot_locations(locations: &[ExportLocation]) -> Vec<NewSnapshotExportLocation> {
    locations
        .iter()
        .map(|l| NewSnapshotExportLocation {
            path: l.path.clone(),
            is_admin_only: l.is_admin_only,
        })
        .collect()
}

/// The driver's view of a snapshot instance.
pub(crate) fn snapshot_ref(
    instance: &SnapshotInstanceRow,
    snapshot: &SnapshotRow,
    share_instance: &ShareInstanceRow,
    share: &ShareRow,
) -> SnapshotRef {
    SnapshotRef {
        id: instance.id.to_string(),
        snapshot_id: snapshot.id.to_string(),
        share_instance: ShareManagerHandler::instance_ref(share_instance, share),
        host: share_instance.host.clone(),
        size_gb: u64::try_from(snapshot.size_gb).unwrap_or(0),
        provider_location: instance.provider_location.clone(),
    }
}

impl SnapshotManager {
    /// Snapshot handler of `backend`.
    pub fn new(core: Arc<Core>, backend: Backend) -> Self {
        Self { core, backend }
    }

    /// Whether this module handles operations of `kind`.
    pub fn handles(kind: &str) -> bool {
        matches!(
            kind,
            ops::CREATE_SNAPSHOT
                | ops::CREATE_REPLICA_SNAPSHOT
                | ops::UPDATE_REPLICA_SNAPSHOT
                | ops::DELETE_SNAPSHOT
                | ops::REVERT_TO_SNAPSHOT
                | ops::MANAGE_SNAPSHOT
                | ops::UNMANAGE_SNAPSHOT
                | ops::SNAPSHOT_UPDATE_ACCESS
        )
    }

    /// Runs a snapshot operation on `id` (a snapshot instance; the share instance for a
    /// revert), under the share's replica lock when the share is replicated.
    pub async fn handle(&self, op: &OperationRow, id: Uuid) -> CoreResult<()> {
        let share_id = match self.share_of(op, id).await? {
            Some(share) => share,
            None => return Ok(()),
        };
        let replicated = match self.core.store.get_share(share_id).await {
            Ok(share) => share.replication_type.is_some(),
            Err(StoreError::NotFound(_)) => return Ok(()),
            Err(err) => return Err(err.into()),
        };
        let guard = if replicated {
            Some(replica_locks::lock_share(&self.core, share_id, &op.kind).await?)
        } else {
            None
        };
        let payload = op.payload.clone();
        let outcome = match op.kind.as_str() {
            ops::CREATE_SNAPSHOT => self.create(id).await,
            ops::CREATE_REPLICA_SNAPSHOT | ops::UPDATE_REPLICA_SNAPSHOT => {
                self.replica_snapshot(id, op.kind == ops::CREATE_REPLICA_SNAPSHOT)
                    .await
            }
            ops::DELETE_SNAPSHOT => {
                let payload: DeletePayload = serde_json::from_value(payload).unwrap_or_default();
                self.delete(id, payload.force).await
            }
            ops::REVERT_TO_SNAPSHOT => match serde_json::from_value::<RevertPayload>(payload) {
                Ok(payload) => self.revert(id, payload).await,
                Err(_) => {
                    warn!(op.id = op.id, "operation {} has a malformed payload", op.id);
                    Ok(())
                }
            },
            ops::MANAGE_SNAPSHOT => {
                let payload: ManagePayload = serde_json::from_value(payload).unwrap_or_default();
                self.manage(id, payload).await
            }
            ops::UNMANAGE_SNAPSHOT => self.unmanage(id).await,
            ops::SNAPSHOT_UPDATE_ACCESS => self.update_access(id).await,
            _ => Ok(()),
        };
        if let Some(guard) = guard {
            guard.release().await;
        }
        outcome
    }

    /// The share an operation is about (`None` when its target is gone).
    async fn share_of(&self, op: &OperationRow, id: Uuid) -> CoreResult<Option<Uuid>> {
        let store = &self.core.store;
        if op.kind == ops::REVERT_TO_SNAPSHOT {
            return match store.get_share_instance(id).await {
                Ok(instance) => Ok(Some(instance.share_id)),
                Err(StoreError::NotFound(_)) => Ok(None),
                Err(err) => Err(err.into()),
            };
        }
        match store.get_snapshot_instance(id).await {
            Ok(instance) => match store.get_snapshot(instance.snapshot_id).await {
                Ok(snapshot) => Ok(Some(snapshot.share_id)),
                Err(StoreError::NotFound(_)) => Ok(None),
                Err(err) => Err(err.into()),
            },
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    async fn load(&self, id: Uuid) -> CoreResult<Option<Loaded>> {
        let store = &self.core.store;
        let found = async {
            let instance = store.get_snapshot_instance(id).await?;
            let snapshot = store.get_snapshot(instance.snapshot_id).await?;
            let share_instance = store.get_share_instance(instance.share_instance_id).await?;
            let share = store.get_share(snapshot.share_id).await?;
            Ok::<_, StoreError>(Loaded {
                instance,
                snapshot,
                share_instance,
                share,
            })
        }
        .await;
        match found {
            Ok(loaded) => Ok(Some(loaded)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Applies `updates` (all or nothing) with `operations`; a lost compare-and-set means
    /// another run or an API action moved on, which is not an error.
    async fn cas(
        &self,
        updates: Vec<SnapshotInstanceCas>,
        operations: Vec<NewOperation>,
    ) -> CoreResult<bool> {
        match self
            .core
            .store
            .update_snapshot_instances_if(updates, operations, self.core.now())
            .await
        {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict(_) | StoreError::NotFound(_)) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    async fn message(&self, snapshot: &SnapshotRow, action: &str) {
        if let Err(err) = messages::record(
            &self.core,
            &snapshot.project_id,
            messages::RESOURCE_SHARE_SNAPSHOT,
            &snapshot.id.to_string(),
            action,
            messages::DETAIL_UNEXPECTED,
            messages::LEVEL_ERROR,
        )
        .await
        {
            warn!(snapshot.id = %snapshot.id, error = %err, "recording a user message for snapshot {} failed: {err}", snapshot.id);
        }
    }

    /// The update that records a driver's answer.
    fn outcome_update(result: &SnapshotResult) -> SnapshotInstanceUpdate {
        let available = result.progress == SnapshotProgress::Available;
        SnapshotInstanceUpdate {
            status: available.then(|| snapshots::STATUS_AVAILABLE.to_owned()),
            progress: available.then(|| Some("100%".to_owned())),
            provider_location: result.provider_location.clone().map(Some),
        }
    }

    async fn store_locations(&self, id: Uuid, result: &SnapshotResult) -> CoreResult<()> {
        if result.export_locations.is_empty() {
            return Ok(());
        }
        match self
            .core
            .store
            .replace_snapshot_export_locations(
                id,
                snapshot_locations(&result.export_locations),
                self.core.now(),
            )
            .await
        {
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// `create_snapshot` on the share's (active) instance. For a replicated share, once it is
    /// available the secondaries' instances are created from it (`create_replica_snapshot`
    /// on their own back ends), enqueued in the same transaction.
    async fn create(&self, id: Uuid) -> CoreResult<()> {
        let Some(l) = self.load(id).await? else {
            return Ok(());
        };
        if l.instance.status != snapshots::STATUS_CREATING {
            return Ok(());
        }
        let reference = snapshot_ref(&l.instance, &l.snapshot, &l.share_instance, &l.share);
        let others: Vec<&SnapshotInstanceRow> =
            l.snapshot.instances.iter().filter(|i| i.id != id).collect();
        match self.backend.driver.create_snapshot(&reference).await {
            Ok(result) => {
                self.store_locations(id, &result).await?;
                let available = result.progress == SnapshotProgress::Available;
                let mut operations = Vec::new();
                if available {
                    for other in others
                        .iter()
                        .filter(|i| i.status == snapshots::STATUS_CREATING)
                    {
                        let host = self
                            .core
                            .store
                            .get_share_instance(other.share_instance_id)
                            .await;
                        let host = match host {
                            Ok(si) => si.host,
                            Err(StoreError::NotFound(_)) => continue,
                            Err(err) => return Err(err.into()),
                        };
                        operations.extend(ops::for_instance_host(
                            ops::CREATE_REPLICA_SNAPSHOT,
                            other.id,
                            &host,
                            serde_json::json!({}),
                            self.core.now(),
                        ));
                    }
                }
                let cas = SnapshotInstanceCas {
                    id,
                    expected_statuses: vec![snapshots::STATUS_CREATING.to_owned()],
                    update: Self::outcome_update(&result),
                };
                if self.cas(vec![cas], operations).await? {
                    info!(snapshot.id = %l.snapshot.id, snapshot_instance.id = %id, available, "snapshot instance {id} created");
                }
            }
            Err(err) => {
                warn!(snapshot_instance.id = %id, error = %err, "creating snapshot instance {id} failed: {err}");
                // The secondaries cannot be made without the active's instance.
                let mut updates = vec![set_status(
                    id,
                    &[snapshots::STATUS_CREATING],
                    snapshots::STATUS_ERROR,
                )];
                updates.extend(
                    others
                        .iter()
                        .filter(|i| i.status == snapshots::STATUS_CREATING)
                        .map(|i| {
                            set_status(i.id, &[snapshots::STATUS_CREATING], snapshots::STATUS_ERROR)
                        }),
                );
                if self.cas(updates, Vec::new()).await? {
                    self.message(&l.snapshot, messages::ACTION_CREATE).await;
                }
            }
        }
        Ok(())
    }

    /// The driver's view of every replica of the share and the share's rules, for the
    /// replica snapshot calls.
    async fn replica_refs(
        &self,
        share: &ShareRow,
    ) -> CoreResult<(Vec<ReplicaRef>, Vec<AccessRule>)> {
        let store = &self.core.store;
        let addresses = crate::services::replication_addresses(&self.core).await?;
        let mut refs = Vec::new();
        for replica in store.list_share_replicas(None, Some(share.id)).await? {
            let export_locations = store
                .list_export_locations(replica.id)
                .await?
                .into_iter()
                .map(|l| ExportLocation {
                    path: l.path,
                    is_admin_only: l.is_admin_only,
                    preferred: l.preferred,
                    metadata: l.metadata,
                })
                .collect();
            refs.push(ReplicaRef {
                instance: ShareManagerHandler::instance_ref(&replica, share),
                host: replica.host.clone(),
                replica_state: replica.replica_state.clone(),
                export_locations,
                replication_address: addresses.of(&replica.host),
                replica_epoch: replica.replica_epoch,
            });
        }
        let rules = store
            .list_access_rules(share.id)
            .await?
            .into_iter()
            .filter(|r| {
                !r.instance_states
                    .values()
                    .all(|s| s == "queued_to_deny" || s == "denying")
            })
            .map(|r| AccessRule {
                id: r.id.to_string(),
                access_type: r.access_type,
                access_to: r.access_to,
                access_level: r.access_level,
            })
            .collect();
        Ok((refs, rules))
    }

    /// `create_replica_snapshot` / `update_replica_snapshot` of a secondary's instance,
    /// from the active replica's instance of the same snapshot, which must be available.
    async fn replica_snapshot(&self, id: Uuid, create: bool) -> CoreResult<()> {
        let Some(l) = self.load(id).await? else {
            return Ok(());
        };
        if l.instance.status != snapshots::STATUS_CREATING {
            return Ok(());
        }
        // A replica still being created copies its snapshots once it exists (its creation
        // enqueues this again).
        if l.share_instance.status != "available" {
            return Ok(());
        }
        let store = &self.core.store;
        let replicas = store.list_share_replicas(None, Some(l.share.id)).await?;
        let Some(active) = replicas
            .iter()
            .find(|r| r.replica_state.as_deref() == Some("active"))
        else {
            return Ok(());
        };
        let Some(active_instance) = l
            .snapshot
            .instances
            .iter()
            .find(|i| i.share_instance_id == active.id)
        else {
            // The active's instance is gone: the snapshot was deleted by a request that
            // read its instances before this one was added.
            return self.follow_deletion(&l).await;
        };
        match active_instance.status.as_str() {
            snapshots::STATUS_AVAILABLE => {}
            // The active's create enqueues this again once it is available.
            snapshots::STATUS_CREATING => return Ok(()),
            snapshots::STATUS_DELETING => return self.follow_deletion(&l).await,
            _ => {
                if self
                    .cas(
                        vec![set_status(
                            id,
                            &[snapshots::STATUS_CREATING],
                            snapshots::STATUS_ERROR,
                        )],
                        Vec::new(),
                    )
                    .await?
                {
                    self.message(&l.snapshot, messages::ACTION_CREATE).await;
                }
                return Ok(());
            }
        }
        let (refs, rules) = self.replica_refs(&l.share).await?;
        let (Some(replica_ref), Some(active_ref)) = (
            refs.iter()
                .find(|r| r.instance.id == l.share_instance.id.to_string()),
            refs.iter().find(|r| r.instance.id == active.id.to_string()),
        ) else {
            return Ok(());
        };
        let ctx = ReplicaContext {
            replication_type: l.share.replication_type.as_deref().unwrap_or_default(),
            active: Some(active_ref),
            replicas: &refs,
            access_rules: &rules,
            full_sync: false,
        };
        let reference = snapshot_ref(&l.instance, &l.snapshot, &l.share_instance, &l.share);
        let active_reference = snapshot_ref(active_instance, &l.snapshot, active, &l.share);
        let driver = &self.backend.driver;
        let outcome = if create {
            driver
                .create_replica_snapshot(replica_ref, &ctx, &reference, &active_reference)
                .await
        } else {
            driver
                .update_replica_snapshot(replica_ref, &ctx, &reference, &active_reference)
                .await
        };
        match outcome {
            Ok(result) => {
                self.store_locations(id, &result).await?;
                let cas = SnapshotInstanceCas {
                    id,
                    expected_statuses: vec![snapshots::STATUS_CREATING.to_owned()],
                    update: Self::outcome_update(&result),
                };
                self.cas(vec![cas], Vec::new()).await?;
            }
            Err(err) => {
                // The copy's source may have gone with a deletion that started meanwhile.
                if let Some(now) = self.load(id).await?
                    && now.snapshot.instances.iter().any(|i| {
                        i.share_instance_id == active.id && i.status == snapshots::STATUS_DELETING
                    })
                {
                    return self.follow_deletion(&now).await;
                }
                warn!(snapshot_instance.id = %id, error = %err, "replica snapshot instance {id} failed: {err}");
                if self
                    .cas(
                        vec![set_status(
                            id,
                            &[snapshots::STATUS_CREATING],
                            snapshots::STATUS_ERROR,
                        )],
                        Vec::new(),
                    )
                    .await?
                {
                    self.message(&l.snapshot, messages::ACTION_CREATE).await;
                }
            }
        }
        Ok(())
    }

    /// A secondary's instance still `creating` of a snapshot that is being deleted: it is
    /// deleted too (`deleting` with a `delete_snapshot` operation on its back end), rather
    /// than waiting in `creating` for a source that will not come back, or going to `error`
    /// and holding the snapshot, and its quota, after the request to delete it was accepted.
    /// This happens when the delete request read the snapshot's instances just before the
    /// replica's creation added this one.
    async fn follow_deletion(&self, l: &Loaded) -> CoreResult<()> {
        let id = l.instance.id;
        let delete = ops::for_instance_host(
            ops::DELETE_SNAPSHOT,
            id,
            &l.share_instance.host,
            serde_json::json!(ops::DeletePayload::default()),
            self.core.now(),
        );
        let moved = self
            .cas(
                vec![set_status(
                    id,
                    &[snapshots::STATUS_CREATING],
                    snapshots::STATUS_DELETING,
                )],
                delete.into_iter().collect(),
            )
            .await?;
        if moved {
            info!(snapshot.id = %l.snapshot.id, snapshot_instance.id = %id, "snapshot {} is being deleted: its instance {id} on replica {} follows", l.snapshot.id, l.share_instance.id);
            self.core.wake_workers();
        }
        Ok(())
    }

    /// Deletes a snapshot instance on the back end, then its rows; the last instance takes
    /// the snapshot and its quota with it.
    async fn delete(&self, id: Uuid, force: bool) -> CoreResult<()> {
        let Some(l) = self.load(id).await? else {
            return Ok(());
        };
        if l.instance.status != snapshots::STATUS_DELETING {
            return Ok(());
        }
        let reference = snapshot_ref(&l.instance, &l.snapshot, &l.share_instance, &l.share);
        if let Err(err) = self.backend.driver.delete_snapshot(&reference).await {
            warn!(snapshot_instance.id = %id, error = %err, force, "deleting snapshot instance {id} failed: {err}");
            if !force {
                if self
                    .cas(
                        vec![set_status(
                            id,
                            &[snapshots::STATUS_DELETING],
                            snapshots::STATUS_ERROR_DELETING,
                        )],
                        Vec::new(),
                    )
                    .await?
                {
                    self.message(&l.snapshot, messages::ACTION_DELETE).await;
                }
                return Ok(());
            }
        }
        let gone = self
            .core
            .store
            .delete_snapshot_instance(
                id,
                snapshot_release(
                    &l.snapshot,
                    snapshots::snapshot_share_type(Some(&l.share_instance), l.share.share_type_id),
                ),
                self.core.now(),
            )
            .await?;
        info!(snapshot.id = %l.snapshot.id, snapshot_instance.id = %id, snapshot_gone = gone, "deleted snapshot instance {id}");
        Ok(())
    }

    /// Reverts share instance `id` to the snapshot instance of the payload (Manila's
    /// `revert_to_snapshot`): on success the share takes the snapshot's size and both go
    /// back to `available` (the other replicas of a replicated share to `out_of_sync`,
    /// with a resync queued); on failure the share goes to `reverting_error`.
    async fn revert(&self, id: Uuid, payload: RevertPayload) -> CoreResult<()> {
        let store = &self.core.store;
        let Some(l) = self.load(payload.snapshot_instance_id).await? else {
            return Ok(());
        };
        if l.share_instance.id != id
            || l.share_instance.status != snapshots::SHARE_STATUS_REVERTING
            || l.instance.status != snapshots::STATUS_RESTORING
        {
            return Ok(());
        }
        let now = self.core.now();
        let reference = snapshot_ref(&l.instance, &l.snapshot, &l.share_instance, &l.share);
        let restore_snapshot = set_status(
            l.instance.id,
            &[snapshots::STATUS_RESTORING],
            snapshots::STATUS_AVAILABLE,
        );
        match self.backend.driver.revert_to_snapshot(&reference).await {
            Ok(()) => {
                if l.snapshot.size_gb != l.share.size_gb {
                    store
                        .update_share(
                            l.share.id,
                            ShareUpdate {
                                size_gb: Some(l.snapshot.size_gb),
                                ..Default::default()
                            },
                            now,
                        )
                        .await?;
                }
                store
                    .commit_reservations(&payload.reservations, now)
                    .await?;
                let share_back = ShareInstanceCas {
                    id,
                    expected_statuses: vec![snapshots::SHARE_STATUS_REVERTING.to_owned()],
                    expected_replica_state: None,
                    update: ShareInstanceUpdate {
                        status: Some("available".to_owned()),
                        ..Default::default()
                    },
                };
                let mut secondaries = Vec::new();
                let mut operations = Vec::new();
                if l.share.replication_type.is_some() {
                    // The secondaries no longer hold what the active holds: out of sync, and
                    // a resync queued for each.
                    for replica in store.list_share_replicas(None, Some(l.share.id)).await? {
                        if replica.id == id
                            || replica.status != "available"
                            || replica.replica_state.as_deref() != Some("in_sync")
                        {
                            continue;
                        }
                        secondaries.push(ShareInstanceCas {
                            id: replica.id,
                            expected_statuses: vec!["available".to_owned()],
                            expected_replica_state: Some(Some("in_sync".to_owned())),
                            update: ShareInstanceUpdate {
                                replica_state: Some(Some("out_of_sync".to_owned())),
                                ..Default::default()
                            },
                        });
                        operations.extend(ops::for_instance_host(
                            ops::UPDATE_SHARE_REPLICA,
                            replica.id,
                            &replica.host,
                            serde_json::json!(ops::UpdateReplicaPayload {
                                trigger: "resync".to_owned(),
                            }),
                            now,
                        ));
                    }
                }
                let mut updates = vec![share_back.clone()];
                updates.extend(secondaries);
                let done = store
                    .update_share_and_snapshot_instances_if(
                        updates,
                        vec![restore_snapshot.clone()],
                        operations,
                        now,
                    )
                    .await;
                let done = match done {
                    // A secondary changed meanwhile (a reset, a delete): finish the revert
                    // itself anyway; its next periodic update catches it up.
                    Err(StoreError::Conflict(_) | StoreError::NotFound(_)) => {
                        store
                            .update_share_and_snapshot_instances_if(
                                vec![share_back],
                                vec![restore_snapshot],
                                Vec::new(),
                                now,
                            )
                            .await
                    }
                    other => other,
                };
                match done {
                    Ok(()) => {
                        info!(share.id = %l.share.id, snapshot.id = %l.snapshot.id, "share {} reverted to snapshot {}", l.share.id, l.snapshot.id);
                    }
                    Err(StoreError::Conflict(_) | StoreError::NotFound(_)) => {}
                    Err(err) => return Err(err.into()),
                }
            }
            Err(err) => {
                warn!(share_instance.id = %id, error = %err, "reverting share instance {id} failed: {err}");
                store
                    .rollback_reservations(&payload.reservations, now)
                    .await?;
                let share_error = ShareInstanceCas {
                    id,
                    expected_statuses: vec![snapshots::SHARE_STATUS_REVERTING.to_owned()],
                    expected_replica_state: None,
                    update: ShareInstanceUpdate {
                        status: Some(snapshots::SHARE_STATUS_REVERTING_ERROR.to_owned()),
                        ..Default::default()
                    },
                };
                match store
                    .update_share_and_snapshot_instances_if(
                        vec![share_error],
                        vec![restore_snapshot],
                        Vec::new(),
                        now,
                    )
                    .await
                {
                    Ok(()) => {
                        if let Err(err) = messages::record(
                            &self.core,
                            &l.share.project_id,
                            messages::RESOURCE_SHARE,
                            &l.share.id.to_string(),
                            messages::ACTION_REVERT_TO_SNAPSHOT,
                            messages::DETAIL_UNEXPECTED,
                            messages::LEVEL_ERROR,
                        )
                        .await
                        {
                            warn!(error = %err, "recording a user message failed: {err}");
                        }
                    }
                    Err(StoreError::Conflict(_) | StoreError::NotFound(_)) => {}
                    Err(err) => return Err(err.into()),
                }
            }
        }
        Ok(())
    }

    /// Adopts the snapshot named by the instance's provider location.
    async fn manage(&self, id: Uuid, payload: ManagePayload) -> CoreResult<()> {
        let Some(l) = self.load(id).await? else {
            return Ok(());
        };
        if l.instance.status != snapshots::STATUS_MANAGE_STARTING {
            return Ok(());
        }
        let reference = snapshot_ref(&l.instance, &l.snapshot, &l.share_instance, &l.share);
        match self
            .backend
            .driver
            .manage_existing_snapshot(&reference, &payload.driver_options)
            .await
        {
            Ok(result) => {
                self.store_locations(id, &result).await?;
                let store = &self.core.store;
                let now = self.core.now();
                if let Some(size) = result.size_gb.and_then(|s| i64::try_from(s).ok())
                    && size > 0
                    && size != l.snapshot.size_gb
                {
                    // The quota was charged with the share's size; the measured size wins.
                    store
                        .update_snapshot(
                            l.snapshot.id,
                            SnapshotUpdate {
                                size_gb: Some(size),
                                ..Default::default()
                            },
                            now,
                        )
                        .await?;
                    let delta = shoal_store::QuotaRequest {
                        project_id: l.snapshot.project_id.clone(),
                        deltas: BTreeMap::from([(
                            "snapshot_gigabytes".to_owned(),
                            size - l.snapshot.size_gb,
                        )]),
                        limits: BTreeMap::new(),
                    };
                    store.charge_quota(delta, now).await?;
                }
                let mut update = Self::outcome_update(&result);
                update.status = Some(snapshots::STATUS_AVAILABLE.to_owned());
                update.progress = Some(Some("100%".to_owned()));
                let cas = SnapshotInstanceCas {
                    id,
                    expected_statuses: vec![snapshots::STATUS_MANAGE_STARTING.to_owned()],
                    update,
                };
                self.cas(vec![cas], Vec::new()).await?;
            }
            Err(err) => {
                warn!(snapshot_instance.id = %id, error = %err, "managing snapshot instance {id} failed: {err}");
                if self
                    .cas(
                        vec![set_status(
                            id,
                            &[snapshots::STATUS_MANAGE_STARTING],
                            snapshots::STATUS_MANAGE_ERROR,
                        )],
                        Vec::new(),
                    )
                    .await?
                {
                    self.message(&l.snapshot, messages::ACTION_CREATE).await;
                }
            }
        }
        Ok(())
    }

    /// Forgets the snapshot instance on the back end (its data stays), then its rows.
    async fn unmanage(&self, id: Uuid) -> CoreResult<()> {
        let Some(l) = self.load(id).await? else {
            return Ok(());
        };
        if l.instance.status != snapshots::STATUS_UNMANAGE_STARTING {
            return Ok(());
        }
        let reference = snapshot_ref(&l.instance, &l.snapshot, &l.share_instance, &l.share);
        if let Err(err) = self.backend.driver.unmanage_snapshot(&reference).await {
            warn!(snapshot_instance.id = %id, error = %err, "unmanaging snapshot instance {id} failed: {err}");
            if self
                .cas(
                    vec![set_status(
                        id,
                        &[snapshots::STATUS_UNMANAGE_STARTING],
                        snapshots::STATUS_UNMANAGE_ERROR,
                    )],
                    Vec::new(),
                )
                .await?
            {
                self.message(&l.snapshot, messages::ACTION_DELETE).await;
            }
            return Ok(());
        }
        self.core
            .store
            .delete_snapshot_instance(
                id,
                snapshot_release(
                    &l.snapshot,
                    snapshots::snapshot_share_type(Some(&l.share_instance), l.share.share_type_id),
                ),
                self.core.now(),
            )
            .await?;
        Ok(())
    }

    /// Brings a snapshot instance's rules to their wanted states.
    async fn update_access(&self, id: Uuid) -> CoreResult<()> {
        let Some(l) = self.load(id).await? else {
            return Ok(());
        };
        let store = &self.core.store;
        let now = self.core.now();
        let rules = store.list_snapshot_access_rules(l.snapshot.id).await?;
        let (mut keep, mut add, mut delete) = (Vec::new(), Vec::new(), Vec::new());
        for rule in &rules {
            let Some(state) = rule.instance_states.get(&id) else {
                continue;
            };
            let driver_rule = AccessRule {
                id: rule.id.to_string(),
                access_type: rule.access_type.clone(),
                access_to: rule.access_to.clone(),
                // Snapshots are read-only.
                access_level: "ro".to_owned(),
            };
            match state.as_str() {
                "queued_to_apply" | "applying" => {
                    ignore(
                        store
                            .set_snapshot_instance_access_state(
                                rule.id,
                                id,
                                &["queued_to_apply", "applying"],
                                "applying",
                                now,
                            )
                            .await,
                    )?;
                    add.push(driver_rule.clone());
                    keep.push(driver_rule);
                }
                "queued_to_deny" | "denying" => {
                    ignore(
                        store
                            .set_snapshot_instance_access_state(
                                rule.id,
                                id,
                                &["queued_to_deny", "denying"],
                                "denying",
                                now,
                            )
                            .await,
                    )?;
                    delete.push(driver_rule);
                }
                "active" => keep.push(driver_rule),
                _ => {}
            }
        }
        if add.is_empty() && delete.is_empty() {
            return Ok(());
        }
        let reference = snapshot_ref(&l.instance, &l.snapshot, &l.share_instance, &l.share);
        let results = match self
            .backend
            .driver
            .snapshot_update_access(&reference, &keep, &add, &delete)
            .await
        {
            Ok(results) => results,
            Err(err) => {
                warn!(snapshot_instance.id = %id, error = %err, "snapshot_update_access on {id} failed: {err}");
                add.iter()
                    .map(|r| (r.id.clone(), AccessRuleResult::Error(err.to_string())))
                    .collect()
            }
        };
        for rule in &add {
            let Ok(rule_id) = Uuid::parse_str(&rule.id) else {
                continue;
            };
            let state = match results.get(&rule.id) {
                Some(AccessRuleResult::Applied) => "active",
                _ => "error",
            };
            ignore(
                store
                    .set_snapshot_instance_access_state(rule_id, id, &["applying"], state, now)
                    .await,
            )?;
        }
        for rule in &delete {
            if let Ok(rule_id) = Uuid::parse_str(&rule.id) {
                ignore(store.remove_snapshot_instance_access(rule_id, id).await)?;
            }
        }
        Ok(())
    }
}

/// A lost compare-and-set or a row removed meanwhile is not an error for a handler.
fn ignore<T>(result: Result<T, StoreError>) -> CoreResult<()> {
    match result {
        Ok(_) | Err(StoreError::Conflict(_) | StoreError::NotFound(_)) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// The snapshot instance a share is created from, as the driver sees it (`None` when gone).
pub(crate) async fn source_snapshot_ref(
    core: &Core,
    snapshot_instance_id: Uuid,
) -> CoreResult<Option<SnapshotRef>> {
    let store = &core.store;
    let found = async {
        let instance = store.get_snapshot_instance(snapshot_instance_id).await?;
        let snapshot = store.get_snapshot(instance.snapshot_id).await?;
        let share_instance = store.get_share_instance(instance.share_instance_id).await?;
        let share = store.get_share(snapshot.share_id).await?;
        Ok::<_, StoreError>(snapshot_ref(&instance, &snapshot, &share_instance, &share))
    }
    .await;
    match found {
        Ok(r) => Ok(Some(r)),
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Gives a new replica an instance (`creating`) of every snapshot of its share that has
/// none there yet, with a `create_replica_snapshot` operation for each on the replica's back
/// end, in one transaction. A retry finds the instances and adds nothing; the operations it
/// enqueues again are harmless.
pub(crate) async fn add_snapshot_instances_for_new_replica(
    core: &Core,
    share_id: Uuid,
    replica: &ShareInstanceRow,
) -> CoreResult<()> {
    let store = &core.store;
    let now = core.now();
    let snapshots = store
        .list_snapshots(shoal_store::SnapshotListFilter {
            project_id: None,
            share_id: Some(share_id),
        })
        .await?;
    let mut new = Vec::new();
    let mut operations = Vec::new();
    for snapshot in &snapshots {
        // An instance made for this replica while it was still being created (a snapshot
        // taken meanwhile) waited for it: copy it now.
        if let Some(waiting) = snapshot
            .instances
            .iter()
            .find(|i| i.share_instance_id == replica.id)
        {
            if waiting.status == snapshots::STATUS_CREATING {
                operations.extend(ops::for_instance_host(
                    ops::CREATE_REPLICA_SNAPSHOT,
                    waiting.id,
                    &replica.host,
                    serde_json::json!({}),
                    now,
                ));
            }
            continue;
        }
        // A snapshot on its way out gets no new instance.
        let deleting = snapshot.instances.iter().any(|i| {
            matches!(
                i.status.as_str(),
                snapshots::STATUS_DELETING | snapshots::STATUS_UNMANAGE_STARTING
            )
        });
        if deleting {
            continue;
        }
        let id = Uuid::new_v4();
        new.push(shoal_store::NewSnapshotInstance {
            id,
            snapshot_id: snapshot.id,
            share_instance_id: replica.id,
            status: snapshots::STATUS_CREATING.to_owned(),
            progress: Some("0%".to_owned()),
            provider_location: None,
        });
        operations.extend(ops::for_instance_host(
            ops::CREATE_REPLICA_SNAPSHOT,
            id,
            &replica.host,
            serde_json::json!({}),
            now,
        ));
    }
    if new.is_empty() && operations.is_empty() {
        return Ok(());
    }
    match store.add_snapshot_instances(new, operations, now).await {
        // A snapshot deleted meanwhile: the next update of the replica does not retry,
        // but nothing is lost either (the snapshot is gone).
        Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// Manila's promotion rule: the promoted replica's snapshot instances still `creating` or
/// `deleting` go to `error`.
pub(crate) async fn fail_unfinished_snapshot_instances(
    core: &Core,
    replica_id: Uuid,
) -> CoreResult<()> {
    let store = &core.store;
    for instance in store
        .list_snapshot_instances(SnapshotInstanceFilter {
            snapshot_id: None,
            share_instance_id: Some(replica_id),
        })
        .await?
    {
        if !matches!(
            instance.status.as_str(),
            snapshots::STATUS_CREATING | snapshots::STATUS_DELETING
        ) {
            continue;
        }
        let cas = set_status(
            instance.id,
            &[instance.status.as_str()],
            snapshots::STATUS_ERROR,
        );
        match store
            .update_snapshot_instances_if(vec![cas], Vec::new(), core.now())
            .await
        {
            Ok(_) | Err(StoreError::Conflict(_) | StoreError::NotFound(_)) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// Deletes a replica's snapshot instances on its back end (before the replica itself) and
/// then their rows. Returns `false` when the back end refused one and `force` is not set
/// (the caller puts the replica in `error_deleting`); with `force`, failures are ignored.
pub(crate) async fn delete_replica_snapshot_instances(
    core: &Core,
    backend: &Backend,
    replica: &ShareInstanceRow,
    share: &ShareRow,
    force: bool,
) -> CoreResult<bool> {
    let store = &core.store;
    let instances = store
        .list_snapshot_instances(SnapshotInstanceFilter {
            snapshot_id: None,
            share_instance_id: Some(replica.id),
        })
        .await?;
    for instance in instances {
        let snapshot = match store.get_snapshot(instance.snapshot_id).await {
            Ok(snapshot) => snapshot,
            Err(StoreError::NotFound(_)) => continue,
            Err(err) => return Err(err.into()),
        };
        let reference = snapshot_ref(&instance, &snapshot, replica, share);
        if let Err(err) = backend.driver.delete_snapshot(&reference).await {
            warn!(snapshot_instance.id = %instance.id, error = %err, force, "deleting snapshot instance {} of replica {} failed: {err}", instance.id, replica.id);
            if !force {
                return Ok(false);
            }
        }
        store
            .delete_snapshot_instance(
                instance.id,
                snapshot_release(
                    &snapshot,
                    snapshots::snapshot_share_type(Some(replica), share.share_type_id),
                ),
                core.now(),
            )
            .await?;
    }
    Ok(true)
}

/// Periodic refresh of secondaries' `creating` snapshot instances on `backend` (Manila's
/// `periodic_share_replica_snapshot_update`): one `update_replica_snapshot` operation per
/// instance whose snapshot's active instance is available and that has none pending.
pub async fn queue_replica_snapshot_updates(
    core: &Core,
    backend: &Backend,
    pending: &std::collections::BTreeSet<String>,
) -> CoreResult<usize> {
    let store = &core.store;
    let mut queued = 0;
    for replica in store
        .list_share_instances_on_host(&backend.service_host)
        .await?
    {
        if !matches!(
            replica.replica_state.as_deref(),
            Some("in_sync" | "out_of_sync")
        ) {
            continue;
        }
        for instance in store
            .list_snapshot_instances(SnapshotInstanceFilter {
                snapshot_id: None,
                share_instance_id: Some(replica.id),
            })
            .await?
        {
            if instance.status != snapshots::STATUS_CREATING
                || pending.contains(&instance.id.to_string())
            {
                continue;
            }
            if let Some(op) = ops::for_instance_host(
                ops::UPDATE_REPLICA_SNAPSHOT,
                instance.id,
                &replica.host,
                serde_json::json!({}),
                core.now(),
            ) {
                store.insert_operation(op).await?;
                queued += 1;
            }
        }
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_operation_kinds() {
        for kind in [
            ops::CREATE_SNAPSHOT,
            ops::CREATE_REPLICA_SNAPSHOT,
            ops::UPDATE_REPLICA_SNAPSHOT,
            ops::DELETE_SNAPSHOT,
            ops::REVERT_TO_SNAPSHOT,
            ops::MANAGE_SNAPSHOT,
            ops::UNMANAGE_SNAPSHOT,
            ops::SNAPSHOT_UPDATE_ACCESS,
        ] {
            assert!(SnapshotManager::handles(kind), "{kind}");
            assert!(
                !super::super::replica_manager::ReplicaManager::handles(kind),
                "{kind}"
            );
        }
        assert!(!SnapshotManager::handles(ops::CREATE_SHARE_INSTANCE));
        assert!(!SnapshotManager::handles(ops::UPDATE_SHARE_REPLICA));
    }

    #[test]
    fn driver_answers_become_instance_updates() {
        let done = SnapshotResult {
            progress: SnapshotProgress::Available,
            provider_location: Some("/p".to_owned()),
            size_gb: None,
            export_locations: Vec::new(),
        };
        let update = SnapshotManager::outcome_update(&done);
        assert_eq!(update.status.as_deref(), Some("available"));
        assert_eq!(update.progress, Some(Some("100%".to_owned())));
        assert_eq!(update.provider_location, Some(Some("/p".to_owned())));
        let pending = SnapshotResult {
            progress: SnapshotProgress::Creating,
            provider_location: None,
            ..done
        };
        let update = SnapshotManager::outcome_update(&pending);
        assert_eq!(update.status, None, "still creating");
        assert_eq!(update.provider_location, None, "kept");
        let stored = snapshot_locations(&[ExportLocation {
            path: "1.1.1.1:/x".to_owned(),
            is_admin_only: true,
            preferred: false,
            metadata: BTreeMap::new(),
        }]);
        assert_eq!(stored[0].path, "1.1.1.1:/x");
        assert!(stored[0].is_admin_only);
    }
}
