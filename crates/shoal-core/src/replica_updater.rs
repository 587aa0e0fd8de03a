//! The periodic replica refresh of the share role (Manila's
//! `periodic_share_replica_update`): every `periodic.replica_state_update_interval`
//! (default 300 s, as Manila) each back end of this node queues an `update_share_replica`
//! operation for each of its replicas that is not active, not busy (transitional status)
//! and not `error_deleting`. The operation then syncs the replica from the active one and
//! stores the state the driver reports ([`crate::workers::replica_manager`]). The same pass
//! queues `update_replica_snapshot` for the `creating` snapshot instances of this node's
//! secondaries (Manila's `periodic_share_replica_snapshot_update`).
//!
//! Nothing is persisted here but the operations. The task does not call drivers itself, so
//! the sync runs under the share lock with the operation worker's lease and retries like
//! any other operation. A replica that still has an unfinished update operation gets no
//! second one, so a slow back end does not pile them up.
//!
//! Between passes, [`ReplicaUpdater::follow_changes`] queues the same operation for every
//! secondary, on this node or another, of a share whose active changed through this node's
//! NFS data plane (trigger `changes`); the operation is routed to the secondary's node.
//!
//! Tests call [`ReplicaUpdater::run_once`] instead of waiting for the interval.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use shoal_driver::Journals;

use shoal_store::OperationState;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info_span, warn};

use crate::drivers::Backend;
use crate::ops::{self, UpdateReplicaPayload};
use crate::periodic::{FirstPass, run_every};
use crate::workers::replica_manager::skips_update;
use crate::{Core, CoreResult};

/// Trigger recorded for syncs this task asks for.
const TRIGGER_PERIODIC: &str = "periodic";

/// Trigger recorded for syncs asked for because an active changed through the data plane.
const TRIGGER_CHANGES: &str = "changes";

/// How long changes through the data plane settle before the secondaries are updated: a
/// burst of writes costs one sync, and a steady load is followed a few times a second.
pub const CHANGE_DEBOUNCE: Duration = Duration::from_millis(100);

/// The periodic replica refresh of this node's back ends.
pub struct ReplicaUpdater {
    core: Arc<Core>,
    backends: Vec<Backend>,
}

impl ReplicaUpdater {
    /// Refresh task for `backends` (empty unless the share role runs).
    pub fn new(core: Arc<Core>, backends: Vec<Backend>) -> Self {
        Self { core, backends }
    }

    /// One pass: queues an update for every replica of this node's back ends that needs
    /// one and has none pending, wakes the workers, and returns how many were queued.
    pub async fn run_once(&self) -> CoreResult<usize> {
        if self.backends.is_empty() {
            return Ok(0);
        }
        let store = &self.core.store;
        let pending = self.pending_updates().await?;
        let mut queued = 0;
        for backend in &self.backends {
            // Secondaries' snapshot instances still being copied.
            queued += crate::workers::snapshot_manager::queue_replica_snapshot_updates(
                &self.core, backend, &pending,
            )
            .await?;
            for instance in store
                .list_share_instances_on_host(&backend.service_host)
                .await?
            {
                if skips_update(&instance) || pending.contains(&instance.id.to_string()) {
                    continue;
                }
                if self.queue_update(&instance, TRIGGER_PERIODIC).await? {
                    queued += 1;
                }
            }
        }
        if queued > 0 {
            debug!(queued, "queued {queued} periodic replica updates");
            self.core.wake_workers();
        }
        Ok(queued)
    }

    /// Queues an `update_share_replica` of `instance` recording `trigger`; false when the
    /// instance has no host to run it.
    async fn queue_update(
        &self,
        instance: &shoal_store::ShareInstanceRow,
        trigger: &str,
    ) -> CoreResult<bool> {
        let payload = serde_json::to_value(UpdateReplicaPayload {
            trigger: trigger.to_owned(),
        })
        .map_err(anyhow::Error::from)?;
        let Some(op) = ops::for_instance_host(
            ops::UPDATE_SHARE_REPLICA,
            instance.id,
            &instance.host,
            payload,
            self.core.now(),
        ) else {
            return Ok(false);
        };
        self.core.store.insert_operation(op).await?;
        Ok(true)
    }

