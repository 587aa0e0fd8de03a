//! The share role's back-end work (Manila's `ShareManager`): one handler per back end runs
//! the operations queued for `host@backend`. Each handler looks at the instance first and
//! does nothing when the work is already done, so a re-run after a crash is harmless; the
//! state changes are compare-and-set on the status the operation expects (`creating`,
//! `deleting`, `extending`, `shrinking`).
//!
//! Outcomes follow Manila: a driver failure on create gives `error`, on delete
//! `error_deleting` (unless forced), on extend `extending_error` (reservation rolled back),
//! on shrink `shrinking_error`, except a shrink refused because data would be lost, which
//! puts the share back to `available` with a user message.

use std::sync::Arc;

use async_trait::async_trait;
use shoal_driver::{AccessRule, AccessRuleResult, DriverError, ShareInstanceRef};
use shoal_store::{
    OperationRow, ResizeCommit, ShareInstanceRow, ShareInstanceUpdate, ShareRow, StoreError,
};
use tracing::{info, warn};
use uuid::Uuid;

use super::OperationHandler;
use super::replica_manager::ReplicaManager;
use super::snapshot_manager::{self, SnapshotManager};
use crate::drivers::Backend;
use crate::ops::{self, DeletePayload, ResizePayload};
use crate::{Core, CoreResult, messages};
use shoal_replication::failpoints::crash_point;

/// Handler of one share service's queue.
pub struct ShareManagerHandler {
    core: Arc<Core>,
    backend: Backend,
    /// The replica operations of the same back end.
    replicas: ReplicaManager,
    /// The snapshot operations of the same back end.
    snapshots: SnapshotManager,
}

