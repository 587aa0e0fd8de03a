//! Wake-ups from other nodes: the scheduler and share roles of a node subscribe to the
//! store's operation notices ([`shoal_store::Store::listen_for_operations`], PostgreSQL's
//! `LISTEN`/`NOTIFY`) and wake their workers when an operation was enqueued for one of
//! their queues, so work enqueued by another node starts at once instead of at the next
//! poll. Nothing is persisted: a missed notice only delays work until the next
//! `operations.poll_interval` pass, which stays the fallback (and the only cross-process
//! mechanism on SQLite, whose store has no notices).

use std::collections::BTreeSet;
use std::sync::Arc;

use shoal_store::{OperationNotice, OperationNotices};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::OperationWorker;
use crate::Core;

/// Forwards the store's operation notices to this node's workers.
pub struct RemoteWakeups {
    core: Arc<Core>,
    notices: OperationNotices,
    /// A scheduler worker runs here: scheduler work (no host) is ours.
    scheduler: bool,
    /// Share hosts (`host@backend`) whose queues this node's workers serve.
    hosts: BTreeSet<String>,
}

impl RemoteWakeups {
    /// Subscribes for the queues of `workers`. `None` when the store has no notices
    /// (SQLite) or there is no worker to wake (an API-only node).
    pub async fn subscribe(core: &Arc<Core>, workers: &[Arc<OperationWorker>]) -> Option<Self> {
        if workers.is_empty() {
            return None;
        }
        let notices = core.store.listen_for_operations().await?;
        let scheduler = workers.iter().any(|w| w.queue_host().is_none());
        let hosts = workers
            .iter()
            .filter_map(|w| w.queue_host().map(str::to_owned))
            .collect();
        Some(Self {
            core: core.clone(),
            notices,
            scheduler,
            hosts,
        })
    }

    /// Whether `notice` may concern one of this node's queues.
    fn concerns_us(&self, notice: &OperationNotice) -> bool {
        match notice {
            OperationNotice::Listening => true,
            OperationNotice::Enqueued { host: None, .. } => self.scheduler,
            OperationNotice::Enqueued {
                host: Some(host), ..
            } => self.hosts.contains(host),
        }
    }

    /// Wakes the workers for every notice that concerns them, until `cancel` or until the
    /// store stops listening (it was closed).
    pub async fn run(mut self, cancel: CancellationToken) {
        info!(
            scheduler = self.scheduler,
            hosts = ?self.hosts,
            "waking workers on operations enqueued by other nodes"
        );
        loop {
            let notice = tokio::select! {
                notice = self.notices.recv() => notice,
                _ = cancel.cancelled() => return,
            };
            let Some(notice) = notice else { return };
            if self.concerns_us(&notice) {
                debug!(?notice, "wake-up from the database");
                self.core.wake_workers();
            }
        }
    }
}