    /// The updates and replica-snapshot updates already pending or running, by target id.
    async fn pending_updates(&self) -> CoreResult<BTreeSet<String>> {
        let mut pending = BTreeSet::new();
        for state in [OperationState::Pending, OperationState::Running] {
            pending.extend(
                self.core
                    .store
                    .list_operations(Some(state))
                    .await?
                    .into_iter()
                    .filter(|op| {
                        op.kind == ops::UPDATE_SHARE_REPLICA
                            || op.kind == ops::UPDATE_REPLICA_SNAPSHOT
                    })
                    .map(|op| op.target_id),
            );
        }
        Ok(pending)
    }

    /// Queues an update for each secondary, on any node, of the shares whose active
    /// instance is in `actives` (ids of instances that changed through this node's data
    /// plane). Each operation goes to the node of its secondary (`ops::for_instance_host`),
    /// whose workers claim it (woken by the database's notification on Postgres). Returns
    /// the actives with a secondary whose update is still pending or running: their
    /// changes may have come too late for it, so the caller asks again.
    pub async fn run_for_changes(
        &self,
        actives: &BTreeSet<String>,
    ) -> CoreResult<BTreeSet<String>> {
        let store = &self.core.store;
        let mut shares = std::collections::BTreeMap::new();
        for active in actives {
            let Ok(id) = uuid::Uuid::parse_str(active) else {
                continue;
            };
            match store.get_share_instance(id).await {
                Ok(row) => {
                    shares.insert(row.share_id, active.clone());
                }
                Err(shoal_store::StoreError::NotFound(_)) => {}
                Err(err) => return Err(err.into()),
            }
        }
        if shares.is_empty() {
            return Ok(BTreeSet::new());
        }
        let pending = self.pending_updates().await?;
        let mut retry = BTreeSet::new();
        let mut queued = 0;
        for (share_id, active) in &shares {
            for instance in store.list_share_instances(*share_id).await? {
                if skips_update(&instance) {
                    continue;
                }
                if pending.contains(&instance.id.to_string()) {
                    retry.insert(active.clone());
                    continue;
                }
                if self.queue_update(&instance, TRIGGER_CHANGES).await? {
                    queued += 1;
                }
            }
        }
        if queued > 0 {
            debug!(queued, "queued {queued} replica updates after changes");
            self.core.wake_workers();
        }
        Ok(retry)
    }

    /// Follows the changes the data plane journals until cancelled: [`CHANGE_DEBOUNCE`]
    /// after a change, the secondaries of the changed shares (on any node) are updated.
    pub async fn follow_changes(
        self: Arc<Self>,
        journals: Arc<Journals>,
        cancel: CancellationToken,
    ) {
        loop {
            tokio::select! {
                () = journals.wait_for_changes() => {}
                () = cancel.cancelled() => return,
            }
            tokio::select! {
                () = tokio::time::sleep(CHANGE_DEBOUNCE) => {}
                () = cancel.cancelled() => return,
            }
            let changed = journals.begin_round();
            match self
                .run_for_changes(&changed)
                .instrument(info_span!("replica_follow"))
                .await
            {
                Ok(retry) => journals.end_round(retry),
                Err(err) => {
                    warn!(error = %err, "replica update after changes failed: {err}");
                    journals.end_round(changed);
                }
            }
        }
    }

    /// Runs [`Self::run_once`] every `replica_state_update_interval` until cancelled. The
    /// first pass waits one interval: replicas were just created or checked at start-up.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let period = self.core.config.periodic.replica_state_update_interval;
        run_every(
            period,
            FirstPass::AfterOnePeriod,
            cancel,
            || info_span!("replica_update"),
            "periodic replica update failed",
            || self.run_once(),
        )
        .await;
    }
}
