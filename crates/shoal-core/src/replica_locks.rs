//! The per-share replica lock (Manila's `locked-share-replica-operation-for-share-<id>`):
//! every back-end replica operation of one share (create, delete, promote, update) runs
//! alone, because each one reads the whole replica set and the driver acts on several
//! replicas at once (a promotion demotes the active, an update syncs from it).
//!
//! Two layers, because operations of one share run on different back ends, possibly on
//! different nodes:
//! - in this process, a `tokio` mutex per share, so operations of two local back ends queue
//!   behind each other instead of failing and retrying;
//! - across nodes, a lease row in the database ([`shoal_store::Store::try_lock_share`]).
//!   What is persisted: the holder (a per-acquisition name) and the lease end. The guard
//!   renews the lease while the operation runs; a node that dies stops renewing and its
//!   lock expires after one lease.
//!
//! When another node holds the row, acquiring fails with [`ShareLockError::Busy`] at once
//! rather than spinning: the caller returns the error and the operation worker retries the
//! operation with backoff.
//!
//! Release is async (a database write), so it cannot happen in `Drop`: callers always call
//! [`ShareLockGuard::release`]. A guard dropped without it (a panic, a cancelled task) stops
//! renewing and spawns a best-effort release; the lease covers the rest.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use shoal_store::StoreError;
use tokio::sync::OwnedMutexGuard;
use tokio::task::JoinHandle;
use tracing::{debug, warn};
use uuid::Uuid;

use crate::{Core, CoreError};

/// Why a share lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ShareLockError {
    /// Another node runs a replica operation of the share; retry later.
    #[error("share {share_id} is locked by another replica operation")]
    Busy {
        /// The share.
        share_id: Uuid,
    },
    /// The lock row could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ShareLockError> for CoreError {
    fn from(err: ShareLockError) -> Self {
        match err {
            // Not a failure: the worker retries it without spending an attempt.
            ShareLockError::Busy { .. } => CoreError::Busy(err.to_string()),
            ShareLockError::Store(store) => store.into(),
        }
    }
}

/// In-process half of the lock: one async mutex per share with a running operation.
/// Entries are weak so the map only holds shares someone is using or waiting for.
#[derive(Default)]
pub struct ShareLocks {
    local: Mutex<HashMap<Uuid, Weak<tokio::sync::Mutex<()>>>>,
}

impl ShareLocks {
    /// An empty lock table.
    pub fn new() -> Self {
        Self::default()
    }

    fn local_mutex(&self, share_id: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        // The map holds no invariant a panic could break, so a poisoned lock is still usable.
        let mut map = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(mutex) = map.get(&share_id).and_then(Weak::upgrade) {
            return mutex;
        }
        map.retain(|_, weak| weak.strong_count() > 0);
        let mutex = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(share_id, Arc::downgrade(&mutex));
        mutex
    }

    /// Number of shares with a live local mutex (tests).
    #[cfg(test)]
    fn live_entries(&self) -> usize {
        let map = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        map.values().filter(|w| w.strong_count() > 0).count()
    }
}

/// Takes the replica lock of `share_id` for an operation described by `purpose` (used in the
/// holder name, which shows up in the lock row). Waits for local holders; fails with
/// [`ShareLockError::Busy`] when another node holds it.
pub async fn lock_share(
    core: &Arc<Core>,
    share_id: Uuid,
    purpose: &str,
) -> Result<ShareLockGuard, ShareLockError> {
    let local = core.share_locks.local_mutex(share_id).lock_owned().await;
    let holder = format!("{}/{purpose}/{}", core.config.host, Uuid::new_v4().simple());
    let lease = lock_lease(core);
    if !core
        .store
        .try_lock_share(share_id, &holder, core.now(), lease)
        .await?
    {
        return Err(ShareLockError::Busy { share_id });
    }
    debug!(share.id = %share_id, holder = %holder, "took the replica lock of share {share_id}");
    let renewer = {
        let (core, holder) = (core.clone(), holder.clone());
        tokio::spawn(async move { renew(core, share_id, holder, lease).await })
    };
    Ok(ShareLockGuard {
        core: core.clone(),
        share_id,
        holder,
        renewer: Some(renewer),
        _local: local,
        released: false,
    })
}

/// Lease of the lock row: the operation lease, so a dead node's lock and its operation's
/// claim expire together.
fn lock_lease(core: &Core) -> Duration {
    core.config.operations.lease.max(Duration::from_millis(100))
}

/// Keeps the lease alive until aborted; stops when the lock was lost.
async fn renew(core: Arc<Core>, share_id: Uuid, holder: String, lease: Duration) {
    let mut tick = tokio::time::interval(lease / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        match core
            .store
            .try_lock_share(share_id, &holder, core.now(), lease)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                warn!(share.id = %share_id, holder = %holder, "lost the replica lock of share {share_id}");
                return;
            }
            // Keep trying: the lease may still be valid when the database comes back.
            Err(err) => {
                warn!(share.id = %share_id, error = %err, "renewing the replica lock of share {share_id} failed: {err}")
            }
        }
    }
}

