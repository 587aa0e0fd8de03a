//! The share role's replica work (Manila's `create_share_replica`, `delete_share_replica`,
//! `promote_share_replica` and `_share_replica_update`): the handlers of the replica
//! operations queued for one back end. [`super::share_manager`] dispatches them here.
//!
//! Every handler runs under the share's replica lock ([`crate::replica_locks`]), re-reads
//! the replica set under it, and does nothing when the state it expects is gone (a replica
//! no longer `creating`, `deleting` or `replication_change`), so a re-run after a crash is
//! harmless. Status changes are compare-and-set on the status read under the lock, so a
//! concurrent API action (a delete, a reset) wins over a stale outcome. A promotion swaps
//! the two roles and enqueues the follow-up work in one transaction, so the share never has
//! two active replicas and the follow-ups exist only if the swap happened.
//!
//! Outcomes follow Manila (spec replication.md §6.3, §6.5, §6.6, §7): driver failures give
//! `error` states and a user message on the `SHARE_REPLICA` resource, and the handler
//! returns `Ok`; only "could not decide" failures (database, busy lock) are returned as
//! `Err`, which the operation worker retries with backoff.

use std::sync::Arc;
use std::time::Duration;

use crate::services::ReplicationAddresses;
use shoal_driver::{
    AccessRule, DriverError, ExportLocation, ReplicaContext, ReplicaRef, ShareInstanceRef,
    SyncRecord,
};
use shoal_store::{
    AccessRuleRow, NewOperation, OperationRow, ReplicationRecord, ShareInstanceCas,
    ShareInstanceRow, ShareInstanceUpdate, ShareRow, StoreError,
};
use tracing::{info, warn};
use uuid::Uuid;

use super::share_manager::ShareManagerHandler;
use crate::drivers::Backend;
use crate::ops::{self, DeletePayload, PromotePayload, UpdateReplicaPayload};
use crate::shares::{REPLICA_STATE_ACTIVE, TRANSITIONAL_STATUSES};
use crate::{Core, CoreResult, messages, replica_locks, shares};
use shoal_replication::failpoints::crash_point;

/// Replica states an update call may store (Manila ignores `active` and anything else).
const UPDATABLE_REPLICA_STATES: [&str; 3] = ["in_sync", "out_of_sync", "error"];

/// Access mapping states of a rule being removed: such a rule is neither copied to a new
/// replica nor handed to the driver.
const DENYING_STATES: [&str; 2] = ["queued_to_deny", "denying"];

/// Trigger recorded when an update operation carries none.
const TRIGGER_DEFAULT: &str = "periodic";

/// Runs the replica operations of one back end.
pub struct ReplicaManager {
    core: Arc<Core>,
    backend: Backend,
}

/// A replica with its share and every replica of the share, read under the share lock.
struct ReplicaSet {
    share: ShareRow,
    replica: ShareInstanceRow,
    /// Every replica of the share in creation order, `replica` included.
    all: Vec<ShareInstanceRow>,
}

impl ReplicaSet {
    fn active(&self) -> Option<&ShareInstanceRow> {
        self.all
            .iter()
            .find(|r| r.id != self.replica.id && is_active(r))
    }

    fn replication_type(&self) -> &str {
        self.share.replication_type.as_deref().unwrap_or_default()
    }
}

fn is_active(instance: &ShareInstanceRow) -> bool {
    instance.replica_state.as_deref() == Some(REPLICA_STATE_ACTIVE)
}

/// Ignores a lost compare-and-set or a vanished row: another action moved the replica on,
/// and its outcome counts.
fn ignore_lost<T>(result: Result<T, StoreError>) -> CoreResult<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(StoreError::Conflict(_) | StoreError::NotFound(_)) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