/// Ignore a lost compare-and-set: another run already moved the instance on.
fn ignore_conflict<T>(result: Result<T, StoreError>) -> CoreResult<()> {
    match result {
        Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

fn status(status: &str) -> ShareInstanceUpdate {
    ShareInstanceUpdate {
        status: Some(status.to_owned()),
        ..Default::default()
    }
}

impl ShareManagerHandler {
    /// Handler for `backend`.
    pub fn new(core: Arc<Core>, backend: Backend) -> Self {
        let replicas = ReplicaManager::new(core.clone(), backend.clone());
        let snapshots = SnapshotManager::new(core.clone(), backend.clone());
        Self {
            core,
            backend,
            replicas,
            snapshots,
        }
    }

    /// The driver's view of an instance (Manila's share instance dict).
    pub(crate) fn instance_ref(instance: &ShareInstanceRow, share: &ShareRow) -> ShareInstanceRef {
        ShareInstanceRef {
            id: instance.id.to_string(),
            share_id: share.id.to_string(),
            pool: instance
                .host
                .split_once('#')
                .map(|(_, pool)| pool.to_owned())
                .unwrap_or_default(),
            size_gb: u64::try_from(share.size_gb).unwrap_or(0),
            share_proto: share.share_proto.clone(),
        }
    }

    /// Loads the instance (None when gone) and its share.
    async fn load(&self, id: Uuid) -> CoreResult<Option<(ShareInstanceRow, ShareRow)>> {
        let instance = match self.core.store.get_share_instance(id).await {
            Ok(instance) => instance,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(err) => return Err(err.into()),
        };
        let share = match self.core.store.get_share(instance.share_id).await {
            Ok(share) => share,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(err) => return Err(err.into()),
        };
        Ok(Some((instance, share)))
    }

    async fn message(
        &self,
        share: &ShareRow,
        instance: &ShareInstanceRow,
        action: &str,
        detail: &str,
    ) -> CoreResult<()> {
        let (resource_type, resource_id) = if instance.replica_state.is_some()
            && share.replication_type.is_some()
            && instance_is_secondary(instance)
        {
            ("SHARE_REPLICA", instance.id)
        } else {
            ("SHARE", share.id)
        };
        messages::record(
            &self.core,
            &share.project_id,
            resource_type,
            &resource_id.to_string(),
            action,
            detail,
            "ERROR",
        )
        .await
    }

    async fn create(&self, id: Uuid, payload: ops::CreateInstancePayload) -> CoreResult<()> {
        let Some((instance, share)) = self.load(id).await? else {
            return Ok(());
        };
        if instance.status != "creating" {
            return Ok(());
        }
        let now = self.core.now();
        let reference = Self::instance_ref(&instance, &share);
        let outcome = match payload.snapshot_instance_id {
            // A share from a snapshot: the snapshot must still exist.
            Some(source) => {
                match snapshot_manager::source_snapshot_ref(&self.core, source).await? {
                    Some(snapshot) => {
                        self.backend
                            .driver
                            .create_share_from_snapshot(&reference, &snapshot)
                            .await
                    }
                    None => Err(DriverError::InvalidInput(format!(
                        "snapshot instance {source} no longer exists"
                    ))),
                }
            }
            None => self.backend.driver.create_share(&reference).await,
        };
        match outcome {
            Ok(locations) => {
                crash_point("share_create::after_backend_create");
                let locations = crate::export_locations::from_driver(locations);
                self.core
                    .store
                    .replace_export_locations(instance.id, locations, now)
                    .await?;
                crash_point("share_create::before_available");
                let update = ShareInstanceUpdate {
                    status: Some("available".to_owned()),
                    // The first instance of a replicated share becomes its active replica.
                    replica_state: share
                        .replication_type
                        .is_some()
                        .then(|| Some("active".to_owned())),
                    progress: Some(Some("100%".to_owned())),
                    launched_at: Some(now),
                    ..Default::default()
                };
                ignore_conflict(
                    self.core
                        .store
                        .update_share_instance_if(
                            instance.id,
                            &["creating"],
                            update,
                            Vec::new(),
                            now,
                        )
                        .await,
                )?;
                info!(share.id = %share.id, share_instance.id = %instance.id, "share instance {} is available", instance.id);
            }
            Err(err) => {
                warn!(share_instance.id = %instance.id, error = %err, "creating share instance {} failed: {err}", instance.id);
                ignore_conflict(
                    self.core
                        .store
                        .update_share_instance_if(
                            instance.id,
                            &["creating"],
                            status("error"),
                            Vec::new(),
                            now,
                        )
                        .await,
                )?;
                self.message(
                    &share,
                    &instance,
                    messages::ACTION_CREATE,
                    messages::DETAIL_UNEXPECTED,
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn delete(&self, id: Uuid, payload: DeletePayload) -> CoreResult<()> {
        let Some((instance, share)) = self.load(id).await? else {
            return Ok(());
        };
        if instance.status != "deleting" {
            return Ok(());
        }
        let now = self.core.now();
        if let Err(err) = self
            .backend
            .driver
            .delete_share(&Self::instance_ref(&instance, &share))
            .await
        {
            if !payload.force {
                warn!(share_instance.id = %instance.id, error = %err, "deleting share instance {} failed: {err}", instance.id);
                ignore_conflict(
                    self.core
                        .store
                        .update_share_instance_if(
                            instance.id,
                            &["deleting"],
                            status("error_deleting"),
                            Vec::new(),
                            now,
                        )
                        .await,
                )?;
                return self
                    .message(
                        &share,
                        &instance,
                        messages::ACTION_DELETE,
                        messages::DETAIL_UNEXPECTED,
                    )
                    .await;
            }
            warn!(share_instance.id = %instance.id, error = %err, "force delete of {} ignores the back-end error: {err}", instance.id);
        }
        crash_point("share_delete::before_row_delete");
        let siblings = self.core.store.list_share_instances(share.id).await?;
        let last = siblings.iter().all(|s| s.id == instance.id);
        let release = if payload.no_quota {
            shoal_store::InstanceRelease::default()
        } else {
            crate::shares::instance_release(&share, &instance, last)
        };
        let share_gone = self
            .core
            .store
            .delete_share_instance_and_maybe_share(instance.id, release, now)
            .await?;
        info!(share.id = %share.id, share_instance.id = %instance.id, share_gone, "deleted share instance {}", instance.id);
        Ok(())
    }

    /// Extend or shrink: both commit their quota reservations (positive for extend,
    /// negative for shrink) once the back end is done, and roll them back otherwise, so a
    /// re-run after a crash neither loses nor doubles a quota change.
    async fn resize(&self, id: Uuid, payload: ResizePayload, kind: Resize) -> CoreResult<()> {
        let Some((instance, share)) = self.load(id).await? else {
            return Ok(());
        };
        let (busy, failed, action) = match kind {
            Resize::Extend => ("extending", "extending_error", messages::ACTION_EXTEND),
            Resize::Shrink => ("shrinking", "shrinking_error", messages::ACTION_SHRINK),
        };
        if instance.status != busy {
            return Ok(());
        }
        let now = self.core.now();
        let reference = Self::instance_ref(&instance, &share);
        let target = u64::try_from(payload.new_size).unwrap_or(0);
        let outcome = match kind {
            Resize::Extend => self.backend.driver.extend_share(&reference, target).await,
            Resize::Shrink => self.backend.driver.shrink_share(&reference, target).await,
        };
        let store = &self.core.store;
        let (outcome_status, detail) = match outcome {
            Ok(()) => {
                // The size, the reservations and the replica correction in one
                // transaction: a replica delete in between releases what it finds.
                let per_replica_gib = crate::quotas::with_scopes(
                    shoal_store::QuotaRequest {
                        project_id: share.project_id.clone(),
                        deltas: [("replica_gigabytes".to_owned(), 1)].into(),
                        limits: Default::default(),
                    },
                    &share.user_id,
                    share.share_type_id,
                );
                let commit = ResizeCommit {
                    share_id: share.id,
                    new_size: payload.new_size,
                    reservations: payload.reservations.clone(),
                    reserved_replicas: payload.replicas,
                    per_replica_gib,
                };
                store.commit_share_resize(commit, now).await?;
                ("available", None)
            }
            // Manila puts a share whose shrink would lose data back to available.
            Err(DriverError::ShrinkBelowUsage { used_bytes }) => {
                warn!(share_instance.id = %instance.id, used_bytes, "shrink of {} refused: {used_bytes} bytes in use", instance.id);
                ("available", Some(messages::DETAIL_DRIVER_REFUSED_SHRINK))
            }
            Err(err) => {
                warn!(share_instance.id = %instance.id, error = %err, "{busy} share instance {} failed: {err}", instance.id);
                (failed, Some(messages::DETAIL_UNEXPECTED))
            }
        };
        if detail.is_some() {
            store
                .rollback_reservations(&payload.reservations, now)
                .await?;
        }
        ignore_conflict(
            store
                .update_share_instance_if(
                    instance.id,
                    &[busy],
                    status(outcome_status),
                    Vec::new(),
                    now,
                )
                .await,
        )?;
        match detail {
            Some(detail) => self.message(&share, &instance, action, detail).await,
            None => Ok(()),
        }
    }

    /// Brings the instance's rules to their wanted states: queued rules are applied, denied
    /// ones removed, each rule's outcome recorded per instance.
    async fn update_access(&self, id: Uuid) -> CoreResult<()> {
        let Some((instance, share)) = self.load(id).await? else {
            return Ok(());
        };
        if instance.host.is_empty() {
            return Ok(());
        }
        let store = &self.core.store;
        let now = self.core.now();
        let rules = store.list_access_rules(share.id).await?;
        let mut keep = Vec::new();
        let mut add = Vec::new();
        let mut delete = Vec::new();
        for rule in &rules {
            let Some(state) = rule.instance_states.get(&instance.id) else {
                continue;
            };
            let driver_rule = AccessRule {
                id: rule.id.to_string(),
                access_type: rule.access_type.clone(),
                access_to: rule.access_to.clone(),
                // Readable secondaries get every rule read-only (cast_rules_to_readonly).
                access_level: if instance.cast_rules_to_readonly {
                    "ro".to_owned()
                } else {
                    rule.access_level.clone()
                },
            };
            match state.as_str() {
                "queued_to_apply" | "applying" => {
                    ignore_conflict(
                        store
                            .set_instance_access_state(
                                rule.id,
                                instance.id,
                                &["queued_to_apply", "applying"],
                                "applying",
                                now,
                            )
                            .await,
                    )?;
                    add.push(driver_rule.clone());
                    keep.push(driver_rule);
                }
                // A level change (2.88): the rule is re-applied with its new level; the
                // drivers take the full list as the truth, so it goes as an addition.
                "queued_to_update" | "updating" => {
                    ignore_conflict(
                        store
                            .set_instance_access_state(
                                rule.id,
                                instance.id,
                                &["queued_to_update", "updating"],
                                "updating",
                                now,
                            )
                            .await,
                    )?;
                    add.push(driver_rule.clone());
                    keep.push(driver_rule);
                }
                "queued_to_deny" | "denying" => {
                    ignore_conflict(
                        store
                            .set_instance_access_state(
                                rule.id,
                                instance.id,
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
        let reference = Self::instance_ref(&instance, &share);
        let results = match self
            .backend
            .driver
            .update_access(&reference, &keep, &add, &delete)
            .await
        {
            Ok(results) => results,
            Err(err) => {
                warn!(share_instance.id = %instance.id, error = %err, "update_access on {} failed: {err}", instance.id);
                add.iter()
                    .map(|r| (r.id.clone(), AccessRuleResult::Error(err.to_string())))
                    .collect()
            }
        };
        let mut any_error = false;
        for rule in &add {
            let Ok(rule_id) = Uuid::parse_str(&rule.id) else {
                continue;
            };
            let state = match results.get(&rule.id) {
                Some(AccessRuleResult::Applied) => "active",
                _ => {
                    any_error = true;
                    "error"
                }
            };
            ignore_conflict(
                store
                    .set_instance_access_state(
                        rule_id,
                        instance.id,
                        &["applying", "updating"],
                        state,
                        now,
                    )
                    .await,
            )?;
        }
        for rule in &delete {
            if let Ok(rule_id) = Uuid::parse_str(&rule.id) {
                store.remove_instance_access(rule_id, instance.id).await?;
            }
        }
        let errored = any_error
            || store.list_access_rules(share.id).await?.iter().any(|r| {
                r.instance_states
                    .get(&instance.id)
                    .is_some_and(|s| s == "error")
            });
        let update = ShareInstanceUpdate {
            access_rules_status: Some(if errored { "error" } else { "active" }.to_owned()),
            ..Default::default()
        };
        ignore_conflict(
            store
                .update_share_instance_if(instance.id, &[], update, Vec::new(), now)
                .await,
        )?;
        Ok(())
    }
}

/// Direction of a size change.
#[derive(Debug, Clone, Copy)]
enum Resize {
    Extend,
    Shrink,
}

/// A secondary replica (its own resource in user messages), as opposed to the share's
/// active instance.
fn instance_is_secondary(instance: &ShareInstanceRow) -> bool {
    instance
        .replica_state
        .as_deref()
        .is_some_and(|s| s != "active")
}

#[async_trait]
impl OperationHandler for ShareManagerHandler {
    async fn handle(&self, op: &OperationRow) -> CoreResult<()> {
        let Ok(id) = Uuid::parse_str(&op.target_id) else {
            warn!(
                op.id = op.id,
                "operation {} has a malformed target {:?}", op.id, op.target_id
            );
            return Ok(());
        };
        let payload = op.payload.clone();
        match op.kind.as_str() {
            ops::CREATE_SHARE_INSTANCE => {
                self.create(id, serde_json::from_value(payload).unwrap_or_default())
                    .await
            }
            ops::DELETE_SHARE_INSTANCE => {
                self.delete(id, serde_json::from_value(payload).unwrap_or_default())
                    .await
            }
            ops::EXTEND_SHARE_INSTANCE | ops::SHRINK_SHARE_INSTANCE => {
                let Ok(resize) = serde_json::from_value::<ResizePayload>(payload) else {
                    warn!(op.id = op.id, "operation {} has a malformed payload", op.id);
                    return Ok(());
                };
                let kind = if op.kind == ops::EXTEND_SHARE_INSTANCE {
                    Resize::Extend
                } else {
                    Resize::Shrink
                };
                self.resize(id, resize, kind).await
            }
            ops::UPDATE_ACCESS => self.update_access(id).await,
            ops::MANAGE_SHARE => {
                let Ok(manage) = serde_json::from_value(payload) else {
                    warn!(op.id = op.id, "operation {} has a malformed payload", op.id);
                    return Ok(());
                };
                super::lifecycle::manage(&self.core, &self.backend, id, manage).await
            }
            ops::UNMANAGE_SHARE => super::lifecycle::unmanage(&self.core, &self.backend, id).await,
            kind if ReplicaManager::handles(kind) => self.replicas.handle(op, id).await,
            kind if SnapshotManager::handles(kind) => self.snapshots.handle(op, id).await,
            other => {
                warn!(
                    op.id = op.id,
                    "share service {} has no handler for {other}", self.backend.service_host
                );
                Ok(())
            }
        }
    }
}