/// A held share lock. Call [`Self::release`] when done.
pub struct ShareLockGuard {
    core: Arc<Core>,
    share_id: Uuid,
    holder: String,
    renewer: Option<JoinHandle<()>>,
    /// Held for the guard's life so local operations of the share wait for it.
    _local: OwnedMutexGuard<()>,
    released: bool,
}

impl ShareLockGuard {
    /// The share this lock is for.
    pub fn share_id(&self) -> Uuid {
        self.share_id
    }

    /// The holder name written in the lock row.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Releases the lock row, then the local mutex. A failure is logged, not returned: the
    /// operation's outcome is what matters, and the lease frees the row anyway.
    pub async fn release(mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
        self.released = true;
        if let Err(err) = self
            .core
            .store
            .unlock_share(self.share_id, &self.holder)
            .await
        {
            warn!(share.id = %self.share_id, error = %err, "releasing the replica lock of share {} failed: {err}", self.share_id);
        }
        // `self` drops here, freeing the local mutex after the row.
    }
}

impl Drop for ShareLockGuard {
    fn drop(&mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
        if self.released {
            return;
        }
        warn!(share.id = %self.share_id, "replica lock of share {} dropped without release", self.share_id);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (core, share_id, holder) = (self.core.clone(), self.share_id, self.holder.clone());
            runtime.spawn(async move {
                let _ = core.store.unlock_share(share_id, &holder).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    async fn core_with_store() -> (
        Arc<Core>,
        shoal_store::testing::TestDb<dyn shoal_store::Store>,
    ) {
        let db = shoal_store::testing::fresh_store_from_env().await;
        let mut config = Config::default();
        config.operations.lease = Duration::from_secs(30);
        let core = Arc::new(Core::new(Arc::new(config), db.store().clone()));
        (core, db)
    }

    #[tokio::test]
    async fn local_holders_queue_and_release_frees_the_row() {
        let (core, db) = core_with_store().await;
        let share = Uuid::new_v4();
        let first = lock_share(&core, share, "test").await.expect("free lock");
        // A second local acquisition waits for the first instead of failing.
        let waiter = {
            let core = core.clone();
            tokio::spawn(async move { lock_share(&core, share, "test").await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        first.release().await;
        let second = waiter.await.expect("task").expect("lock after release");
        // The row belongs to the second holder now: a foreign holder cannot take it.
        assert!(
            !core
                .store
                .try_lock_share(share, "other-node", core.now(), Duration::from_secs(30))
                .await
                .expect("store")
        );
        second.release().await;
        assert!(
            core.store
                .try_lock_share(share, "other-node", core.now(), Duration::from_secs(30))
                .await
                .expect("store")
        );
        assert_eq!(core.share_locks.live_entries(), 0);
        db.finish().await;
    }

    #[tokio::test]
    async fn a_lock_held_elsewhere_is_busy_until_its_lease_expires() {
        let (core, db) = core_with_store().await;
        let share = Uuid::new_v4();
        let now = core.now();
        assert!(
            core.store
                .try_lock_share(share, "other-node", now, Duration::from_secs(30))
                .await
                .expect("store")
        );
        let busy = lock_share(&core, share, "test").await;
        assert!(matches!(busy, Err(ShareLockError::Busy { .. })));
        let err: CoreError = busy.err().expect("busy").into();
        assert_eq!(err.kind(), crate::ErrorKind::Conflict);
        // Other shares are independent.
        lock_share(&core, Uuid::new_v4(), "test")
            .await
            .expect("other share")
            .release()
            .await;
        // An expired lease (a dead node) no longer blocks.
        assert!(
            core.store
                .try_lock_share(
                    share,
                    "other-node",
                    now - chrono::Duration::seconds(120),
                    Duration::from_secs(30)
                )
                .await
                .expect("store")
        );
        lock_share(&core, share, "test")
            .await
            .expect("expired lease")
            .release()
            .await;
        db.finish().await;
    }

    #[tokio::test]
    async fn a_dropped_guard_frees_the_local_mutex() {
        let (core, db) = core_with_store().await;
        let share = Uuid::new_v4();
        let guard = lock_share(&core, share, "test").await.expect("free lock");
        assert_eq!(guard.share_id(), share);
        assert!(guard.holder().contains("/test/"));
        drop(guard);
        // The local half is free at once; the row is released by a spawned task or, at
        // worst, by its lease.
        assert_eq!(core.share_locks.live_entries(), 0);
        db.finish().await;
    }
}