fn status_and_state(status: &str, replica_state: Option<&str>) -> ShareInstanceUpdate {
    ShareInstanceUpdate {
        status: Some(status.to_owned()),
        replica_state: replica_state.map(|s| Some(s.to_owned())),
        ..Default::default()
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A driver's sync report as a `replication_history` row.
fn replication_record(
    replica_id: Uuid,
    source: Option<Uuid>,
    trigger: &str,
    sync: SyncRecord,
) -> ReplicationRecord {
    ReplicationRecord {
        id: Uuid::new_v4(),
        share_instance_id: replica_id,
        source_instance_id: source,
        trigger: trigger.to_owned(),
        started_at: sync.started_at,
        finished_at: sync.finished_at,
        source_point: sync.source_point,
        version: saturating_i64(sync.version),
        files_total: saturating_i64(sync.files_total),
        bytes_total: saturating_i64(sync.bytes_total),
        files_transferred: saturating_i64(sync.files_transferred),
        bytes_transferred: saturating_i64(sync.bytes_transferred),
        files_deleted: saturating_i64(sync.files_deleted),
        outcome: sync.outcome,
        detail: sync.detail,
        wire_bytes: saturating_i64(sync.wire_bytes),
    }
}

/// Rules of the share as the driver gets them for a replica: rules being removed left out,
/// every level `ro` when the replica casts its rules to read-only.
fn driver_rules(rules: &[AccessRuleRow], cast_to_readonly: bool) -> Vec<AccessRule> {
    rules
        .iter()
        .filter(|r| !is_being_denied(r))
        .map(|r| driver_rule(r, cast_to_readonly))
        .collect()
}

fn driver_rule(rule: &AccessRuleRow, cast_to_readonly: bool) -> AccessRule {
    AccessRule {
        id: rule.id.to_string(),
        access_type: rule.access_type.clone(),
        access_to: rule.access_to.clone(),
        access_level: if cast_to_readonly {
            "ro".to_owned()
        } else {
            rule.access_level.clone()
        },
    }
}

fn is_being_denied(rule: &AccessRuleRow) -> bool {
    rule.instance_states
        .values()
        .any(|s| DENYING_STATES.contains(&s.as_str()))
}

/// Whether the periodic task and `resync` leave the replica alone (spec §7): busy, failed
/// deleting, the active one, or not a replica at all.
pub fn skips_update(instance: &ShareInstanceRow) -> bool {
    TRANSITIONAL_STATUSES.contains(&instance.status.as_str())
        || instance.status == "error_deleting"
        || instance.replica_state.is_none()
        || is_active(instance)
}

impl ReplicaManager {
    /// Replica handler of `backend`.
    pub fn new(core: Arc<Core>, backend: Backend) -> Self {
        Self { core, backend }
    }

    /// Whether this module handles operations of `kind`.
    pub fn handles(kind: &str) -> bool {
        matches!(
            kind,
            ops::CREATE_SHARE_REPLICA
                | ops::DELETE_SHARE_REPLICA
                | ops::PROMOTE_SHARE_REPLICA
                | ops::UPDATE_SHARE_REPLICA
        )
    }

    /// Runs a replica operation on replica `id` under its share's lock. A busy lock (held on
    /// another node) is returned as an error so the operation is retried later.
    pub async fn handle(&self, op: &OperationRow, id: Uuid) -> CoreResult<()> {
        // The share of an instance never changes, so it can be read before locking.
        let share_id = match self.core.store.get_share_instance(id).await {
            Ok(instance) => instance.share_id,
            Err(StoreError::NotFound(_)) => return Ok(()),
            Err(err) => return Err(err.into()),
        };
        let guard = replica_locks::lock_share(&self.core, share_id, &op.kind).await?;
        let payload = op.payload.clone();
        let outcome = match op.kind.as_str() {
            ops::CREATE_SHARE_REPLICA => self.create_share_replica(id).await,
            ops::DELETE_SHARE_REPLICA => {
                let payload: DeletePayload = serde_json::from_value(payload).unwrap_or_default();
                self.delete_share_replica(id, payload.force).await
            }
            ops::PROMOTE_SHARE_REPLICA => {
                let payload: PromotePayload = serde_json::from_value(payload).unwrap_or_default();
                self.promote_share_replica(id, payload.quiesce_wait_time)
                    .await
            }
            ops::UPDATE_SHARE_REPLICA => {
                let payload: UpdateReplicaPayload =
                    serde_json::from_value(payload).unwrap_or_default();
                let trigger = if payload.trigger.is_empty() {
                    TRIGGER_DEFAULT
                } else {
                    payload.trigger.as_str()
                };
                self.update_share_replica(id, trigger).await
            }
            other => {
                warn!(
                    op.id = op.id,
                    "operation {} of kind {other} is not a replica operation", op.id
                );
                Ok(())
            }
        };
        guard.release().await;
        outcome
    }

    /// Loads the replica, its share and the share's replicas; `None` when the replica or
    /// the share is gone.
    async fn load(&self, id: Uuid) -> CoreResult<Option<ReplicaSet>> {
        let store = &self.core.store;
        let replica = match store.get_share_instance(id).await {
            Ok(instance) => instance,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(err) => return Err(err.into()),
        };
        let share = match store.get_share(replica.share_id).await {
            Ok(share) => share,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(err) => return Err(err.into()),
        };
        let mut all = store.list_share_replicas(None, Some(share.id)).await?;
        if !all.iter().any(|r| r.id == replica.id) {
            all.push(replica.clone());
        }
        Ok(Some(ReplicaSet {
            share,
            replica,
            all,
        }))
    }

    /// The driver's view of every replica of the set, with stored export locations.
    async fn replica_refs(&self, set: &ReplicaSet) -> CoreResult<Vec<ReplicaRef>> {
        let addresses = crate::services::replication_addresses(&self.core).await?;
        let mut refs = Vec::with_capacity(set.all.len());
        for instance in &set.all {
            refs.push(self.replica_ref(instance, &set.share, &addresses).await?);
        }
        Ok(refs)
    }

    /// The driver's view of one replica; `addresses` gives the replication endpoints of
    /// the nodes (only calls that sync need them).
    async fn replica_ref(
        &self,
        instance: &ShareInstanceRow,
        share: &ShareRow,
        addresses: &ReplicationAddresses,
    ) -> CoreResult<ReplicaRef> {
        let export_locations = self
            .core
            .store
            .list_export_locations(instance.id)
            .await?
            .into_iter()
            .map(|l| ExportLocation {
                path: l.path,
                is_admin_only: l.is_admin_only,
                preferred: l.preferred,
                metadata: l.metadata,
            })
            .collect();
        Ok(ReplicaRef {
            instance: instance_ref(instance, share),
            host: instance.host.clone(),
            replica_state: instance.replica_state.clone(),
            export_locations,
            replication_address: addresses.of(&instance.host),
            replica_epoch: instance.replica_epoch,
        })
    }

    async fn message(&self, share: &ShareRow, replica_id: Uuid, action: &str, detail: &str) {
        // The state change is what the user relies on; a lost message is only logged.
        if let Err(err) = messages::record(
            &self.core,
            &share.project_id,
            messages::RESOURCE_SHARE_REPLICA,
            &replica_id.to_string(),
            action,
            detail,
            messages::LEVEL_ERROR,
        )
        .await
        {
            warn!(share_replica.id = %replica_id, error = %err, "recording a user message for replica {replica_id} failed: {err}");
        }
    }

    async fn cas(
        &self,
        id: Uuid,
        expected: &[&str],
        update: ShareInstanceUpdate,
    ) -> CoreResult<Option<ShareInstanceRow>> {
        let now = self.core.now();
        ignore_lost(
            self.core
                .store
                .update_share_instance_if(id, expected, update, Vec::new(), now)
                .await,
        )
    }

    async fn replace_export_locations(
        &self,
        id: Uuid,
        locations: Vec<ExportLocation>,
    ) -> CoreResult<()> {
        let now = self.core.now();
        ignore_lost(
            self.core
                .store
                .replace_export_locations(id, crate::export_locations::from_driver(locations), now)
                .await,
        )?;
        Ok(())
    }

    /// Appends a sync to the replica's history. History is informative, so a failure is
    /// logged and the operation goes on.
    async fn record_sync(
        &self,
        replica_id: Uuid,
        source: Option<Uuid>,
        trigger: &str,
        sync: Option<SyncRecord>,
    ) {
        let Some(sync) = sync else { return };
        let record = replication_record(replica_id, source, trigger, sync);
        crate::metrics::sync_finished(&record);
        if let Err(err) = self.core.store.insert_replication_record(record).await {
            warn!(share_replica.id = %replica_id, error = %err, "recording a sync of replica {replica_id} failed: {err}");
        }
    }

    /// Creates a scheduled secondary on this back end (spec §6.3).
    async fn create_share_replica(&self, id: Uuid) -> CoreResult<()> {
        let Some(mut set) = self.load(id).await? else {
            return Ok(());
        };
        if set.replica.status != "creating" {
            return Ok(());
        }
        let store = &self.core.store;
        if set.replica.availability_zone.is_none() {
            let update = ShareInstanceUpdate {
                availability_zone: Some(Some(self.backend.config.availability_zone.clone())),
                ..Default::default()
            };
            match self.cas(id, &["creating"], update).await? {
                Some(row) => set.replica = row,
                None => return Ok(()),
            }
        }
        let Some(active) = set
            .active()
            .filter(|a| a.status == "available")
            .map(|a| a.id)
        else {
            warn!(share.id = %set.share.id, share_replica.id = %id, "share {} has no available active replica to create replica {id} from", set.share.id);
            if self
                .cas(id, &["creating"], status_and_state("error", Some("error")))
                .await?
                .is_some()
            {
                self.message(
                    &set.share,
                    id,
                    messages::ACTION_CREATE,
                    messages::DETAIL_NO_ACTIVE_REPLICA,
                )
                .await;
            }
            return Ok(());
        };

        // Every rule of the share applies to the new replica too (Manila's
        // `share_instance_access_copy`); retries leave existing mappings alone.
        let now = self.core.now();
        let rules = store.list_access_rules(set.share.id).await?;
        for rule in rules
            .iter()
            .filter(|r| !is_being_denied(r) && !r.instance_states.contains_key(&id))
        {
            // One rule at a time: a rule deleted meanwhile must not stop the others.
            ignore_lost(
                store
                    .add_instance_access_rows(id, &[rule.id], "queued_to_apply", now)
                    .await,
            )?;
        }
        let rules = store.list_access_rules(set.share.id).await?;

        let refs = self.replica_refs(&set).await?;
        let access_rules = driver_rules(&rules, set.replica.cast_rules_to_readonly);
        let (Some(replica_ref), Some(active_ref)) = (
            refs.iter().find(|r| r.instance.id == id.to_string()),
            refs.iter().find(|r| r.instance.id == active.to_string()),
        ) else {
            return Ok(());
        };
        let ctx = ReplicaContext {
            replication_type: set.replication_type(),
            active: Some(active_ref),
            replicas: &refs,
            access_rules: &access_rules,
            full_sync: false,
        };
        let result = match self.backend.driver.create_replica(replica_ref, &ctx).await {
            Ok(result) => result,
            Err(err) => {
                warn!(share_replica.id = %id, error = %err, "creating replica {id} failed: {err}");
                let update = ShareInstanceUpdate {
                    access_rules_status: Some("error".to_owned()),
                    ..status_and_state("error", Some("error"))
                };
                if self.cas(id, &["creating"], update).await?.is_some() {
                    // The cause, when the driver knows it, rather than "unknown error".
                    let detail = match err {
                        DriverError::SourceUnavailable(_) => {
                            messages::DETAIL_REPLICA_SOURCE_UNAVAILABLE
                        }
                        _ => messages::DETAIL_UNEXPECTED,
                    };
                    self.message(&set.share, id, messages::ACTION_CREATE, detail)
                        .await;
                }
                return Ok(());
            }
        };
        crash_point("replica_create::after_initial_sync");
        if let Some(locations) = result.export_locations {
            self.replace_export_locations(id, locations).await?;
        }
        if result.replica_state.is_empty() {
            // Manila leaves such a replica `creating` (the driver did not say how it went).
            warn!(share_replica.id = %id, "driver reported no state for replica {id}");
            return Ok(());
        }
        // The driver received the rules: they are in force on the replica.
        for rule in rules.iter().filter(|r| {
            r.instance_states
                .get(&id)
                .is_some_and(|s| s == "queued_to_apply")
        }) {
            ignore_lost(
                store
                    .set_instance_access_state(rule.id, id, &["queued_to_apply"], "active", now)
                    .await,
            )?;
        }
        crash_point("replica_create::before_available");
        let update = ShareInstanceUpdate {
            status: Some("available".to_owned()),
            replica_state: Some(Some(result.replica_state.clone())),
            progress: Some(Some("100%".to_owned())),
            launched_at: Some(self.core.now()),
            access_rules_status: Some("active".to_owned()),
            ..Default::default()
        };
        if let Some(created) = self.cas(id, &["creating"], update).await? {
            info!(share.id = %set.share.id, share_replica.id = %id, replica_state = %result.replica_state, "replica {id} is available ({})", result.replica_state);
            // A new replica gets an instance of every snapshot of the share, copied from
            // the active's by its own back end.
            super::snapshot_manager::add_snapshot_instances_for_new_replica(
                &self.core,
                set.share.id,
                &created,
            )
            .await?;
        }
        self.record_sync(id, Some(active), "create", result.sync)
            .await;
        Ok(())
    }

    /// Deletes a replica from this back end, then its rows and quota (spec §6.6).
    async fn delete_share_replica(&self, id: Uuid, force: bool) -> CoreResult<()> {
        let Some(set) = self.load(id).await? else {
            return Ok(());
        };
        if set.replica.status != "deleting" {
            return Ok(());
        }
        let store = &self.core.store;
        let replica = &set.replica;
        let share = &set.share;

        // 1. Deny every rule on this replica only.
        let rules = store.list_access_rules(share.id).await?;
        let mapped: Vec<&AccessRuleRow> = rules
            .iter()
            .filter(|r| r.instance_states.contains_key(&id))
            .collect();
        if !mapped.is_empty() && !replica.host.is_empty() {
            let delete: Vec<AccessRule> = mapped
                .iter()
                .map(|r| driver_rule(r, replica.cast_rules_to_readonly))
                .collect();
            match self
                .backend
                .driver
                .update_access(&instance_ref(replica, share), &[], &[], &delete)
                .await
            {
                // A replica the back end never had has no rules to remove.
                Ok(_) | Err(DriverError::NotFound { .. }) => {}
                Err(err) => {
                    warn!(share_replica.id = %id, error = %err, force, "removing the rules of replica {id} failed: {err}");
                    self.message(
                        share,
                        id,
                        messages::ACTION_DELETE_ACCESS_RULES,
                        messages::DETAIL_UNEXPECTED,
                    )
                    .await;
                    if !force {
                        self.cas(id, &["deleting"], status_and_state("error", None))
                            .await?;
                        return Ok(());
                    }
                }
            }
        }
        for rule in &mapped {
            ignore_lost(store.remove_instance_access(rule.id, id).await)?;
        }

        // 1b. Its snapshot instances, through the driver (Manila hands them to
        // `delete_replica`); their rows go with the replica below.
        if !replica.host.is_empty()
            && !super::snapshot_manager::delete_replica_snapshot_instances(
                &self.core,
                &self.backend,
                replica,
                share,
                force,
            )
            .await?
        {
            self.message(
                share,
                id,
                messages::ACTION_DELETE,
                messages::DETAIL_UNEXPECTED,
            )
            .await;
            self.cas(
                id,
                &["deleting"],
                status_and_state("error_deleting", Some("error")),
            )
            .await?;
            return Ok(());
        }

        // 2. Delete the replica's data (no sync: no endpoints needed).
        let replica_ref = self
            .replica_ref(replica, share, &ReplicationAddresses::default())
            .await?;
        match self.backend.driver.delete_replica(&replica_ref).await {
            Ok(()) | Err(DriverError::NotFound { .. }) => {}
            Err(err) => {
                warn!(share_replica.id = %id, error = %err, force, "deleting replica {id} failed: {err}");
                self.message(
                    share,
                    id,
                    messages::ACTION_DELETE,
                    messages::DETAIL_UNEXPECTED,
                )
                .await;
                if !force {
                    self.cas(
                        id,
                        &["deleting"],
                        status_and_state("error_deleting", Some("error")),
                    )
                    .await?;
                    return Ok(());
                }
            }
        }

        // 3. The rows and the quota. The share stays: its active replica remains.
        crash_point("replica_delete::before_row_delete");
        let is_last = store.list_share_instances(share.id).await?.len() <= 1;
        let release = shares::instance_release(share, replica, is_last);
        store
            .delete_share_instance_and_maybe_share(id, release, self.core.now())
            .await?;
        info!(share.id = %share.id, share_replica.id = %id, "replica {id} deleted");
        Ok(())
    }

    /// Promotes a replica on this (its) back end and swaps the roles (spec §6.5).
    async fn promote_share_replica(&self, id: Uuid, quiesce_wait: Option<u64>) -> CoreResult<()> {
        let Some(set) = self.load(id).await? else {
            return Ok(());
        };
        if set.replica.status != shares::STATUS_REPLICATION_CHANGE {
            return Ok(());
        }
        let share = &set.share;
        let Some(old_active) = set.active().cloned() else {
            warn!(share.id = %share.id, share_replica.id = %id, "share {} has no active replica; cannot promote {id}", share.id);
            if self
                .cas(
                    id,
                    &[shares::STATUS_REPLICATION_CHANGE],
                    status_and_state("available", None),
                )
                .await?
                .is_some()
            {
                self.message(
                    share,
                    id,
                    messages::ACTION_PROMOTE,
                    messages::DETAIL_NO_ACTIVE_REPLICA,
                )
                .await;
            }
            return Ok(());
        };

        let store = &self.core.store;
        let rules = store.list_access_rules(share.id).await?;
        let refs = self.replica_refs(&set).await?;
        // The promoted replica serves the rules at their own levels from now on.
        let access_rules = driver_rules(&rules, false);
        let (Some(replica_ref), Some(active_ref)) = (
            refs.iter().find(|r| r.instance.id == id.to_string()),
            refs.iter()
                .find(|r| r.instance.id == old_active.id.to_string()),
        ) else {
            return Ok(());
        };
        let ctx = ReplicaContext {
            replication_type: set.replication_type(),
            active: Some(active_ref),
            replicas: &refs,
            access_rules: &access_rules,
            full_sync: false,
        };
        let quiesce_wait = quiesce_wait.map(Duration::from_secs);
        let result = match self
            .backend
            .driver
            .promote_replica(replica_ref, &ctx, quiesce_wait)
            .await
        {
            Ok(result) => result,
            Err(err) => {
                // The back end may have changed any replica half-way: every replica goes to
                // `error` (replica states untouched) until an admin looks (Manila).
                warn!(share.id = %share.id, share_replica.id = %id, error = %err, "promoting replica {id} failed: {err}");
                for replica in &set.all {
                    self.cas(replica.id, &[], status_and_state("error", None))
                        .await?;
                    self.message(
                        share,
                        replica.id,
                        messages::ACTION_PROMOTE,
                        messages::DETAIL_UNEXPECTED,
                    )
                    .await;
                }
                return Ok(());
            }
        };
        if result.replica_state != REPLICA_STATE_ACTIVE {
            warn!(share_replica.id = %id, reported = %result.replica_state, "driver reported {} for promoted replica {id}; it becomes active anyway", result.replica_state);
        }

        crash_point("promote::after_backend_promote");
        // The back end has already turned the replica's data into the active copy, so its
        // export locations change now, before the swap: a crash after the swap would never
        // come back here (the status is no longer `replication_change`).
        if let Some(locations) = result.export_locations.clone() {
            self.replace_export_locations(id, locations).await?;
        }

        // Rules follow the roles (rw on the new active, ro on a readable former active):
        // their mappings on both are queued again for the UPDATE_ACCESS operations below.
        // Queued before the swap so those operations, once enqueued, always find them.
        let now = self.core.now();
        let mut reapply = Vec::new();
        for instance in [&old_active, &set.replica] {
            let mut any = false;
            for rule in &rules {
                if rule.instance_states.get(&instance.id).map(String::as_str) == Some("active") {
                    ignore_lost(
                        store
                            .set_instance_access_state(
                                rule.id,
                                instance.id,
                                &["active"],
                                "queued_to_apply",
                                now,
                            )
                            .await,
                    )?;
                    any = true;
                }
            }
            if any
                && let Some(op) = ops::for_instance_host(
                    ops::UPDATE_ACCESS,
                    instance.id,
                    &instance.host,
                    serde_json::json!({}),
                    now,
                )
            {
                reapply.push(op);
            }
        }

        let readable = set.replication_type() == "readable";
        let syncing = |instance: &ShareInstanceRow| {
            reapply
                .iter()
                .any(|op| op.target_id == instance.id.to_string())
                .then(|| "syncing".to_owned())
        };
        let updates = vec![
            ShareInstanceCas {
                id: old_active.id,
                expected_statuses: Vec::new(),
                expected_replica_state: Some(Some(REPLICA_STATE_ACTIVE.to_owned())),
                update: ShareInstanceUpdate {
                    replica_state: Some(Some("out_of_sync".to_owned())),
                    cast_rules_to_readonly: Some(readable),
                    access_rules_status: syncing(&old_active),
                    ..Default::default()
                },
            },
            ShareInstanceCas {
                id,
                expected_statuses: vec![shares::STATUS_REPLICATION_CHANGE.to_owned()],
                expected_replica_state: None,
                update: ShareInstanceUpdate {
                    status: Some("available".to_owned()),
                    replica_state: Some(Some(REPLICA_STATE_ACTIVE.to_owned())),
                    cast_rules_to_readonly: Some(false),
                    access_rules_status: syncing(&set.replica),
                    // A new epoch: the former active's node serves its copy only at its
                    // own epoch, so nothing reads the old copy as the active's any more.
                    replica_epoch: Some(
                        set.all.iter().map(|r| r.replica_epoch).max().unwrap_or(0) + 1,
                    ),
                    ..Default::default()
                },
            },
        ];
        // The former active is demoted and re-synced by its own back end; the other
        // secondaries now sync from the new active.
        let mut operations: Vec<NewOperation> = set
            .all
            .iter()
            .filter(|r| r.id != id && (r.id == old_active.id || !is_active(r)))
            .filter_map(|r| {
                ops::for_instance_host(
                    ops::UPDATE_SHARE_REPLICA,
                    r.id,
                    &r.host,
                    serde_json::json!(UpdateReplicaPayload {
                        trigger: "promote".to_owned()
                    }),
                    now,
                )
            })
            .collect();
        operations.extend(reapply.iter().cloned());
        crash_point("promote::before_swap");
        match store
            .update_share_instances_if(updates, operations, now)
            .await
        {
            Ok(_) => {}
            Err(StoreError::Conflict(_) | StoreError::NotFound(_)) => {
                // Someone changed a replica meanwhile (a reset, a delete): no swap. Settle
                // the mappings queued above so no rule is left waiting.
                warn!(share.id = %share.id, share_replica.id = %id, "replicas of share {} changed during the promotion of {id}; roles left as they are", share.id);
                for op in reapply {
                    store.insert_operation(op).await?;
                }
                return Ok(());
            }
            Err(err) => return Err(err.into()),
        }
        info!(share.id = %share.id, share_replica.id = %id, old_active = %old_active.id, "replica {id} promoted, {} demoted", old_active.id);
        crash_point("promote::after_swap");

        // Manila: the promoted replica's snapshot instances that were still being created or
        // deleted cannot be trusted to finish, so they go to `error`.
        super::snapshot_manager::fail_unfinished_snapshot_instances(&self.core, id).await?;

        if set.replication_type() == "dr" {
            // A dr secondary is not exported.
            self.replace_export_locations(old_active.id, Vec::new())
                .await?;
        }
        self.record_sync(id, Some(old_active.id), "promote", result.sync)
            .await;
        Ok(())
    }

    /// Syncs a non-active replica and stores its state (spec §7; periodic task, `resync`,
    /// after a promotion).
    async fn update_share_replica(&self, id: Uuid, trigger: &str) -> CoreResult<()> {
        let Some(set) = self.load(id).await? else {
            return Ok(());
        };
        let replica = &set.replica;
        if skips_update(replica) {
            return Ok(());
        }
        let status = replica.status.as_str();
        let Some(active) = set.active().map(|a| a.id) else {
            // Without an active replica there is nothing to sync from.
            if replica.replica_state.as_deref() != Some("error") {
                warn!(share.id = %set.share.id, share_replica.id = %id, "share {} has no active replica", set.share.id);
                let update = ShareInstanceUpdate {
                    replica_state: Some(Some("error".to_owned())),
                    ..Default::default()
                };
                self.cas(id, &[status], update).await?;
            }
            return Ok(());
        };
        let rules = self.core.store.list_access_rules(set.share.id).await?;
        let refs = self.replica_refs(&set).await?;
        let access_rules = driver_rules(&rules, replica.cast_rules_to_readonly);
        let (Some(replica_ref), Some(active_ref)) = (
            refs.iter().find(|r| r.instance.id == id.to_string()),
            refs.iter().find(|r| r.instance.id == active.to_string()),
        ) else {
            return Ok(());
        };
        let ctx = ReplicaContext {
            replication_type: set.replication_type(),
            active: Some(active_ref),
            replicas: &refs,
            access_rules: &access_rules,
            full_sync: trigger == ops::TRIGGER_RESYNC,
        };
        let result = match self
            .backend
            .driver
            .update_replica_state(replica_ref, &ctx)
            .await
        {
            Ok(result) => result,
            Err(err) => {
                warn!(share_replica.id = %id, error = %err, "updating replica {id} failed: {err}");
                if self
                    .cas(id, &[status], status_and_state("error", Some("error")))
                    .await?
                    .is_some()
                {
                    self.message(
                        &set.share,
                        id,
                        messages::ACTION_UPDATE,
                        messages::DETAIL_UNEXPECTED,
                    )
                    .await;
                }
                return Ok(());
            }
        };
        // Locations first: whoever sees the new state (a demoted active now `in_sync`) also
        // finds the locations that go with it.
        if let Some(locations) = result.export_locations {
            self.replace_export_locations(id, locations).await?;
        }
        if UPDATABLE_REPLICA_STATES.contains(&result.replica_state.as_str()) {
            let update = ShareInstanceUpdate {
                replica_state: Some(Some(result.replica_state.clone())),
                ..Default::default()
            };
            self.cas(id, &[status], update).await?;
        } else if !result.replica_state.is_empty() {
            warn!(share_replica.id = %id, reported = %result.replica_state, "replica {id} cannot be set to {} by an update", result.replica_state);
        }
        self.record_sync(id, Some(active), trigger, result.sync)
            .await;
        Ok(())
    }
}

/// The driver's view of an instance (shared with the share handlers).
fn instance_ref(instance: &ShareInstanceRow, share: &ShareRow) -> ShareInstanceRef {
    ShareManagerHandler::instance_ref(instance, share)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::Utc;

    use super::*;

    fn instance(status: &str, replica_state: Option<&str>) -> ShareInstanceRow {
        ShareInstanceRow {
            id: Uuid::new_v4(),
            share_id: Uuid::new_v4(),
            status: status.to_owned(),
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

    fn rule(level: &str, states: &[(Uuid, &str)]) -> AccessRuleRow {
        AccessRuleRow {
            id: Uuid::new_v4(),
            share_id: Uuid::new_v4(),
            access_type: "ip".to_owned(),
            access_to: "10.0.0.1".to_owned(),
            access_level: level.to_owned(),
            access_key: None,
            metadata: BTreeMap::new(),
            created_at: Utc::now(),
            updated_at: None,
            instance_states: states.iter().map(|(i, s)| (*i, (*s).to_owned())).collect(),
        }
    }

    #[test]
    fn periodic_update_skips_busy_failed_deleting_and_active_replicas() {
        assert!(!skips_update(&instance("available", Some("out_of_sync"))));
        // A replica left in `error` keeps being refreshed (spec §7, T.292).
        assert!(!skips_update(&instance("error", Some("in_sync"))));
        assert!(!skips_update(&instance(
            "replication_change",
            Some("in_sync")
        )));
        assert!(skips_update(&instance("creating", Some("out_of_sync"))));
        assert!(skips_update(&instance("deleting", Some("in_sync"))));
        assert!(skips_update(&instance("error_deleting", Some("error"))));
        assert!(skips_update(&instance("available", Some("active"))));
        assert!(skips_update(&instance("available", None)));
    }

    #[test]
    fn driver_rules_cast_to_readonly_and_leave_out_denied_rules() {
        let replica = Uuid::new_v4();
        let rules = [
            rule("rw", &[(replica, "active")]),
            rule("rw", &[(replica, "queued_to_deny")]),
            rule("ro", &[(replica, "queued_to_apply")]),
        ];
        let levels = |cast| {
            driver_rules(&rules, cast)
                .into_iter()
                .map(|r| r.access_level)
                .collect::<Vec<_>>()
        };
        assert_eq!(levels(false), ["rw", "ro"]);
        assert_eq!(levels(true), ["ro", "ro"]);
    }

    #[test]
    fn sync_reports_become_history_rows() {
        let now = Utc::now();
        let replica = Uuid::new_v4();
        let source = Uuid::new_v4();
        let record = replication_record(
            replica,
            Some(source),
            "periodic",
            SyncRecord {
                started_at: now,
                finished_at: now,
                source_point: Some(now),
                version: u64::MAX,
                files_total: 3,
                bytes_total: 10,
                files_transferred: 1,
                bytes_transferred: 4,
                files_deleted: 0,
                outcome: "clean".to_owned(),
                detail: None,
                wire_bytes: 7,
            },
        );
        assert_eq!(record.share_instance_id, replica);
        assert_eq!(record.wire_bytes, 7);
        assert_eq!(record.source_instance_id, Some(source));
        assert_eq!(record.trigger, "periodic");
        assert_eq!(record.version, i64::MAX);
        assert_eq!(record.files_total, 3);
        assert_eq!(record.outcome, "clean");
    }

    #[test]
    fn replica_operation_kinds() {
        for kind in [
            ops::CREATE_SHARE_REPLICA,
            ops::DELETE_SHARE_REPLICA,
            ops::PROMOTE_SHARE_REPLICA,
            ops::UPDATE_SHARE_REPLICA,
        ] {
            assert!(ReplicaManager::handles(kind));
        }
        assert!(!ReplicaManager::handles(ops::UPDATE_ACCESS));
    }

    /// Handlers against a real store and two in-memory `dummy` back ends.
    mod handlers {
        use shoal_driver::{DummyDriver, DummyMethod};
        use shoal_store::testing::{TestDb, fresh_store_from_env};
        use shoal_store::{NewShare, NewShareInstance, OperationState, QuotaRequest, Store};

        use super::*;
        use crate::Config;
        use crate::config::{BackendConfig, PoolConfig};
        use crate::drivers::build_backends;
        use crate::replica_updater::ReplicaUpdater;

        const PROJECT: &str = "p1";

        struct Fixture {
            core: Arc<Core>,
            db: TestDb<dyn Store>,
            backends: Vec<Backend>,
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

        fn new_instance(
            status: &str,
            replica_state: Option<&str>,
            host: &str,
            az: Option<&str>,
        ) -> NewShareInstance {
            NewShareInstance {
                id: Uuid::new_v4(),
                status: status.to_owned(),
                replica_state: replica_state.map(str::to_owned),
                host: host.to_owned(),
                availability_zone: az.map(str::to_owned),
                share_type_id: None,
                share_network_id: None,
                share_server_id: None,
                cast_rules_to_readonly: false,
                access_rules_status: "active".to_owned(),
                progress: None,
                metadata: BTreeMap::new(),
            }
        }

        /// A `replication_type` share whose active replica is on `dummy1`.
        async fn fixture(replication_type: &str) -> Fixture {
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
            let now = Utc::now();
            let share = ShareRow {
                id: Uuid::new_v4(),
                project_id: PROJECT.to_owned(),
                user_id: "u1".to_owned(),
                name: None,
                description: None,
                size_gb: 1,
                share_proto: "NFS".to_owned(),
                share_type_id: None,
                is_public: false,
                replication_type: Some(replication_type.to_owned()),
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
                    instance: new_instance(
                        "available",
                        Some("active"),
                        "testhost@dummy1#pool1",
                        Some("az1"),
                    ),
                    quota: quota(&[("share_replicas", 1), ("replica_gigabytes", 1)]),
                    operations: Vec::new(),
                })
                .await
                .expect("share");
            backends[0]
                .driver
                .create_share(&instance_ref(&active, &share))
                .await
                .expect("dummy share");
            Fixture {
                core,
                db,
                backends,
                share,
                active,
            }
        }

        fn quota(deltas: &[(&str, i64)]) -> QuotaRequest {
            QuotaRequest {
                project_id: PROJECT.to_owned(),
                deltas: deltas.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
                limits: BTreeMap::new(),
            }
        }

        fn op(kind: &str, target: Uuid, payload: serde_json::Value) -> OperationRow {
            OperationRow {
                id: 1,
                kind: kind.to_owned(),
                target_id: target.to_string(),
                host: None,
                payload,
                state: OperationState::Running,
                attempts: 1,
                claimed_by: None,
                lease_until: None,
                not_before: None,
                last_error: None,
                created_at: Utc::now(),
                updated_at: Utc::now(),
            }
        }

        impl Fixture {
            fn manager(&self, index: usize) -> ReplicaManager {
                ReplicaManager::new(self.core.clone(), self.backends[index].clone())
            }

            fn dummy(&self, index: usize) -> &DummyDriver {
                self.backends[index]
                    .driver
                    .as_any()
                    .downcast_ref::<DummyDriver>()
                    .expect("dummy back end")
            }

            async fn get(&self, id: Uuid) -> ShareInstanceRow {
                self.core
                    .store
                    .get_share_instance(id)
                    .await
                    .expect("instance")
            }

            async fn set(&self, id: Uuid, update: ShareInstanceUpdate) {
                self.core
                    .store
                    .update_share_instance_if(id, &[], update, Vec::new(), Utc::now())
                    .await
                    .expect("update");
            }

            /// A secondary placed on `dummy2`, as the scheduler leaves it.
            async fn secondary(&self) -> ShareInstanceRow {
                let mut instance = new_instance(
                    "creating",
                    Some("out_of_sync"),
                    "testhost@dummy2#pool1",
                    None,
                );
                instance.cast_rules_to_readonly = true;
                self.core
                    .store
                    .create_share_instance(
                        self.share.id,
                        instance,
                        quota(&[("share_replicas", 1), ("replica_gigabytes", 1)]),
                        Vec::new(),
                        Utc::now(),
                    )
                    .await
                    .expect("replica row")
            }

            /// A secondary created through the handler.
            async fn created_secondary(&self) -> ShareInstanceRow {
                let replica = self.secondary().await;
                self.manager(1)
                    .handle(
                        &op(ops::CREATE_SHARE_REPLICA, replica.id, json!({})),
                        replica.id,
                    )
                    .await
                    .expect("create");
                self.get(replica.id).await
            }

            async fn messages(&self) -> Vec<(String, String, String)> {
                self.core
                    .store
                    .list_messages(Some(PROJECT))
                    .await
                    .expect("messages")
                    .into_iter()
                    .map(|m| (m.resource_type, m.action_id, m.detail_id))
                    .collect()
            }
        }

        use serde_json::json;

        #[tokio::test]
        async fn create_makes_the_replica_available_in_the_backend_zone() {
            let f = fixture("readable").await;
            let replica = f.created_secondary().await;
            assert_eq!(replica.status, "available");
            assert_eq!(replica.replica_state.as_deref(), Some("in_sync"));
            assert_eq!(replica.availability_zone.as_deref(), Some("az2"));
            assert_eq!(replica.progress.as_deref(), Some("100%"));
            assert!(replica.launched_at.is_some());
            let locations = f
                .core
                .store
                .list_export_locations(replica.id)
                .await
                .expect("els");
            assert_eq!(locations.len(), 3);
            // A re-run (crash after the driver call) changes nothing.
            f.manager(1)
                .handle(
                    &op(ops::CREATE_SHARE_REPLICA, replica.id, json!({})),
                    replica.id,
                )
                .await
                .expect("re-run");
            assert_eq!(f.get(replica.id).await.status, "available");
            f.db.finish().await;
        }

        #[tokio::test]
        async fn create_without_an_available_active_replica_fails_with_a_message() {
            let f = fixture("readable").await;
            f.set(f.active.id, status_and_state("error", None)).await;
            let replica = f.created_secondary().await;
            assert_eq!(replica.status, "error");
            assert_eq!(replica.replica_state.as_deref(), Some("error"));
            assert_eq!(
                f.messages().await,
                [(
                    "SHARE_REPLICA".to_owned(),
                    messages::ACTION_CREATE.to_owned(),
                    messages::DETAIL_NO_ACTIVE_REPLICA.to_owned()
                )]
            );
            f.db.finish().await;
        }

        #[tokio::test]
        async fn create_failure_in_the_driver_is_an_error() {
            let f = fixture("readable").await;
            f.dummy(1).set_failure(DummyMethod::CreateReplica, 1.0);
            let replica = f.created_secondary().await;
            assert_eq!(replica.status, "error");
            assert_eq!(replica.replica_state.as_deref(), Some("error"));
            assert_eq!(replica.access_rules_status, "error");
            assert_eq!(f.messages().await.len(), 1);
            f.db.finish().await;
        }

        #[tokio::test]
        async fn update_refreshes_the_state_and_keeps_the_status() {
            let f = fixture("readable").await;
            let replica = f.created_secondary().await;
            // An errored replica keeps its status (T.292).
            f.set(replica.id, status_and_state("error", Some("out_of_sync")))
                .await;
            let trigger = json!({"trigger": "resync"});
            f.manager(1)
                .handle(
                    &op(ops::UPDATE_SHARE_REPLICA, replica.id, trigger),
                    replica.id,
                )
                .await
                .expect("update");
            let after = f.get(replica.id).await;
            assert_eq!(after.status, "error");
            assert_eq!(after.replica_state.as_deref(), Some("in_sync"));
            f.db.finish().await;
        }

        #[tokio::test]
        async fn update_without_active_replica_or_with_a_failing_driver() {
            let f = fixture("readable").await;
            let replica = f.created_secondary().await;
            // No active replica: replica_state error, status untouched (T.293).
            f.set(
                f.active.id,
                ShareInstanceUpdate {
                    replica_state: Some(Some("in_sync".to_owned())),
                    ..Default::default()
                },
            )
            .await;
            let update = op(ops::UPDATE_SHARE_REPLICA, replica.id, json!({}));
            f.manager(1)
                .handle(&update, replica.id)
                .await
                .expect("update");
            let after = f.get(replica.id).await;
            assert_eq!(after.status, "available");
            assert_eq!(after.replica_state.as_deref(), Some("error"));

            // Back to normal: the active is never touched by an update (T.294).
            f.set(
                f.active.id,
                ShareInstanceUpdate {
                    replica_state: Some(Some("active".to_owned())),
                    ..Default::default()
                },
            )
            .await;
            f.manager(0)
                .handle(&update, f.active.id)
                .await
                .expect("no-op");
            assert_eq!(
                f.get(f.active.id).await.replica_state.as_deref(),
                Some("active")
            );

            // The driver fails: error/error and a message (T.295).
            f.dummy(1).set_failure(DummyMethod::UpdateReplicaState, 1.0);
            f.manager(1)
                .handle(&update, replica.id)
                .await
                .expect("update");
            let after = f.get(replica.id).await;
            assert_eq!(after.status, "error");
            assert_eq!(after.replica_state.as_deref(), Some("error"));
            assert!(
                f.messages()
                    .await
                    .iter()
                    .any(|(_, action, _)| action == messages::ACTION_UPDATE)
            );
            f.db.finish().await;
        }

        #[tokio::test]
        async fn promotion_swaps_roles_and_queues_the_follow_ups() {
            let f = fixture("readable").await;
            let replica = f.created_secondary().await;
            f.set(replica.id, status_and_state("replication_change", None))
                .await;
            let promote = op(
                ops::PROMOTE_SHARE_REPLICA,
                replica.id,
                json!({"quiesce_wait_time": 1}),
            );
            f.manager(1)
                .handle(&promote, replica.id)
                .await
                .expect("promote");
            let promoted = f.get(replica.id).await;
            assert_eq!(promoted.status, "available");
            assert_eq!(promoted.replica_state.as_deref(), Some("active"));
            assert!(!promoted.cast_rules_to_readonly);
            let old = f.get(f.active.id).await;
            assert_eq!(old.status, "available");
            assert_eq!(old.replica_state.as_deref(), Some("out_of_sync"));
            assert!(old.cast_rules_to_readonly);
            let queued: Vec<(String, String, Option<String>)> = f
                .core
                .store
                .list_operations(Some(OperationState::Pending))
                .await
                .expect("ops")
                .into_iter()
                .map(|o| (o.kind, o.target_id, o.host))
                .collect();
            assert_eq!(
                queued,
                [(
                    ops::UPDATE_SHARE_REPLICA.to_owned(),
                    f.active.id.to_string(),
                    Some("testhost@dummy1".to_owned())
                )]
            );
            // The demoted replica syncs from the new active on its own back end.
            f.manager(0)
                .handle(
                    &op(
                        ops::UPDATE_SHARE_REPLICA,
                        f.active.id,
                        json!({"trigger": "promote"}),
                    ),
                    f.active.id,
                )
                .await
                .expect("demote");
            assert_eq!(
                f.get(f.active.id).await.replica_state.as_deref(),
                Some("in_sync")
            );
            f.db.finish().await;
        }

        #[tokio::test]
        async fn rules_are_copied_to_new_replicas_and_follow_the_roles_on_promotion() {
            use crate::workers::OperationHandler;
            use crate::workers::share_manager::ShareManagerHandler;

            let f = fixture("readable").await;
            let rule = f
                .core
                .store
                .insert_access_rule(shoal_store::NewAccessRule {
                    id: Uuid::new_v4(),
                    share_id: f.share.id,
                    access_type: "ip".to_owned(),
                    access_to: "10.0.0.7".to_owned(),
                    access_level: "rw".to_owned(),
                    access_key: None,
                    metadata: BTreeMap::new(),
                    instance_ids: vec![f.active.id],
                    operations: Vec::new(),
                    now: Utc::now(),
                })
                .await
                .expect("rule");
            f.core
                .store
                .set_instance_access_state(rule.id, f.active.id, &[], "active", Utc::now())
                .await
                .expect("applied");
            let replica = f.created_secondary().await;
            let states = f.core.store.get_access_rule(rule.id).await.expect("rule");
            assert_eq!(
                states.instance_states.get(&replica.id).map(String::as_str),
                Some("active")
            );
            assert_eq!(replica.access_rules_status, "active");

            f.set(replica.id, status_and_state("replication_change", None))
                .await;
            f.manager(1)
                .handle(
                    &op(ops::PROMOTE_SHARE_REPLICA, replica.id, json!({})),
                    replica.id,
                )
                .await
                .expect("promote");
            let states = f.core.store.get_access_rule(rule.id).await.expect("rule");
            assert!(
                states
                    .instance_states
                    .values()
                    .all(|s| s == "queued_to_apply")
            );
            assert_eq!(f.get(replica.id).await.access_rules_status, "syncing");
            let pending = f
                .core
                .store
                .list_operations(Some(OperationState::Pending))
                .await
                .expect("ops");
            for (index, id) in [(0, f.active.id), (1, replica.id)] {
                let access = pending
                    .iter()
                    .find(|o| o.kind == ops::UPDATE_ACCESS && o.target_id == id.to_string())
                    .expect("an update_access operation per role change");
                ShareManagerHandler::new(f.core.clone(), f.backends[index].clone())
                    .handle(access)
                    .await
                    .expect("update access");
            }
            let level = |index: usize, id: Uuid| {
                f.dummy(index)
                    .applied_access_rules(&id.to_string())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|r| r.access_level)
                    .collect::<Vec<_>>()
            };
            // rw on the new active, ro on the readable former active.
            assert_eq!(level(1, replica.id), ["rw"]);
            assert_eq!(level(0, f.active.id), ["ro"]);
            let states = f.core.store.get_access_rule(rule.id).await.expect("rule");
            assert!(states.instance_states.values().all(|s| s == "active"));
            f.db.finish().await;
        }

        #[tokio::test]
        async fn a_failed_promotion_puts_every_replica_in_error() {
            let f = fixture("readable").await;
            let replica = f.created_secondary().await;
            f.set(replica.id, status_and_state("replication_change", None))
                .await;
            f.dummy(1).set_failure(DummyMethod::PromoteReplica, 1.0);
            f.manager(1)
                .handle(
                    &op(ops::PROMOTE_SHARE_REPLICA, replica.id, json!({})),
                    replica.id,
                )
                .await
                .expect("promote");
            for (id, state) in [(replica.id, "in_sync"), (f.active.id, "active")] {
                let after = f.get(id).await;
                assert_eq!(after.status, "error");
                assert_eq!(after.replica_state.as_deref(), Some(state));
            }
            assert_eq!(f.messages().await.len(), 2);
            f.db.finish().await;
        }

        #[tokio::test]
        async fn promotion_without_an_active_replica_goes_back_to_available() {
            let f = fixture("readable").await;
            let replica = f.created_secondary().await;
            f.set(
                f.active.id,
                ShareInstanceUpdate {
                    replica_state: Some(Some("out_of_sync".to_owned())),
                    ..Default::default()
                },
            )
            .await;
            f.set(replica.id, status_and_state("replication_change", None))
                .await;
            f.manager(1)
                .handle(
                    &op(ops::PROMOTE_SHARE_REPLICA, replica.id, json!({})),
                    replica.id,
                )
                .await
                .expect("promote");
            let after = f.get(replica.id).await;
            assert_eq!(after.status, "available");
            assert_eq!(after.replica_state.as_deref(), Some("in_sync"));
            assert_eq!(
                f.messages().await,
                [(
                    "SHARE_REPLICA".to_owned(),
                    messages::ACTION_PROMOTE.to_owned(),
                    messages::DETAIL_NO_ACTIVE_REPLICA.to_owned()
                )]
            );
            f.db.finish().await;
        }

        #[tokio::test]
        async fn delete_removes_the_replica_and_releases_its_quota() {
            let f = fixture("readable").await;
            let replica = f.created_secondary().await;
            let usage = |usages: BTreeMap<String, shoal_store::QuotaUsage>| {
                usages.get("share_replicas").map(|u| u.in_use)
            };
            let before = usage(f.core.store.get_quota_usages(PROJECT).await.expect("usage"));
            f.set(replica.id, status_and_state("deleting", None)).await;
            f.manager(1)
                .handle(
                    &op(ops::DELETE_SHARE_REPLICA, replica.id, json!({})),
                    replica.id,
                )
                .await
                .expect("delete");
            assert!(matches!(
                f.core.store.get_share_instance(replica.id).await,
                Err(StoreError::NotFound(_))
            ));
            assert!(f.core.store.get_share(f.share.id).await.is_ok());
            let after = usage(f.core.store.get_quota_usages(PROJECT).await.expect("usage"));
            assert_eq!(before.map(|n| n - 1), after);
            f.db.finish().await;
        }

        #[tokio::test]
        async fn delete_failure_is_error_deleting_unless_forced() {
            let f = fixture("readable").await;
            let replica = f.created_secondary().await;
            f.dummy(1).set_failure(DummyMethod::DeleteReplica, 1.0);
            f.set(replica.id, status_and_state("deleting", None)).await;
            let delete = op(ops::DELETE_SHARE_REPLICA, replica.id, json!({}));
            f.manager(1)
                .handle(&delete, replica.id)
                .await
                .expect("delete");
            let after = f.get(replica.id).await;
            assert_eq!(after.status, "error_deleting");
            assert_eq!(after.replica_state.as_deref(), Some("error"));

            f.set(replica.id, status_and_state("deleting", None)).await;
            let forced = op(
                ops::DELETE_SHARE_REPLICA,
                replica.id,
                json!({"force": true}),
            );
            f.manager(1)
                .handle(&forced, replica.id)
                .await
                .expect("force");
            assert!(matches!(
                f.core.store.get_share_instance(replica.id).await,
                Err(StoreError::NotFound(_))
            ));
            f.db.finish().await;
        }

        #[tokio::test]
        async fn the_periodic_task_queues_one_update_per_eligible_replica() {
            let f = fixture("readable").await;
            let replica = f.created_secondary().await;
            let busy = f.secondary().await; // still creating: skipped
            let updater = ReplicaUpdater::new(f.core.clone(), f.backends.clone());
            assert_eq!(updater.run_once().await.expect("pass"), 1);
            // The first update is still pending: no second one.
            assert_eq!(updater.run_once().await.expect("pass"), 0);
            let pending = f
                .core
                .store
                .list_operations(Some(OperationState::Pending))
                .await
                .expect("ops");
            assert_eq!(pending.len(), 1);
            assert_eq!(pending[0].target_id, replica.id.to_string());
            assert_eq!(pending[0].host.as_deref(), Some("testhost@dummy2"));
            assert_eq!(pending[0].payload["trigger"], "periodic");
            assert_ne!(pending[0].target_id, busy.id.to_string());
            f.db.finish().await;
        }
    }
}
