//! shoal's service layer: everything the API and the background roles do, with no HTTP and
//! no SQL. It owns the configuration ([`config`]), the validation and business rules of each
//! resource (one module per Manila resource), and the periodic tasks of the scheduler and
//! share roles ([`reporter`], [`replica_updater`], [`recycle_bin`], [`housekeeping`]). State lives in a
//! [`shoal_store::Store`]; back ends are [`shoal_driver::ShareDriver`]s.

pub mod availability_zones;
pub mod config;
pub mod drivers;
pub mod error;
pub mod export_locations;
pub mod housekeeping;
pub mod messages;
pub mod metrics;
pub mod ops;
mod periodic;
pub mod pools;
pub mod quota_sets;
pub mod quotas;
pub mod recycle_bin;
pub mod replica_locks;
pub mod replica_updater;
pub mod reporter;
pub mod scheduler_hints;
pub mod services;
pub mod share_access;
pub mod share_instances;
pub mod share_lifecycle;
pub mod share_migration;
pub mod share_replicas;
pub mod share_types;
pub mod shares;
pub mod snapshots;
pub mod workers;

use std::sync::Arc;

use shoal_store::Store;

pub use config::Config;
pub use error::{CoreError, CoreResult, ErrorKind};

/// Handle to the service layer, shared by every role of a process.
pub struct Core {
    /// Node configuration.
    pub config: Arc<Config>,
    /// Durable state.
    pub store: Arc<dyn Store>,
    /// Wakes this process's workers when new operations were enqueued: by this process, or
    /// by another node, as a database notice tells ([`workers::wakeups`]; PostgreSQL only).
    /// Polling catches whatever no wake-up announced.
    pub work_available: tokio::sync::Notify,
    /// In-process half of the per-share replica lock ([`replica_locks`]), shared by the
    /// share manager handlers of every back end of this node.
    pub share_locks: replica_locks::ShareLocks,
    /// Read-held by each background pass of the operation workers. Taking it for writing
    /// waits for the passes under way and holds the next ones back; tests do that to look
    /// at the state an API call leaves before any worker moves it on (a worker's
    /// `run_once` ignores it).
    pub background_work: tokio::sync::RwLock<()>,
}

impl Core {
    /// Builds the service layer over an opened, migrated store.
    pub fn new(config: Arc<Config>, store: Arc<dyn Store>) -> Self {
        Self {
            config,
            store,
            work_available: tokio::sync::Notify::new(),
            share_locks: replica_locks::ShareLocks::new(),
            background_work: tokio::sync::RwLock::new(()),
        }
    }

    /// Tells the workers of this process that operations may have been enqueued.
    pub fn wake_workers(&self) {
        self.work_available.notify_waiters();
    }

    /// The current time; one place so that tests and logs agree on the clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
}
