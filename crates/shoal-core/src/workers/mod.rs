//! Workers that carry out durable operations: the scheduler role places instances on pools
//! ([`scheduler`]) and each back end of the share role does the back-end work
//! ([`share_manager`], with the replica operations in [`replica_manager`] and the snapshot
//! operations in [`snapshot_manager`]).
//!
//! A worker claims an operation with a compare-and-set and a lease, keeps the lease alive
//! while the handler runs, then completes it, or records the failure and retries later with
//! backoff. A worker that dies simply stops renewing: once its lease expires another worker
//! (or the same node after a restart) claims the operation again, which is why every handler
//! is idempotent. Handlers turn back-end failures into `error` states themselves and return
//! `Ok`; an `Err` means "could not decide" (database down, a bug) and is retried.
//!
//! A worker runs a pass when woken ([`Core::wake_workers`]: by this process after an
//! enqueue, or by [`wakeups`] on a notice from the database that another node enqueued
//! work) and at least every `operations.poll_interval`. Tests call
//! [`OperationWorker::run_once`] to process everything queued, instead of waiting for the
//! loop.

pub mod lifecycle;
pub mod replica_manager;
pub mod scheduler;
pub mod share_manager;
pub mod snapshot_manager;
pub mod wakeups;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use shoal_store::{ClaimRequest, OperationRow, StoreError};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span, warn};

use crate::metrics::{self, Attempt};
use crate::{Core, CoreError, CoreResult};

/// Does the work of one kind of operation.
#[async_trait]
pub trait OperationHandler: Send + Sync + 'static {
    /// Carries out `op`. Must be idempotent (it may run again after a crash).
    async fn handle(&self, op: &OperationRow) -> CoreResult<()>;
}

/// Claims and runs the operations of one queue: the scheduler's (`host` `None`) or one
/// share service's (`host@backend`).
pub struct OperationWorker {
    core: Arc<Core>,
    /// Claim owner name: `<queue>/<uuid>`, unique per process so a restarted node does not
    /// mistake its predecessor's claims for its own.
    name: String,
    host: Option<String>,
    handler: Arc<dyn OperationHandler>,
}

/// Longest retry backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

impl OperationWorker {
    /// A worker for the queue of `host` (`None` = scheduler).
    pub fn new(core: Arc<Core>, host: Option<String>, handler: Arc<dyn OperationHandler>) -> Self {
        let queue = host
            .clone()
            .unwrap_or_else(|| format!("{}/scheduler", core.config.host));
        let name = format!("{queue}/{}", uuid::Uuid::new_v4().simple());
        Self {
            core,
            name,
            host,
            handler,
        }
    }

    /// The share host (`host@backend`) whose queue this worker serves; `None` for the
    /// scheduler's.
    pub fn queue_host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// Processes every claimable operation of the queue, up to `operations.concurrency` at a
    /// time, and returns how many ran. A failed claim (say, a busy database) stops claiming,
    /// but the operations already running finish before the error is returned: dropping
    /// the `JoinSet` would abort them mid-way and leave them `running` until their lease
    /// expires, with their objects stuck in a transitional state meanwhile.
    pub async fn run_once(self: &Arc<Self>) -> CoreResult<usize> {
        let concurrency = self.core.config.operations.concurrency.max(1);
        let mut running = JoinSet::new();
        let mut count = 0;
        let mut claim_error = None;
        loop {
            while claim_error.is_none() && running.len() < concurrency {
                let op = match self.claim().await {
                    Ok(Some(op)) => op,
                    Ok(None) => break,
                    Err(err) => {
                        claim_error = Some(err);
                        break;
                    }
                };
                count += 1;
                let worker = self.clone();
                let span = info_span!("operation", op.id = op.id, op.kind = %op.kind, target = %op.target_id);
                running.spawn(async move { worker.process(op).await }.instrument(span));
            }
            if running.join_next().await.is_none() {
                return match claim_error {
                    Some(err) => Err(err),
                    None => Ok(count),
                };
            }
        }
    }

    async fn claim(&self) -> CoreResult<Option<OperationRow>> {
        let now = self.core.now();
        let request = ClaimRequest {
            worker: &self.name,
            host: self.host.as_deref(),
            kinds: None,
            now,
            lease: self.core.config.operations.lease,
        };
        let claimed = self.core.store.claim_next_operation(request).await?;
        if let Some(op) = &claimed {
            crate::metrics::operation_claimed(op, now);
        }
        Ok(claimed)
    }

    /// Runs one claimed operation with lease renewal, then records the outcome.
    async fn process(self: Arc<Self>, op: OperationRow) {
        let lease = self.core.config.operations.lease;
        // Aborted on drop too: should this future be dropped mid-way, a renewer left running
        // would keep the lease alive forever and no worker could ever take the operation over.
        let renewer = AbortOnDrop({
            let (core, name, id) = (self.core.clone(), self.name.clone(), op.id);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(lease / 3);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    match core
                        .store
                        .renew_operation_lease(id, &name, core.now(), lease)
                        .await
                    {
                        Ok(_) => {}
                        // Another worker holds it now: renewing is over.
                        Err(err @ (StoreError::Conflict(_) | StoreError::NotFound(_))) => {
                            warn!(op.id = id, error = %err, "lost the lease of operation {id}: {err}");
                            return;
                        }
                        // A busy or briefly unreachable database: the lease still runs for
                        // a while, so try again at the next tick rather than let it lapse
                        // while the handler works on.
                        Err(err) => {
                            warn!(op.id = id, error = %err, "could not renew the lease of operation {id}, retrying: {err}");
                        }
                    }
                }
            })
        });
        let started = std::time::Instant::now();
        let outcome = self.handler.handle(&op).await;
        let took = started.elapsed().as_secs_f64();
        drop(renewer);
        let now = self.core.now();
        let recorded = match outcome {
            Ok(()) => {
                metrics::operation_finished(&op.kind, Attempt::Completed, took);
                self.core
                    .store
                    .complete_operation(op.id, &self.name, now)
                    .await
                    .map(|_| ())
            }
            Err(err) => {
                // Waiting for another node's per-share lock is not a failed attempt: retry
                // soon, and never give up on it (the lock's lease bounds the wait).
                let busy = matches!(err, CoreError::Busy(_));
                let give_up = !busy && op.attempts >= self.core.config.operations.max_attempts;
                let backoff = if busy {
                    self.core.config.operations.poll_interval.min(MAX_BACKOFF)
                } else {
                    Duration::from_millis(
                        250 * 2u64.saturating_pow(op.attempts.clamp(0, 16) as u32),
                    )
                    .min(MAX_BACKOFF)
                };
                let retry_at = (!give_up)
                    .then(|| now + chrono::Duration::from_std(backoff).unwrap_or_default());
                let attempt = match (busy, give_up) {
                    (true, _) => Attempt::LockBusy,
                    (false, true) => Attempt::GaveUp,
                    (false, false) => Attempt::Retried,
                };
                metrics::operation_finished(&op.kind, attempt, took);
                warn!(op.id = op.id, error = %err, give_up, "operation {} ({}) failed: {err}", op.id, op.kind);
                self.core
                    .store
                    .fail_operation(op.id, &self.name, &err.to_string(), retry_at, now)
                    .await
                    .map(|_| ())
            }
        };
        match recorded {
            Ok(()) => {}
            // Our lease expired and someone else runs it now; their outcome counts.
            Err(StoreError::Conflict(_)) => warn!(
                op.id = op.id,
                "operation {} was taken over by another worker", op.id
            ),
            Err(err) => {
                warn!(op.id = op.id, error = %err, "could not record the outcome of operation {}: {err}", op.id)
            }
        }
        // Handlers enqueue follow-up work (e.g. scheduling → creation).
        self.core.wake_workers();
    }

    /// Runs [`Self::run_once`] whenever woken, and at least every `poll_interval`.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let poll = self.core.config.operations.poll_interval;
        loop {
            // Register before working, so a wake-up sent during the pass is not lost.
            let woken = self.core.work_available.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let pass = self.core.background_work.read().await;
            if let Err(err) = self.run_once().await {
                warn!(error = %err, "operation worker {} failed: {err}", self.name);
            }
            drop(pass);
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(poll) => {}
                _ = cancel.cancelled() => return,
            }
        }
    }
}

/// A spawned task that is aborted when this handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use shoal_store::NewOperation;

    use super::*;
    use crate::Config;

    /// `slow` sleeps, then notes that it finished; `break_claims` closes the store, so the
    /// worker's next claim fails.
    struct Handler {
        store: Arc<dyn shoal_store::Store>,
        slow_finished: Arc<AtomicBool>,
    }

    #[async_trait]
    impl OperationHandler for Handler {
        async fn handle(&self, op: &OperationRow) -> CoreResult<()> {
            match op.kind.as_str() {
                "slow" => {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    self.slow_finished.store(true, Ordering::SeqCst);
                }
                _ => self.store.close().await,
            }
            Ok(())
        }
    }

    /// Found by `shoal bench soak`: a claim that failed with "database is locked" made
    /// `run_once` return at once, dropping its `JoinSet` and so aborting every operation
    /// still running; their replicas stayed `creating` until the leases expired.
    #[tokio::test]
    async fn test_reproduce_soak_failed_claim_does_not_abort_running_operations() {
        let db = shoal_store::testing::fresh_store_from_env().await;
        let store = db.store().clone();
        let mut config = Config::default();
        config.operations.concurrency = 4;
        let core = Arc::new(Core::new(Arc::new(config), store.clone()));
        for kind in ["slow", "break_claims"] {
            store
                .insert_operation(NewOperation {
                    kind: kind.to_owned(),
                    target_id: kind.to_owned(),
                    host: Some("h@b".to_owned()),
                    payload: serde_json::Value::Null,
                    now: core.now(),
                })
                .await
                .expect("enqueue");
        }
        let slow_finished = Arc::new(AtomicBool::new(false));
        let worker = Arc::new(OperationWorker::new(
            core,
            Some("h@b".to_owned()),
            Arc::new(Handler {
                store: store.clone(),
                slow_finished: slow_finished.clone(),
            }),
        ));
        let result = worker.run_once().await;
        assert!(result.is_err(), "the failed claim is reported: {result:?}");
        assert!(
            slow_finished.load(Ordering::SeqCst),
            "the running operation was aborted by the failed claim"
        );
        drop(db);
    }

    /// Found by `shoal bench soak` with the bug above: the aborted operations were never
    /// taken over, because the lease renewer `process` spawns outlived them and renewed
    /// their leases for as long as the node ran.
    #[tokio::test]
    async fn test_reproduce_soak_dropped_operation_stops_renewing_its_lease() {
        let db = shoal_store::testing::fresh_store_from_env().await;
        let store = db.store().clone();
        let mut config = Config::default();
        config.operations.lease = Duration::from_millis(300);
        let core = Arc::new(Core::new(Arc::new(config), store.clone()));
        store
            .insert_operation(NewOperation {
                kind: "slow".to_owned(),
                target_id: "slow".to_owned(),
                host: Some("h@b".to_owned()),
                payload: serde_json::Value::Null,
                now: core.now(),
            })
            .await
            .expect("enqueue");
        let handler = Arc::new(Handler {
            store: store.clone(),
            slow_finished: Arc::new(AtomicBool::new(false)),
        });
        let first = Arc::new(OperationWorker::new(
            core.clone(),
            Some("h@b".to_owned()),
            handler.clone(),
        ));
        let op = first.claim().await.expect("claim").expect("an operation");
        let running = tokio::spawn(first.clone().process(op));
        tokio::time::sleep(Duration::from_millis(50)).await;
        running.abort();
        let _ = running.await;
        // Well past the lease: a second worker takes the abandoned operation over.
        tokio::time::sleep(Duration::from_millis(900)).await;
        let second = OperationWorker::new(core, Some("h@b".to_owned()), handler);
        let taken = second.claim().await.expect("claim");
        assert!(
            taken.is_some(),
            "the dropped operation's lease is still being renewed"
        );
        db.finish().await;
    }
}
